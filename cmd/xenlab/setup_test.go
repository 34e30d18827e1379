package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// TestPoolCommands checks what the lab sends to make its pool, servers and
// repository on a fresh manager, on one that has them all (a second run:
// nothing), and on one that lacks the second host (a first run as a user
// who could not start it): and that records made elsewhere are refused.
func TestPoolCommands(t *testing.T) {
	repo := "/var/tmp/xenlab data/repo"
	hosts := []string{firstHost, secondHost}
	fresh := fleet{pools: map[string]bool{}, servers: map[string]string{firstHost: "", secondHost: ""}, repos: map[string]string{}}
	got, err := poolCommands(fresh, hosts, repo)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"create ServerPool name=lab-pool",
		"add Server name=qemu1 to ServerPool name=lab-pool",
		"add Server name=qemu2 to ServerPool name=lab-pool",
		`create Repository name=lab-repo fsLocation="/var/tmp/xenlab data/repo" on ServerPool name=lab-pool`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("fresh manager:\n got %q\nwant %q", got, want)
	}

	done := fleet{pools: map[string]bool{poolName: true}, servers: map[string]string{firstHost: poolName, secondHost: poolName},
		repos: map[string]string{repoName: repo}}
	if got, err := poolCommands(done, hosts, repo); err != nil || len(got) != 0 {
		t.Errorf("second run: %q, %v; want nothing", got, err)
	}
	if got := refreshCommands(done, hosts); !slices.Equal(got, []string{"refresh Server name=qemu1", "refresh Server name=qemu2"}) {
		t.Errorf("second run: refresh %q", got)
	}
	if got := refreshCommands(fresh, hosts); len(got) != 0 {
		t.Errorf("fresh manager: refresh %q; want nothing", got)
	}

	partial := fleet{pools: map[string]bool{poolName: true}, servers: map[string]string{firstHost: poolName, secondHost: ""},
		repos: map[string]string{repoName: repo}}
	if got, err := poolCommands(partial, hosts, repo); err != nil || !slices.Equal(got, []string{"add Server name=qemu2 to ServerPool name=lab-pool"}) {
		t.Errorf("new second host: %q, %v", got, err)
	}

	moved := fleet{pools: map[string]bool{poolName: true}, servers: map[string]string{firstHost: poolName},
		repos: map[string]string{repoName: "/elsewhere/repo"}}
	if _, err := poolCommands(moved, []string{firstHost}, repo); err == nil || !strings.Contains(err.Error(), "moved") {
		t.Errorf("repository elsewhere: %v; want an error saying the data directory was moved", err)
	}
	foreign := fleet{pools: map[string]bool{}, servers: map[string]string{firstHost: "other-pool"}, repos: map[string]string{}}
	if _, err := poolCommands(foreign, []string{firstHost}, repo); err == nil || !strings.Contains(err.Error(), "other-pool") {
		t.Errorf("server in another pool: %v; want an error naming that pool", err)
	}
}

// TestGuestCommands checks the VM the lab creates: the guest image booted
// directly with the image's command line, its first host preferred; and
// that an existing guest1 is left as it is.
func TestGuestCommands(t *testing.T) {
	got := guestCommands(fleet{vms: map[string]string{}})
	want := []string{
		`create Vm name=guest1 repository=lab-repo memory=128 kernel=Kernels/vmlinuz ramdisk=Kernels/initrd.gz extra="console=ttyS0 quiet mitigations=off tsc=reliable no_timer_check xenguest.hostname=guest1"`,
		"edit Vm name=guest1 preferredServers=qemu1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("\n got %q\nwant %q", got, want)
	}
	if got := guestCommands(fleet{vms: map[string]string{guestName: "Running"}}); len(got) != 0 {
		t.Errorf("existing guest1: %q; want nothing", got)
	}
}

func TestMask(t *testing.T) {
	got := mask("discoverServer ipAddress=127.0.0.1 port=8899 password=Zx9-_aB")
	if got != "discoverServer ipAddress=127.0.0.1 port=8899 password=*****" {
		t.Errorf("mask: %q", got)
	}
}

// TestParseVerbose reads the Verbose outputs the lab relies on
// (docs/output-formats.md).
func TestParseVerbose(t *testing.T) {
	list := "Command: list Vm status=Running\nStatus: Success\nTime: 2026-11-21 10:20:23,345 UTC\nData:\n" +
		"  id:0004fb00000600007ea7a06224d83172  name:guest1\n  id:0004fb0000060000a5f0ebbf4ad8b8b8  name:db1\n"
	r, ok := parseVerbose(list)
	if !ok || !r.ok || len(r.rows) != 2 || r.rows[0]["id"] != "0004fb00000600007ea7a06224d83172" || r.rows[1]["name"] != "db1" {
		t.Errorf("list: %+v %v", r, ok)
	}
	show := "Command: show Repository name=lab-repo\r\nStatus: Success\r\nTime: 2026-11-21 10:20:23,345 UTC\r\nData:\r\n" +
		"  Name = lab-repo\r\n  Server Pool = 0004fb0000020000f2bf3fcf7980f451  [lab-pool]\r\n  File System Location = /x/repo\r\n"
	r, ok = parseVerbose(show)
	if !ok || !r.ok || r.attrs["File System Location"] != "/x/repo" || bracketed(r.attrs["Server Pool"]) != "lab-pool" {
		t.Errorf("show: %+v %v", r, ok)
	}
	if bracketed("") != "" {
		t.Errorf("bracketed of no reference: %q", bracketed(""))
	}
	empty := "Command: list Vm status=Paused\nStatus: Success\nTime: 2026-11-21 10:20:23,345 UTC\n"
	if r, ok := parseVerbose(empty); !ok || !r.ok || len(r.rows) != 0 {
		t.Errorf("empty list: %+v %v", r, ok)
	}
	failed := "Command: show Vm name=nope\nStatus: Failure\nTime: 2026-11-21 10:20:23,345 UTC\nError Msg: XM_0404E: Vm \"nope\" not found\n"
	if r, ok := parseVerbose(failed); !ok || r.ok || r.errMsg != `XM_0404E: Vm "nope" not found` {
		t.Errorf("failure: %+v %v", r, ok)
	}
	if _, ok := parseVerbose("ssh: connection refused\n"); ok {
		t.Error("no Status line read as a result")
	}
}

// TestTrustOnFirstUse: the manager's host key is recorded on first use,
// accepted again, and another key is refused saying which file to remove.
func TestTrustOnFirstUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known_hosts")
	key := func() ssh.PublicKey {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k, err := ssh.NewPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	first, other := key(), key()
	check := trustOnFirstUse(path)
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 10001}
	if err := check("127.0.0.1:10001", remote, first); err != nil {
		t.Fatalf("first use: %v", err)
	}
	data, _ := os.ReadFile(path)
	if fp := fingerprintOfLine(strings.TrimSpace(string(data))); fp != ssh.FingerprintSHA256(first) {
		t.Errorf("recorded %q; want the key's fingerprint %s", data, ssh.FingerprintSHA256(first))
	}
	// Another port (LAB_LISTEN changed): the same manager.
	if err := check("127.0.0.1:10002", remote, first); err != nil {
		t.Errorf("known key: %v", err)
	}
	if err := check("127.0.0.1:10001", remote, other); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("another key: %v; want a refusal naming %s", err, path)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
		t.Errorf("a refused key changed the file:\n%s", after)
	}
}

// TestCanEnter checks the permission arithmetic of the check that QEMU's
// user reaches the repository.
func TestCanEnter(t *testing.T) {
	dir := t.TempDir()
	const stranger = 54321
	for _, c := range []struct {
		mode os.FileMode
		want bool
	}{{0o700, false}, {0o750, false}, {0o711, true}, {0o755, true}} {
		d := filepath.Join(dir, c.mode.String())
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, c.mode); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := canEnter(fi, stranger, nil); got != c.want {
			t.Errorf("mode %v, another user: %v; want %v", c.mode, got, c.want)
		}
	}
}

// TestMissingThingsLeaveNothingBehind: a lab that cannot start (no
// binaries, its port taken) says what is missing, exits 1, and creates
// nothing, not even its data directory.
func TestMissingThingsLeaveNothingBehind(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	data := filepath.Join(t.TempDir(), "lab")
	var out, errOut bytes.Buffer
	code := run([]string{"--bin", t.TempDir(), "--data", data, "--listen", busy.Addr().String(), "--second", "no"}, &out, &errOut)
	if code != 1 {
		t.Errorf("exit %d; want 1\n%s%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"xenmanager is missing", "make build", "is not free", "LAB_LISTEN"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the output does not say %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(errOut.String(), "nothing was started or created") {
		t.Errorf("stderr: %s", errOut.String())
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("the data directory was created (%v)", err)
	}
	if code := run([]string{"--second", "maybe"}, &out, &errOut); code != 2 {
		t.Errorf("--second maybe: exit %d; want 2", code)
	}
}
