package backend_test

import (
	"context"
	"strings"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/agent"
	"xenmanager/backend/agent/agenttest"
	"xenmanager/backend/managertest"
)

// discoverAs starts an agent whose simulated host reports hypervisor kind
// and version, and discovers it.
func discoverAs(t *testing.T, c *managertest.Core, hostname, kind, version string) backend.Server {
	t.Helper()
	a := agenttest.Start(t, agent.Config{Hostname: hostname, Driver: agenttest.SimulatedAs(kind, version)})
	s, err := c.Manager.DiscoverServer(c.Admin(), backend.DiscoverRequest{Address: "127.0.0.1", Port: a.Port(), Password: a.Password})
	if err != nil {
		t.Fatalf("discover %s: %v", hostname, err)
	}
	return s
}

// Discovery records the hypervisor each agent reports, and a pool takes
// servers of one hypervisor type only: the first server decides, another
// type is refused naming both types and the pool's servers, and the
// refused server stays in no pool.
func TestPoolKeepsOneHypervisorType(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 1}) // pool1: ovs1, simulated
	ctx := c.Admin()
	for _, d := range []struct{ host, kind, version, wantKind, wantVersion string }{
		{"kvm1", "qemu", "8.2.2", "qemu", "8.2.2"},
		{"kvm2", "qemu", "8.2.2", "qemu", "8.2.2"},
		{"xen1", "xen", "4.17.3", "xen", "4.17.3"},
		{"old1", "", "", "xen", ""}, // an agent that predates the fields sends neither
	} {
		s := discoverAs(t, c, d.host, d.kind, d.version)
		if s.HypervisorType != d.wantKind || s.HypervisorVersion != d.wantVersion {
			t.Fatalf("%s recorded as %q %q, want %q %q", d.host, s.HypervisorType, s.HypervisorVersion, d.wantKind, d.wantVersion)
		}
	}
	if s, err := c.Manager.Server(ctx, backend.Ref{Name: "ovs1"}); err != nil || s.HypervisorType != "simulated" || s.HypervisorVersion != "" {
		t.Fatalf("ovs1 recorded as %q %q (%v), want simulated without a version", s.HypervisorType, s.HypervisorVersion, err)
	}
	for _, name := range []string{"kvm", "xenpool"} {
		if _, err := c.Manager.CreateServerPool(ctx, name, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []struct {
		server, pool string
		wantRefusal  []string // what the error names; nil when the server must be added
	}{
		{"kvm1", managertest.Pool, []string{"kvm1", "qemu", "pool1", "simulated", "ovs1"}},
		{"kvm1", "kvm", nil}, // an empty pool takes any type
		{"kvm2", "kvm", nil},
		{"xen1", "kvm", []string{"xen1", "xen", "kvm", "qemu", "kvm1, kvm2"}},
		{"xen1", "xenpool", nil},
		{"old1", "xenpool", nil}, // taken as xen
	} {
		_, err := c.Manager.AddServerToPool(ctx, backend.Ref{Name: step.server}, backend.Ref{Name: step.pool})
		if step.wantRefusal == nil {
			if err != nil {
				t.Fatalf("add %s to %s: %v", step.server, step.pool, err)
			}
			continue
		}
		if backend.KindOf(err) != backend.KindInvalidArgument {
			t.Fatalf("add %s to %s = %v; want an InvalidArgument refusal", step.server, step.pool, err)
		}
		if s, err := c.Manager.Server(ctx, backend.Ref{Name: step.server}); err != nil || s.Pool.Name == step.pool {
			t.Fatalf("refused %s is in pool %q (%v)", step.server, s.Pool.Name, err)
		}
		for _, want := range step.wantRefusal {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("add %s to %s: %q does not name %q", step.server, step.pool, err, want)
			}
		}
	}
}

// Rediscovering a server records what its agent reports now; a pooled
// server that now reports another type than its pool's others is recorded
// all the same, with a Warning event saying the pool is mixed.
func TestRediscoveryRecordsTheHypervisorAndWarnsOfAMixedPool(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 2})
	ctx := c.Admin()
	old := c.Agents[1]
	dataDir := old.Host().DataDir()
	if err := old.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The same server (its state, identity and certificate) with a Xen driver.
	a := agenttest.Start(t, agent.Config{Hostname: old.Hostname, DataDir: dataDir, Password: old.Password,
		Driver: agenttest.SimulatedAs("xen", "4.17.3")})
	s, err := c.Manager.DiscoverServer(ctx, backend.DiscoverRequest{Address: "127.0.0.1", Port: a.Port(), Password: a.Password})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != old.Hostname || s.Pool.Name != managertest.Pool || s.HypervisorType != "xen" || s.HypervisorVersion != "4.17.3" {
		t.Fatalf("rediscovered %s in pool %q as %q %q; want %s in %s as xen 4.17.3", s.Name, s.Pool.Name,
			s.HypervisorType, s.HypervisorVersion, old.Hostname, managertest.Pool)
	}
	events, err := c.Manager.Events(ctx, true, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.Kind == "ServerPoolMixedHypervisors" && e.Name == old.Hostname && strings.Contains(e.Description, "xen") &&
			strings.Contains(e.Description, "simulated") {
			return
		}
	}
	t.Fatalf("no ServerPoolMixedHypervisors event for %s among %+v", old.Hostname, events)
}
