package backend_test

import (
	"context"
	"strings"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
)

// Removing the pool's master makes another member the master, with an
// event naming both; remove force=Yes of a server that answers is the
// ordinary removal: its agent leaves the pool.
func TestRemovingTheMasterMovesIt(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 3, MemoryMiB: 4096, CPUs: 2})
	ctx := c.Admin()
	m := c.Manager
	master := func() string {
		t.Helper()
		p, err := m.ServerPool(ctx, backend.Ref{Name: managertest.Pool})
		if err != nil {
			t.Fatal(err)
		}
		return p.Master.Name
	}
	if got := master(); got != "ovs1" {
		t.Fatalf("master %q, want ovs1, the first added", got)
	}
	if _, err := m.RemoveServerFromPool(ctx, backend.Ref{Name: "ovs1"}, backend.Ref{Name: managertest.Pool}, true); err != nil {
		t.Fatal(err)
	}
	if got := master(); got != "ovs2" {
		t.Fatalf("master after removing ovs1: %q, want ovs2", got)
	}
	evs, err := m.Events(ctx, false, 100)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range evs {
		found = found || e.Kind == "ServerPoolMasterChanged" && strings.Contains(e.Description, "the master of ServerPool pool1 moved from ovs1 (it left the pool) to ovs2")
	}
	if !found {
		t.Fatalf("no event of the master's move: %+v", evs)
	}
	if info, err := c.AgentClient(0).DiscoverServerPool(context.Background()); err != nil || info.PoolUUID != "" {
		t.Fatalf("ovs1 after remove force=Yes while it answers: in pool %+v, %v; want none (it was told)", info, err)
	}
}
