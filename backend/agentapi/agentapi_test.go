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

// get_api_version's extensions: absent from an older agent, which then has
// none; unknown names are ignored.
func TestVersionInfoExtensions(t *testing.T) {
	for _, c := range []struct {
		name string
		raw  map[string]any
		want bool
	}{
		{"older agent", map[string]any{"api_version": "3", "agent_version": "3.4.6"}, false},
		{"empty", map[string]any{"api_version": "3", "extensions": []any{}}, false},
		{"other extensions", map[string]any{"api_version": "3", "extensions": []any{"future_thing"}}, false},
		{"listed", map[string]any{"api_version": "3", "extensions": []any{"future_thing", ExtImportAllowedNetworks}}, true},
	} {
		var v VersionInfo
		if err := Decode(c.raw, &v); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := v.Has(ExtImportAllowedNetworks); got != c.want {
			t.Errorf("%s: Has(%s) = %v, want %v", c.name, ExtImportAllowedNetworks, got, c.want)
		}
	}
}

// The import option carries allowed_networks only when it holds a network,
// so that the call stays the Oracle VM Agent API's otherwise.
func TestImportOptionStruct(t *testing.T) {
	if got := (ImportOption{Kind: ImportKindISO}).Struct(); len(got) != 1 || got[ImportOptionKind] != ImportKindISO {
		t.Errorf("option without networks = %v, want kind only", got)
	}
	got := ImportOption{Kind: ImportKindDisk, AllowedNetworks: []string{"10.0.0.0/8"}}.Struct()
	if nets, _ := got[ImportOptionAllowedNetworks].([]string); len(got) != 2 || len(nets) != 1 || nets[0] != "10.0.0.0/8" {
		t.Errorf("option with a network = %v", got)
	}
}
