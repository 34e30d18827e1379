package main

import (
	"bytes"
	"debug/buildinfo"
	"errors"
	"os/exec"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"xenmanager/backend"
	"xenmanager/shell"
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
		{"xenmanager", []string{"serve", "--max-startups", "10:30"}, `invalid value "10:30" for flag -max-startups: "10:30": use start:rate:full`},
		{"xenagent", []string{"--no-such-flag"}, "flag provided but not defined: -no-such-flag"},
	}
	for _, tc := range tests {
		_, stderr, code := run(t, tc.program, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s %s: exit %d, want 2 and %q on stderr:\n%s", tc.program, strings.Join(tc.args, " "), code, tc.want, stderr)
		}
	}
}

// serve's limits flags reach the SSH server's Limits, and nonsense is
// refused saying which flag and what it takes.
func TestServeLimitFlags(t *testing.T) {
	o, err := parseServeFlags([]string{"--max-startups", "5:50:20", "--max-startups-per-address", "4", "--max-sessions", "300",
		"--max-sessions-per-user", "200", "--max-sessions-per-conn", "3", "--login-grace-time", "7s", "--password-checks", "3",
		"--session-setups", "5", "--table-draws", "6"}, nil)
	want := shell.Limits{Startups: shell.Startups{Start: 5, Rate: 50, Full: 20}, StartupsPerAddress: 4, Sessions: 300,
		SessionsPerUser: 200, SessionsPerConn: 3, SessionSetups: 5}
	if err != nil || o.limits != want || o.loginGrace != 7*time.Second || o.passwordChecks != 3 || o.tableDraws != 6 {
		t.Fatalf("limits %+v, grace %s, password checks %d, table draws %d, %v; want %+v, 7s, 3, 6", o.limits, o.loginGrace, o.passwordChecks, o.tableDraws, err, want)
	}
	if o, err := parseServeFlags(nil, nil); err != nil || o.limits != shell.DefaultLimits() || o.loginGrace != shell.DefaultLoginGraceTime ||
		o.passwordChecks != backend.DefaultPasswordChecks() {
		t.Fatalf("defaults: %+v, %s, %d, %v", o.limits, o.loginGrace, o.passwordChecks, err)
	}
	// From the environment too, as every flag.
	o, err = parseServeFlags(nil, []string{"XENMANAGER_MAX_STARTUPS=20", "XENMANAGER_MAX_SESSIONS_PER_CONN=4"})
	if err != nil || o.limits.Startups != (shell.Startups{Start: 20, Rate: 100, Full: 20}) || o.limits.SessionsPerConn != 4 {
		t.Fatalf("from the environment: %+v, %v", o.limits, err)
	}
	if _, err := parseServeFlags(nil, []string{"XENMANAGER_MAX_STARTUPS=10:30"}); err == nil || !strings.Contains(err.Error(), "use start:rate:full") {
		t.Fatalf("a bad XENMANAGER_MAX_STARTUPS: %v", err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-sessions", "0"}, "--max-sessions 0: use 1 or more"},
		{[]string{"--max-sessions-per-user", "-1"}, "--max-sessions-per-user -1: use 1 or more"},
		{[]string{"--max-sessions-per-conn", "0"}, "--max-sessions-per-conn 0: use 1 or more"},
		{[]string{"--max-startups-per-address", "0"}, "--max-startups-per-address 0: use 1 or more"},
		{[]string{"--login-grace-time", "0s"}, "--login-grace-time 0s: use a positive duration"},
		{[]string{"--password-checks", "0"}, "--password-checks 0: use 1 or more"},
	} {
		if _, err := parseServeFlags(tc.args, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
}

// serve's membership flags: defaults, values from the command line, and
// times that do not fit together refused, saying what would.
func TestServeMembershipFlags(t *testing.T) {
	o, err := parseServeFlags(nil, nil)
	if err != nil || o.memberRenew != time.Second || o.memberTimeout != 5*time.Second || o.leaderLease != 5*time.Second {
		t.Fatalf("defaults: renew %s, timeout %s, lease %s, %v; want 1s, 5s, 5s", o.memberRenew, o.memberTimeout, o.leaderLease, err)
	}
	for _, tc := range []struct {
		args []string
		want string // in the error; "" for none
	}{
		{[]string{"--member-renew", "200ms", "--member-timeout", "600ms", "--leader-lease", "2s"}, ""},
		{[]string{"--member-renew", "0s"}, "member renewal interval 0s: use a positive duration"},
		{[]string{"--member-timeout", "2s"}, "member timeout 2s: use at least 3 renewal intervals (3s)"},
		{[]string{"--leader-lease", "2500ms"}, "leader lease 2.5s: use at least 3 renewal intervals (3s)"},
		{[]string{"--member-renew", "2s"}, "member timeout 5s: use at least 3 renewal intervals (6s)"},
	} {
		_, err := parseServeFlags(tc.args, nil)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v: %v, want an error saying %q", tc.args, err, tc.want)
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

// --database (or XENMANAGER_DATABASE) takes a PostgreSQL URL; anything else
// is refused, and so is --demo with it, without the value in the error
// (the URL may hold a password).
func TestServeDatabaseFlag(t *testing.T) {
	const url = "postgres://xm:s3cret-pw@db.example:5432/fleet"
	o, err := parseServeFlags(nil, []string{"XENMANAGER_DATABASE=" + url})
	if err != nil || o.database != url {
		t.Fatalf("from the environment: %q, %v", o.database, err)
	}
	if o, err := parseServeFlags(nil, nil); err != nil || o.database != "" {
		t.Fatalf("default: %q, %v; want none (SQLite in --data)", o.database, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--database", "mysql://xm:s3cret-pw@db/fleet"}, "--database: give a PostgreSQL URL"},
		{[]string{"--database", "s3cret-pw"}, "--database: give a PostgreSQL URL"},
		{[]string{"--database", url, "--demo", "2"}, "--demo with --database"},
	} {
		_, err := parseServeFlags(tc.args, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("%v: %v; want an error saying %q without the value", tc.args, err, tc.want)
		}
	}
}
