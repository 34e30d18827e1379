package main

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

// unitFile is the agent's systemd unit, beside this code.
const unitFile = "xenagent.service"

// execStartRx finds the unit's command lines.
var execStartRx = regexp.MustCompile(`(?m)^ExecStart=/usr/local/bin/xenagent (.*)$`)

// The unit's command line is one xenagent accepts, with the example
// configuration file of docs/examples in the place the unit reads it from
// (the file the guide has the operator install there).
func TestSystemdUnitFlags(t *testing.T) {
	unit, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := execStartRx.FindAllStringSubmatch(string(unit), -1)
	if len(lines) != 1 {
		t.Fatalf("%s has %d command lines of xenagent, want one", unitFile, len(lines))
	}
	const installed, example = "/etc/xenagent/xenagent.toml", "../../docs/examples/xenagent.toml"
	text, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(text), "# "+installed+":") {
		t.Fatalf("%s does not say it is installed as %s", example, installed)
	}
	args := strings.Fields(lines[0][1])
	if !slices.Contains(args, installed) {
		t.Fatalf("%s does not read %s: %s", unitFile, installed, lines[0][0])
	}
	for i := range args {
		if args[i] == installed {
			args[i] = example
		}
	}
	if _, err := parseFlags(args, nil); err != nil {
		t.Errorf("%s: xenagent %s: %v", unitFile, lines[0][1], err)
	}
}

// systemd-analyze finds nothing to say about the unit, and its sandbox's
// exposure stays at most 2.5 (systemd-analyze security; 2.1 when written:
// the agent runs as root).
func TestSystemdUnitVerifies(t *testing.T) {
	verifyUnit(t, unitFile, "/usr/local/bin/xenagent", 25)
}

// verifyUnit, as cmd/xenmanager's, runs systemd-analyze verify on a copy of the unit whose
// command names an executable file of this machine (this test binary: what
// verify checks of the command is that it can be run), then
// systemd-analyze security, which fails above maxExposure tenths. Without
// systemd-analyze the test skips, saying so, except in CI, which installs
// it (.ci/run).
func verifyUnit(t *testing.T, unit, binary string, maxExposure int) {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("systemd-analyze is required in CI (package systemd): %v", err)
		}
		t.Skipf("SKIPPED: systemd-analyze not installed (package systemd); %s is not verified", unit)
	}
	text, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), unit)
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(string(text), binary, self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", copyPath).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
	}
	out, err = exec.Command(analyze, "security", "--offline=yes", "--threshold="+strconv.Itoa(maxExposure), copyPath).CombinedOutput()
	level := regexp.MustCompile(`Overall exposure level for \S+: (.*)`).FindSubmatch(out)
	if err != nil || level == nil {
		t.Errorf("systemd-analyze security %s: %v (most exposure allowed: %d tenths)\n%s", unit, err, maxExposure, out)
		return
	}
	t.Logf("%s: exposure %s", unit, level[1])
}
