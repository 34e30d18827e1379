package main

import (
	"flag"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
)

func TestCheckHypervisorFlags(t *testing.T) {
	tests := []struct {
		hv    string
		given []string
		err   string // "" when accepted
	}{
		{"sim", []string{"cpus", "memory-mib", "sim-control", "listen"}, ""},
		{"libvirt", []string{"libvirt-uri", "libvirt-socket", "migration-host", "allow-host-power", "data"}, ""},
		{"libvirt", []string{"libvirt-uri", "cpus", "memory-mib"}, "--cpus, --memory-mib: not used with --hypervisor libvirt"},
		{"sim", []string{"libvirt-uri"}, "--libvirt-uri: not used with --hypervisor sim"},
		{"xen", nil, `--hypervisor "xen" is not known (accepted: sim, libvirt)`},
	}
	for _, tc := range tests {
		err := checkHypervisorFlags(tc.hv, tc.given)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("checkHypervisorFlags(%q, %q) = %v, want %q", tc.hv, tc.given, err, tc.err)
		}
	}
}

// The example configuration file of docs/examples is accepted by the agent
// and names every flag it takes but --version (set, or commented out with
// its default), so that it stays a full example as flags are added.
func TestExampleConfigFile(t *testing.T) {
	example := "../../docs/examples/xenagent.toml"
	o, err := parseFlags([]string{"--config", example}, nil)
	if err != nil {
		t.Fatalf("xenagent refuses %s: %v", example, err)
	}
	if o.hypervisor != "libvirt" || o.listen != ":8899" || !o.logging.JSON {
		t.Errorf("%s read as hypervisor %q, listen %q, JSON log %v", example, o.hypervisor, o.listen, o.logging.JSON)
	}
	text, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	newFlagSet(&options{}).VisitAll(func(f *flag.Flag) {
		if f.Name != "version" && !regexp.MustCompile(`(?m)^#? ?`+regexp.QuoteMeta(f.Name)+` = `).Match(text) {
			t.Errorf("%s does not name --%s: add it, commented out with its default if the example leaves it", example, f.Name)
		}
	})
}

// --debug is --log-level debug, from any source.
func TestDebugIsLogLevelDebug(t *testing.T) {
	for _, tc := range []struct {
		args, env []string
		want      slog.Level
	}{
		{nil, nil, slog.LevelInfo},
		{[]string{"--debug"}, nil, slog.LevelDebug},
		{nil, []string{"XENAGENT_DEBUG=true"}, slog.LevelDebug},
		{[]string{"--log-level", "warn"}, nil, slog.LevelWarn},
		{[]string{"--log-level", "warn", "--debug"}, nil, slog.LevelDebug},
	} {
		o, err := parseFlags(tc.args, tc.env)
		if err != nil || o.logging.Level != tc.want {
			t.Errorf("%q %q: level %v (%v), want %v", tc.args, tc.env, o.logging.Level, err, tc.want)
		}
	}
}
