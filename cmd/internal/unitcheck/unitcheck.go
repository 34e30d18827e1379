// Package unitcheck checks the systemd units that ship beside the two
// programs (cmd/xenmanager/xenmanager.service, cmd/xenagent/xenagent.service)
// from their tests: that the unit's command line is one the program accepts
// with the example configuration file in place, and that systemd-analyze
// finds nothing wrong with the unit and rates its sandbox no worse than a
// bound. It is test code kept out of a _test file so that both programs'
// tests share it.
package unitcheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Unit describes one program's unit and the configuration file it reads.
type Unit struct {
	// File is the unit's file, beside the test's code: xenmanager.service.
	File string
	// Command begins the unit's ExecStart= line: the installed binary and,
	// for the manager, its subcommand ("/usr/local/bin/xenmanager serve").
	Command string
	// Installed is where the unit reads its configuration file from;
	// Example is the file of docs/examples the guide has the operator
	// install there, which must say so on its first line.
	Installed, Example string
}

// Args returns the arguments of u's ExecStart= line after u.Command, with
// u.Example in place of u.Installed, so that the test can parse them as
// the program would.
func Args(t *testing.T, u Unit) []string {
	t.Helper()
	unit, err := os.ReadFile(u.File)
	if err != nil {
		t.Fatal(err)
	}
	rx := regexp.MustCompile(`(?m)^ExecStart=` + regexp.QuoteMeta(u.Command) + ` (.*)$`)
	lines := rx.FindAllStringSubmatch(string(unit), -1)
	if len(lines) != 1 {
		t.Fatalf("%s has %d command lines of %s, want one", u.File, len(lines), u.Command)
	}
	text, err := os.ReadFile(u.Example)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(text), "# "+u.Installed+":") {
		t.Fatalf("%s does not say it is installed as %s", u.Example, u.Installed)
	}
	args := strings.Fields(lines[0][1])
	if !slices.Contains(args, u.Installed) {
		t.Fatalf("%s does not read %s: %s", u.File, u.Installed, lines[0][0])
	}
	for i := range args {
		if args[i] == u.Installed {
			args[i] = u.Example
		}
	}
	return args
}

// Verify runs systemd-analyze verify on a copy of u's unit whose command
// names an executable file of this machine (this test binary: what verify
// checks of the command is that it can be run), then systemd-analyze
// security, which fails above maxExposure tenths. Without systemd-analyze
// the test skips, saying so, except in CI, which installs it (.ci/run).
func Verify(t *testing.T, u Unit, maxExposure int) {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("systemd-analyze is required in CI (package systemd): %v", err)
		}
		t.Skipf("SKIPPED: systemd-analyze not installed (package systemd); %s is not verified", u.File)
	}
	text, err := os.ReadFile(u.File)
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	binary, _, _ := strings.Cut(u.Command, " ")
	copyPath := filepath.Join(t.TempDir(), u.File)
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(string(text), binary, self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", copyPath).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", u.File, err, out)
	}
	out, err = exec.Command(analyze, "security", "--offline=yes", "--threshold="+strconv.Itoa(maxExposure), copyPath).CombinedOutput()
	level := regexp.MustCompile(`Overall exposure level for \S+: (.*)`).FindSubmatch(out)
	if err != nil || level == nil {
		t.Errorf("systemd-analyze security %s: %v (most exposure allowed: %d tenths)\n%s", u.File, err, maxExposure, out)
		return
	}
	t.Logf("%s: exposure %s", u.File, level[1])
}
