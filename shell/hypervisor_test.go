package shell

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"xenmanager/backend/agent"
	"xenmanager/backend/agent/agenttest"
)

// show Server and list Server say which hypervisor a server runs (a
// simulated host says so), and add Server refuses a server of another
// type than its pool's, naming both.
func TestHypervisorShownAndPoolsKeepOneType(t *testing.T) {
	e := newEnv(t, 1, 8192)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	if got := prop(e.mustRun("show Server name=ovs1"), "Hypervisor"); got != "simulated" {
		t.Fatalf("show Server name=ovs1: Hypervisor = %q, want simulated", got)
	}
	kvm := agenttest.Start(t, agent.Config{Hostname: "kvm1", Driver: agenttest.SimulatedAs("qemu", "8.2.2")})
	e.mustRun(fmt.Sprintf("discoverServer ipAddress=127.0.0.1 port=%d password=%s", kvm.Port(), kvm.Password))
	if got := prop(e.mustRun("show Server name=kvm1"), "Hypervisor"); got != "qemu 8.2.2" {
		t.Fatalf("show Server name=kvm1: Hypervisor = %q, want qemu 8.2.2", got)
	}
	out := e.mustRun("set outputMode=Table; list Server")
	for _, want := range []string{"Hypervisor", "| simulated ", "| qemu "} {
		if !strings.Contains(out, want) {
			t.Fatalf("list Server lacks %q:\n%s", want, out)
		}
	}
	e.failCode("add Server name=kvm1 to ServerPool name=pool1", "XM_0400E",
		"Server kvm1 runs hypervisor qemu", "ServerPool pool1 has servers running simulated (ovs1)")
}
