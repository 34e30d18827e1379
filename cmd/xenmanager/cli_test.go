package main

import (
	"bytes"
	"debug/buildinfo"
	"errors"
	"os/exec"
	"runtime/debug"
	"strings"
	"testing"
)

// run runs one of the built programs with args and returns its stdout,
// stderr and exit status.
func run(t *testing.T, program string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(buildBinary(t, program), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("%s %v: %v", program, args, err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

// Every subcommand of both programs answers -h and --help on stdout with
// exit status 0 (issue 12, item 16).
func TestHelpExitsZeroEverywhere(t *testing.T) {
	tests := []struct {
		program string
		args    []string
		want    string // in stdout
	}{
		{"xenmanager", []string{"-h"}, "usage: xenmanager <subcommand>"},
		{"xenmanager", []string{"--help"}, "usage: xenmanager <subcommand>"},
		{"xenmanager", []string{"help"}, "usage: xenmanager <subcommand>"},
		{"xenmanager", []string{"help", "--help"}, "usage: xenmanager <subcommand>"},
		{"xenmanager", []string{"serve", "-h"}, "usage: xenmanager serve [flags]"},
		{"xenmanager", []string{"serve", "--help"}, "-listen"},
		{"xenmanager", []string{"prompt", "-h"}, "usage: xenmanager prompt"},
		{"xenmanager", []string{"prompt", "--help"}, "usage: xenmanager prompt"},
		{"xenmanager", []string{"reference", "-h"}, "usage: xenmanager reference"},
		{"xenmanager", []string{"reference", "--help"}, "usage: xenmanager reference"},
		{"xenmanager", []string{"version", "--help"}, "usage: xenmanager version"},
		{"xenagent", []string{"-h"}, "usage: xenagent [flags]"},
		{"xenagent", []string{"--help"}, "-hypervisor"},
	}
	for _, tc := range tests {
		stdout, stderr, code := run(t, tc.program, tc.args...)
		if code != 0 || !strings.Contains(stdout, tc.want) || stderr != "" {
			t.Errorf("%s %s: exit %d, want 0 and %q on stdout\nstdout:\n%s\nstderr:\n%s",
				tc.program, strings.Join(tc.args, " "), code, tc.want, stdout, stderr)
		}
	}
}

// A flag or subcommand that does not exist is a usage error: exit status 2,
// the reason on stderr.
func TestUsageErrorsExitTwo(t *testing.T) {
	tests := []struct {
		program string
		args    []string
		want    string // in stderr
	}{
		{"xenmanager", []string{"serve", "--no-such-flag"}, "flag provided but not defined: -no-such-flag"},
		{"xenmanager", []string{"frobnicate"}, `unknown subcommand "frobnicate"`},
		{"xenagent", []string{"--no-such-flag"}, "flag provided but not defined: -no-such-flag"},
	}
	for _, tc := range tests {
		_, stderr, code := run(t, tc.program, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s %s: exit %d, want 2 and %q on stderr:\n%s", tc.program, strings.Join(tc.args, " "), code, tc.want, stderr)
		}
	}
}

// --version says which build runs: the main module's version, the commit
// when the toolchain recorded one (or that it did not), and the toolchain,
// as debug/buildinfo reads them from the binary.
func TestVersion(t *testing.T) {
	tests := []struct {
		program string
		args    []string
	}{
		{"xenmanager", []string{"--version"}},
		{"xenmanager", []string{"-version"}},
		{"xenmanager", []string{"version"}},
		{"xenagent", []string{"--version"}},
		{"xenagent", []string{"-version"}},
		{"xenagent", []string{"--version", "--config", "/nonexistent/xenagent.toml"}}, // an answer, not a setting: no file read
	}
	for _, tc := range tests {
		bi, err := buildinfo.ReadFile(buildBinary(t, tc.program))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{tc.program + " " + bi.Main.Version + "\n", "go           " + bi.GoVersion + " "}
		if rev := setting(bi, "vcs.revision"); rev != "" {
			want = append(want, "commit       "+rev, "commit date  "+setting(bi, "vcs.time"))
		} else {
			want = append(want, "commit       unknown: built without VCS information")
		}
		stdout, stderr, code := run(t, tc.program, tc.args...)
		if code != 0 || stderr != "" {
			t.Errorf("%s %s: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", tc.program, strings.Join(tc.args, " "), code, stdout, stderr)
			continue
		}
		if !strings.HasPrefix(stdout, want[0]) {
			t.Errorf("%s %s begins %q; want %q", tc.program, strings.Join(tc.args, " "), stdout, want[0])
		}
		for _, w := range want[1:] {
			if !strings.Contains(stdout, w) {
				t.Errorf("%s %s does not say %q:\n%s", tc.program, strings.Join(tc.args, " "), w, stdout)
			}
		}
	}
}

// setting returns the value of one of a build's settings, "" when absent.
func setting(bi *debug.BuildInfo, key string) string {
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}
