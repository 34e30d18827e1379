package main

import (
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
