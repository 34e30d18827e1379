package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ovmExpectScript is an expect script in the manner of those written for
// Oracle VM Manager's CLI: it spawns ssh (on expect's own pseudo-terminal,
// which nobody sized: ssh asks the manager for a pty of 0 x 0), logs in at
// the password prompt, waits for "OVM> ", runs commands, reads their
// status, and exits. Arguments: port, password, known_hosts file.
const ovmExpectScript = `
set timeout 20
lassign $argv port password known
proc want {pattern} {
    expect {
        -exact $pattern {}
        timeout { puts "\nEXPECT: timed out waiting for '$pattern'"; exit 3 }
        eof     { puts "\nEXPECT: the session ended before '$pattern'"; exit 4 }
    }
}
spawn ssh -p $port -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=$known \
    -o HostKeyAlias=xenmanager-e2e -o PreferredAuthentications=password \
    -o PubkeyAuthentication=no -o LogLevel=ERROR admin@127.0.0.1
want "password:"
send "$password\r"
want "OVM> "
send "list Server\r"
want "Status: Success"
want "OVM> "
send "show Server name=ovs1\r"
want "Status: Success"
want "OVM> "
send "exit\r"
expect eof
catch wait result
exit [lindex $result 3]
`

// An expect script written for OVM's CLI runs unchanged, in both line
// editors, although its terminal reports no size.
func TestExpectScriptOfOVM(t *testing.T) {
	needTools(t)
	if _, err := exec.LookPath("expect"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("expect is required in CI: %v", err)
		}
		t.Skip("expect not installed")
	}
	dir := t.TempDir()
	m := startManager(t, filepath.Join(dir, "data"), 1)
	script := filepath.Join(dir, "ovm.exp")
	if err := os.WriteFile(script, []byte(ovmExpectScript), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, editor := range []string{"prompt", "simple"} {
		t.Run(editor, func(t *testing.T) {
			if out, st := m.ssh("", false, "set lineEditor="+editor); st != 0 {
				t.Fatalf("set lineEditor: exit %d\n%s", st, out)
			}
			out, err := exec.Command("expect", "-f", script, m.port, m.password, m.known).CombinedOutput()
			if err != nil {
				t.Fatalf("the expect script failed: %v\n%s", err, out)
			}
			if strings.Contains(string(out), "too small") || strings.Count(string(out), "Status: Success") != 2 {
				t.Fatalf("the expect script's session:\n%s", out)
			}
		})
	}
}
