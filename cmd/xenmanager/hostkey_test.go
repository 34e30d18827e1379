package main

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

// serve prints its host key's fingerprint as ssh shows it on the first
// connection, so that the operator can check that connection: the same
// as ssh-keygen -lf says of the key ssh-keyscan fetches from the manager
// (what docs/guide.md tells operators to run) and as the key the server
// presents to a client. The key lives in the database: a new install
// writes no host key file.
func TestServePrintsHostKeyFingerprint(t *testing.T) {
	needTools(t)
	data := filepath.Join(t.TempDir(), "data")
	m := startManager(t, data, 0)
	printed := ""
	for _, line := range m.stdout {
		if rest, ok := strings.CutPrefix(line, "host key:      "); ok {
			printed = rest
		}
	}
	rx := regexp.MustCompile(`^ED25519 key fingerprint is (SHA256:[A-Za-z0-9+/]{43})$`)
	match := rx.FindStringSubmatch(printed)
	if match == nil {
		t.Fatalf("serve printed no host key line like %q:\n%s", rx, strings.Join(m.stdout, "\n"))
	}
	if _, err := os.Stat(filepath.Join(data, "ssh_host_ed25519_key")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a new install wrote a host key file: %v", err)
	}

	keyscan := exec.Command("sh", "-c", `ssh-keyscan -t ed25519 -p "$1" 127.0.0.1 2>/dev/null | ssh-keygen -lf -`, "sh", m.port)
	keygen, err := keyscan.CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keyscan | ssh-keygen -lf -: %v\n%s", err, keygen)
	}
	if f := strings.Fields(string(keygen)); len(f) < 2 || f[1] != match[1] || !strings.HasSuffix(strings.TrimSpace(string(keygen)), "(ED25519)") {
		t.Errorf("ssh-keyscan | ssh-keygen -lf - says %q; serve printed %q", keygen, printed)
	}

	var presented gossh.PublicKey
	conn, err := gossh.Dial("tcp", net.JoinHostPort("127.0.0.1", m.port), &gossh.ClientConfig{
		User: "admin", Auth: []gossh.AuthMethod{gossh.Password(m.password)},
		HostKeyCallback: func(_ string, _ net.Addr, key gossh.PublicKey) error { presented = key; return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if got := gossh.FingerprintSHA256(presented); got != match[1] || presented.Type() != gossh.KeyAlgoED25519 {
		t.Errorf("the server presents %s %s; serve printed %q", presented.Type(), got, printed)
	}
}
