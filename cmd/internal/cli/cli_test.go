package cli

import (
	"bytes"
	"errors"
	"flag"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionText(t *testing.T) {
	settings := func(kv ...string) []debug.BuildSetting {
		var out []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			out = append(out, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"a clean commit", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261202004451-bdca3be6cde1"},
			Settings: settings("GOOS", "linux", "GOARCH", "amd64", "vcs", "git", "vcs.revision", "bdca3be6cde116db531e7354fa217e72562b1c23",
				"vcs.time", "2026-12-02T00:44:51Z", "vcs.modified", "false")},
			`xenagent v0.0.0-20261202004451-bdca3be6cde1
  commit       bdca3be6cde116db531e7354fa217e72562b1c23
  commit date  2026-12-02T00:44:51Z
  go           go1.26.8 linux/amd64
`},
		{"uncommitted changes", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3+dirty"},
			Settings: settings("GOOS", "linux", "GOARCH", "arm64", "vcs.revision", "bdca3be6", "vcs.time", "2026-12-02T00:44:51Z", "vcs.modified", "true")},
			`xenagent v1.2.3+dirty
  commit       bdca3be6, with uncommitted changes
  commit date  2026-12-02T00:44:51Z
  go           go1.26.8 linux/arm64
`},
		{"no VCS information", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: settings("GOOS", "linux", "GOARCH", "amd64")},
			`xenagent (devel)
  commit       ` + withoutVCS + `
  go           go1.26.8 linux/amd64
`},
		{"no build information", nil, "xenagent (no build information in the binary)\n"},
	}
	for _, tc := range tests {
		if got := VersionText("xenagent", tc.bi); got != tc.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tc.name, got, tc.want)
		}
	}
}

func TestParseFlagsSendsHelpToStdoutAndErrorsToStderr(t *testing.T) {
	parse := func(args ...string) (error, string, string) {
		fs := flag.NewFlagSet("demo", flag.ContinueOnError)
		fs.Int("n", 1, "how many")
		var stdout, stderr bytes.Buffer
		err := ParseFlags(fs, args, &stdout, &stderr)
		return err, stdout.String(), stderr.String()
	}
	if err, stdout, stderr := parse("--help"); !errors.Is(err, flag.ErrHelp) || !strings.Contains(stdout, "how many") || stderr != "" {
		t.Errorf("--help: %v\nstdout: %q\nstderr: %q", err, stdout, stderr)
	}
	if err, stdout, stderr := parse("-x"); !errors.Is(err, ErrUsage) || stdout != "" ||
		!strings.Contains(stderr, "flag provided but not defined: -x") || !strings.Contains(stderr, "how many") {
		t.Errorf("-x: %v\nstdout: %q\nstderr: %q", err, stdout, stderr)
	}
	if err, stdout, stderr := parse("-n", "3"); err != nil || stdout != "" || stderr != "" {
		t.Errorf("-n 3: %v\nstdout: %q\nstderr: %q", err, stdout, stderr)
	}
}

func TestExitStatus(t *testing.T) {
	for err, want := range map[error]int{
		nil:                          0,
		flag.ErrHelp:                 0,
		ErrUsage:                     2,
		errors.New("listen: in use"): 1,
	} {
		if got := ExitStatus(err); got != want {
			t.Errorf("ExitStatus(%v) = %d, want %d", err, got, want)
		}
	}
}
