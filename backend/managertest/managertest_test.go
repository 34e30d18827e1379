package managertest_test

import (
	"context"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
)

// Ready gives a fleet where VMs can be created: every agent discovered as
// a Running server of pool Pool, which has repository Repo; and a client
// of each agent of the test's own.
func TestReady(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 2, MemoryMiB: 4096, CPUs: 2})
	ctx := c.Admin()
	servers, err := c.Manager.Servers(ctx, backend.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) != 2 {
		t.Fatalf("%d servers, want 2", len(servers))
	}
	for i, s := range servers {
		if s.Status != backend.ServerRunning || s.Pool.Name != managertest.Pool || s.Port != c.Agents[i].Port() {
			t.Fatalf("server %d = %s, %s in %q on port %d; want Running in %s on %d", i, s.Name, s.Status, s.Pool.Name, s.Port,
				managertest.Pool, c.Agents[i].Port())
		}
	}
	if r, err := c.Manager.Repository(ctx, backend.Ref{Name: managertest.Repo}); err != nil || r.Pool.Name != managertest.Pool {
		t.Fatalf("repository = %+v, %v; want %s in %s", r, err, managertest.Repo, managertest.Pool)
	}
	if _, err := c.AgentClient(1).Echo(context.Background(), "hello"); err != nil {
		t.Fatal(err)
	}
}
