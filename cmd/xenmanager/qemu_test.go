package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"xenmanager/backend/agent/libvirt/guestimage"
	"xenmanager/backend/agent/libvirt/libvirthost"
)

// These tests boot real guests under QEMU (software emulation) through the
// manager, over the stock OpenSSH client, with agents running the libvirt
// driver against the machine's libvirtd (.ci/run starts it). Their names
// contain QEMU: make test runs them in a step of their own, one package at
// a time.

// qemuSocket is the system libvirtd's socket.
const qemuSocket = "/run/libvirt/libvirt-sock"

// needQEMU skips the test with one loud line when libvirtd, QEMU or what
// builds the guest image is missing (and fails it in CI, where .ci/run
// installs them), and returns the guest image.
func needQEMU(t *testing.T) guestimage.Image {
	t.Helper()
	needTools(t)
	var virsh error
	if _, err := exec.LookPath("virsh"); err != nil {
		virsh = fmt.Errorf("virsh (libvirt-clients) is missing: %w", err)
	}
	return libvirthost.RequireGuestImage(t, libvirthost.SystemAvailable(), virsh)
}

// openDir makes a directory that QEMU, which runs as another user, can
// traverse (t.TempDir's are private to root), removed after the test.
func openDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "xenmanager-qemu-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startLibvirtAgent runs xenagent with the libvirt driver and returns its
// port and its log.
func startLibvirtAgent(t *testing.T, data, password, hostname string, args ...string) (string, *syncBuffer) {
	t.Helper()
	return runAgent(t, data, password, append([]string{"--hostname", hostname,
		"--hypervisor", "libvirt", "--libvirt-uri", "qemu:///system", "--shutdown-timeout", "60s"}, args...)...)
}

// qemuFleet is a manager with one pool of libvirt agents and a repository
// that holds the guest image under Kernels/.
type qemuFleet struct {
	m    *manager
	dir  string
	repo string
	logs map[string]*syncBuffer // agent logs by server name
}

// newQEMUFleet starts the manager and one libvirt agent per entry of
// agents (server name -> extra agent flags), pools them and creates the
// repository.
func newQEMUFleet(t *testing.T, img guestimage.Image, agents map[string][]string) *qemuFleet {
	t.Helper()
	dir := openDir(t)
	f := &qemuFleet{dir: dir, repo: filepath.Join(dir, "repo"), logs: map[string]*syncBuffer{}}
	f.m = startManager(t, filepath.Join(dir, "manager"), 0)
	var script strings.Builder
	names := make([]string, 0, len(agents))
	for name := range agents {
		names = append(names, name)
	}
	for _, name := range names {
		port, log := startLibvirtAgent(t, filepath.Join(dir, name), "pw-"+name, name, agents[name]...)
		f.logs[name] = log
		fmt.Fprintf(&script, "discoverServer ipAddress=127.0.0.1 port=%s password=pw-%s\n", port, name)
	}
	script.WriteString("create ServerPool name=qpool\n")
	for _, name := range names {
		fmt.Fprintf(&script, "add Server name=%s to ServerPool name=qpool\n", name)
	}
	fmt.Fprintf(&script, "create Repository name=qrepo fsLocation=%s on ServerPool name=qpool\n", f.repo)
	out, status := f.m.ssh(script.String(), false)
	if status != 0 {
		t.Fatalf("setting up the fleet: exit %d\n%s", status, out)
	}
	t.Cleanup(func() { f.explainFailure(t) })
	kernels := filepath.Join(f.repo, "Kernels")
	if err := os.MkdirAll(kernels, 0o755); err != nil {
		t.Fatal(err)
	}
	for src, name := range map[string]string{img.Kernel: "vmlinuz", img.Initrd: "initrd.gz"} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(kernels, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// explainFailure logs, when the test failed, what the agents logged and
// the end of every guest's console log, so that a failure under load in
// CI can be understood afterwards.
func (f *qemuFleet) explainFailure(t *testing.T) {
	if !t.Failed() {
		return
	}
	for name, log := range f.logs {
		t.Logf("agent %s's log:\n%s", name, log)
	}
	logs, _ := filepath.Glob(filepath.Join(f.repo, "VirtualMachines", "*", "console.log"))
	for _, p := range logs {
		data, _ := os.ReadFile(p)
		if len(data) > 4096 {
			data = data[len(data)-4096:]
		}
		t.Logf("%s (end):\n%s", p, data)
	}
}

// createGuest creates a VM that boots the guest image with extra kernel
// options.
func (f *qemuFleet) createGuest(t *testing.T, name, options string) {
	t.Helper()
	cmd := fmt.Sprintf(`create Vm name=%s repository=qrepo memory=128 kernel=Kernels/vmlinuz ramdisk=Kernels/initrd.gz extra="%s"`,
		name, strings.TrimSpace(guestimage.Cmdline+" "+options))
	if out, status := f.m.ssh("", false, cmd); status != 0 {
		t.Fatalf("%s: exit %d\n%s", cmd, status, out)
	}
}

// run runs commands that must succeed and returns their output.
func (f *qemuFleet) run(t *testing.T, commands string) string {
	t.Helper()
	out, status := f.m.ssh("", false, commands)
	if status != 0 {
		t.Fatalf("%s: exit %d\n%s", commands, status, out)
	}
	return out
}

// field is the value of "Key = value" in show output.
func field(out, key string) string {
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), " = "); ok && k == key {
			return v
		}
	}
	return ""
}

// waitVMStatus polls show Vm until the VM has status (bounded: guests boot
// and stop at emulation's pace, and the manager notices a change within a
// heartbeat).
func (f *qemuFleet) waitVMStatus(t *testing.T, name, status string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, _ := f.m.ssh("", false, "show Vm name="+name)
		if field(out, "Status") == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Vm %s did not become %s:\n%s", name, status, out)
		}
		time.Sleep(time.Second) // polling an outside process, bounded above
	}
}

// waitEvent polls list Event until an event mentions all of words.
func (f *qemuFleet) waitEvent(t *testing.T, words ...string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, _ := f.m.ssh("", false, "set outputMode=Json; list Event")
		for _, line := range strings.Split(out, "\n") {
			var report struct {
				Data []map[string]any `json:"data"`
			}
			if json.Unmarshal([]byte(line), &report) != nil {
				continue
			}
			for _, ev := range report.Data {
				text := fmt.Sprint(ev)
				all := true
				for _, w := range words {
					all = all && strings.Contains(text, w)
				}
				if all {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event with %q:\n%s", words, out)
		}
		time.Sleep(time.Second)
	}
}

// waitUntil polls cond, which asks an outside process, until it holds;
// bounded.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

var heartbeatRx = regexp.MustCompile(regexp.QuoteMeta(guestimage.Heartbeat) + ` (\d+)`)

// lastHeartbeat is the counter of the last heartbeat line on a screen.
func lastHeartbeat(screen string) int {
	m := heartbeatRx.FindAllStringSubmatch(screen, -1)
	if len(m) == 0 {
		return -1
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// heartbeatStartedOver reports whether the heartbeats on a screen (the
// console log's replay, then the live console) count from the start
// again somewhere: the guest booted anew.
func heartbeatStartedOver(screen string) bool {
	prev := -1
	for _, m := range heartbeatRx.FindAllStringSubmatch(screen, -1) {
		n, _ := strconv.Atoi(m[1])
		if n < prev {
			return true
		}
		prev = n
	}
	return false
}

// TestQEMUGuestLifecycleThroughTheManager boots a real guest through the
// manager and drives it as an operator would: its known line on the
// console, pause and unpause, a live memory change, suspend and resume
// with the guest's heartbeat going on, a stop by ACPI, a kill; a guest
// that powers itself off and a domain destroyed behind the manager's back
// are noticed.
func TestQEMUGuestLifecycleThroughTheManager(t *testing.T) {
	img := needQEMU(t)
	f := newQEMUFleet(t, img, map[string][]string{"qemu1": nil})
	if out := f.run(t, "show Server name=qemu1"); !strings.HasPrefix(field(out, "Hypervisor"), "qemu ") {
		t.Fatalf("show Server does not say the hypervisor:\n%s", out)
	}
	f.createGuest(t, "g1", "")
	// A sparse disk of the repository, attached: QEMU opens the file the
	// agent resolved in the repository.
	f.run(t, "create VirtualDisk name=qd1 size=1 on Repository name=qrepo; add VirtualDisk name=qd1 to Vm name=g1")
	f.run(t, "start Vm name=g1")
	id := field(f.run(t, "show Vm name=g1"), "Id")
	blk, err := exec.Command("virsh", "-c", "qemu:///system", "domblklist", id).CombinedOutput()
	if err != nil || !strings.Contains(string(blk), "vda") || !strings.Contains(string(blk), filepath.Join(f.repo, "VirtualDisks")) {
		t.Fatalf("the guest's disks: %v\n%s", err, blk)
	}

	x := newTmux(t)
	x.sshSession(f.m, "c", 120, 40, filepath.Join(f.dir, "sc"))
	x.waitText("c", "OVM>")
	x.typeText("c", "console Vm name=g1")
	x.keys("c", "Enter")
	screen := x.waitGuest("c", "the guest's heartbeat on its console", func(s string) bool {
		return strings.Contains(s, guestimage.Ready) && lastHeartbeat(s) >= 1
	})
	before := lastHeartbeat(screen)
	x.keys("c", "C-]")
	x.waitFor("c", "the prompt after the console", func(s string) bool { return strings.HasPrefix(lastLine(s), "OVM>") })

	// A live memory change reaches the guest (its balloon driver gives the
	// memory back), as libvirt sees it.
	f.run(t, "edit Vm name=g1 memory=96")
	waitUntil(t, "the guest's memory to shrink to 96 MiB", func() bool {
		out, _ := exec.Command("virsh", "-c", "qemu:///system", "dominfo", id).CombinedOutput()
		return strings.Contains(string(out), "Used memory:    98304 KiB")
	})

	f.run(t, "pause Vm name=g1")
	if st := field(f.run(t, "show Vm name=g1"), "Status"); st != "Paused" {
		t.Fatalf("after pause: %s", st)
	}
	f.run(t, "unpause Vm name=g1")

	f.run(t, "suspend Vm name=g1")
	f.waitVMStatus(t, "g1", "Suspended")
	f.run(t, "resume Vm name=g1")
	f.waitVMStatus(t, "g1", "Running")
	x.typeText("c", "console Vm name=g1")
	x.keys("c", "Enter")
	x.waitGuest("c", "the heartbeat going on after resume", func(s string) bool { return lastHeartbeat(s) > before })
	x.keys("c", "C-]")
	x.waitFor("c", "the prompt after the console", func(s string) bool { return strings.HasPrefix(lastLine(s), "OVM>") })

	// top's snapshot shows the guest with libvirt's statistics.
	if out := f.run(t, "top"); !strings.Contains(out, "g1") || !strings.Contains(out, "qemu1") {
		t.Fatalf("top:\n%s", out)
	}
	// restart reboots it: a new domain whose heartbeat counts from 1 again.
	f.run(t, "restart Vm name=g1")
	x.keys("c", "C-l")
	x.typeText("c", "console Vm name=g1")
	x.keys("c", "Enter")
	x.waitGuest("c", "the guest booting again after restart", heartbeatStartedOver)
	x.keys("c", "C-]")
	x.waitFor("c", "the prompt after the console", func(s string) bool { return strings.HasPrefix(lastLine(s), "OVM>") })

	f.run(t, "stop Vm name=g1")
	f.waitVMStatus(t, "g1", "Stopped")
	if log := f.logs["qemu1"].String(); strings.Contains(log, "did not power off in time") {
		t.Fatalf("the guest did not answer ACPI: the agent destroyed it\n%s", log)
	}
	f.run(t, "start Vm name=g1")
	f.run(t, "kill Vm name=g1")
	f.waitVMStatus(t, "g1", "Stopped")

	// A guest that powers itself off becomes Stopped, with an event.
	f.createGuest(t, "g2", "xenguest.poweroff_after=3")
	f.run(t, "start Vm name=g2")
	f.waitVMStatus(t, "g2", "Stopped")
	f.waitEvent(t, "g2", "shut itself down")

	// A domain destroyed behind the manager's back is noticed too.
	f.run(t, "start Vm name=g1")
	if out, err := exec.Command("virsh", "-c", "qemu:///system", "destroy", id).CombinedOutput(); err != nil {
		t.Fatalf("virsh destroy: %v\n%s", err, out)
	}
	f.waitVMStatus(t, "g1", "Stopped")
	f.waitEvent(t, "g1", "destroyed outside the manager")
}

// TestQEMULiveMigrationThroughTheManager migrates a running guest from the
// machine's libvirtd to a second libvirt host in its own network namespace
// with `migrate Vm`: the guest's heartbeat goes on on the destination, and
// the manager records the VM there.
func TestQEMULiveMigrationThroughTheManager(t *testing.T) {
	img := needQEMU(t)
	libvirthost.Require(t, libvirthost.Available())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	second, err := libvirthost.Start(ctx, libvirthost.Options{Hostname: "qemu2"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Close() })
	f := newQEMUFleet(t, img, map[string][]string{
		"qemu1": nil,
		"qemu2": {"--libvirt-socket", second.Socket, "--libvirt-migration-uri", second.URI, "--migration-host", second.Addr},
	})
	f.createGuest(t, "mg", "")
	f.run(t, "start Vm name=mg")
	from := field(f.run(t, "show Vm name=mg"), "Server")
	if !strings.Contains(from, "qemu1") {
		// Placement chose the second host: stop and start there is not
		// the point; move it to the first the same way.
		f.run(t, "migrate Vm name=mg destServer=qemu1")
	}

	x := newTmux(t)
	x.sshSession(f.m, "c", 120, 40, filepath.Join(f.dir, "sc"))
	x.waitText("c", "OVM>")
	x.typeText("c", "console Vm name=mg")
	x.keys("c", "Enter")
	before := lastHeartbeat(x.waitGuest("c", "the guest's heartbeat", func(s string) bool { return lastHeartbeat(s) >= 2 }))
	x.keys("c", "C-]")
	x.waitFor("c", "the prompt after the console", func(s string) bool { return strings.HasPrefix(lastLine(s), "OVM>") })

	began := time.Now()
	f.run(t, "migrate Vm name=mg destServer=qemu2")
	t.Logf("migrate Vm took %v", time.Since(began))
	out := f.run(t, "show Vm name=mg")
	if !strings.Contains(field(out, "Server"), "qemu2") || field(out, "Status") != "Running" {
		t.Fatalf("after migrate:\n%s", out)
	}
	x.keys("c", "C-l")
	x.typeText("c", "console Vm name=mg")
	x.keys("c", "Enter")
	x.waitGuest("c", "the heartbeat going on on the destination", func(s string) bool { return lastHeartbeat(s) > before+1 })
	x.keys("c", "C-]")
	x.waitFor("c", "the prompt after the console", func(s string) bool { return strings.HasPrefix(lastLine(s), "OVM>") })

	// The source has no domain of it left; the destination's libvirt has it.
	id := field(out, "Id")
	if out, _ := exec.Command("virsh", "-c", "qemu:///system", "domstate", id).CombinedOutput(); !strings.Contains(string(out), "failed to get domain") {
		t.Errorf("the source still has the domain: %s", out)
	}
	f.run(t, "kill Vm name=mg")
	f.waitVMStatus(t, "mg", "Stopped")
}
