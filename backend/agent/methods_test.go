package agent

import (
	"testing"

	"xenmanager/backend/agentapi"
)

// TestMethodTableFollowsContract: with fault injection on, the agent serves
// exactly the methods agentapi.Signatures declares; without it, all but
// sim_set. Each entry carries its contract signature.
func TestMethodTableFollowsContract(t *testing.T) {
	for _, simControl := range []bool{true, false} {
		a, err := New(Config{DataDir: t.TempDir(), Password: "pw", Hostname: "ovs-table", SimControl: simControl})
		if err != nil {
			t.Fatal(err)
		}
		for name, sig := range agentapi.Signatures {
			m, ok := a.methods[name]
			if name == agentapi.MethodSimSet && !simControl {
				if ok {
					t.Errorf("sim_set served without SimControl")
				}
				continue
			}
			if !ok {
				t.Errorf("SimControl %v: method %s is declared but not served", simControl, name)
				continue
			}
			if m.sig.String() != sig.String() {
				t.Errorf("method %s checks (%s), the contract says (%s)", name, m.sig, sig)
			}
		}
		for name := range a.methods {
			if _, ok := agentapi.Signatures[name]; !ok {
				t.Errorf("method %s is served but not declared", name)
			}
		}
	}
}
