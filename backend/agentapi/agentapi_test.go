package agentapi

import "testing"

// An agent that predates hypervisor_type is taken as Xen of an unknown
// version; one that reports it is taken at its word.
func TestServerInfoHypervisor(t *testing.T) {
	for _, c := range []struct {
		name                  string
		info                  ServerInfo
		wantKind, wantVersion string
	}{
		{"older agent: no fields", ServerInfo{}, HypervisorXen, ""},
		{"older agent: a stray version without a type", ServerInfo{HypervisorVersion: "4.17"}, HypervisorXen, ""},
		{"simulated host", ServerInfo{HypervisorType: HypervisorSimulated}, HypervisorSimulated, ""},
		{"xen with its version", ServerInfo{HypervisorType: HypervisorXen, HypervisorVersion: "4.17.3"}, HypervisorXen, "4.17.3"},
		{"qemu with its version", ServerInfo{HypervisorType: HypervisorQEMU, HypervisorVersion: "8.2.2"}, HypervisorQEMU, "8.2.2"},
	} {
		kind, version := c.info.Hypervisor()
		if kind != c.wantKind || version != c.wantVersion {
			t.Errorf("%s: Hypervisor() = %q, %q; want %q, %q", c.name, kind, version, c.wantKind, c.wantVersion)
		}
	}
}
