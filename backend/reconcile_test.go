package backend_test

import (
	"context"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
	"xenmanager/backend/managertest"
)

// A domain that goes away behind the manager's back is recorded Stopped by
// Reconcile, however it went; a VM that still runs is left as it is.
func TestReconcileRecordsADomainGoneStopped(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 1})
	ctx := c.Admin()
	agent := c.AgentClient(0)
	for _, tc := range []struct {
		name   string
		behind func(cl *agentclient.Client, v backend.VM) error
	}{
		{"destroyed through the agent", func(cl *agentclient.Client, v backend.VM) error {
			return cl.StopVM(context.Background(), v.Repository.ID, v.ID, true)
		}},
		{"the guest shut itself down", func(cl *agentclient.Client, v backend.VM) error {
			return cl.Call(context.Background(), agentapi.MethodSimSet, nil, map[string]any{"guest_shutdown": v.ID})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, name := range []string{"gone", "stays"} {
				if _, err := c.Manager.CreateVM(ctx, backend.CreateVMRequest{Name: name, Repository: backend.Ref{Name: managertest.Repo},
					MemoryMiB: 256, CPUCount: 1}); err != nil {
					t.Fatal(err)
				}
				if _, err := c.Manager.StartVM(ctx, backend.Ref{Name: name}); err != nil {
					t.Fatal(err)
				}
			}
			gone, err := c.Manager.VM(ctx, backend.Ref{Name: "gone"})
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.behind(agent, gone); err != nil {
				t.Fatal(err)
			}
			if n, err := c.Manager.Reconcile(ctx); n != 1 || err != nil {
				t.Fatalf("Reconcile = %d, %v; want 1 VM changed", n, err)
			}
			for name, want := range map[string]string{"gone": backend.VMStopped, "stays": backend.VMRunning} {
				v, err := c.Manager.VM(ctx, backend.Ref{Name: name})
				if err != nil || v.Status != want || (want == backend.VMStopped) != (v.Server.ID == "") {
					t.Fatalf("after Reconcile %s = %s on %q, %v; want %s", name, v.Status, v.Server.Name, err, want)
				}
			}
			if n, err := c.Manager.Reconcile(ctx); n != 0 || err != nil {
				t.Fatalf("a second Reconcile = %d, %v; want nothing changed", n, err)
			}
			// Clear the names for the next case.
			if _, err := c.Manager.KillVM(ctx, backend.Ref{Name: "stays"}); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"gone", "stays"} {
				if _, err := c.Manager.DeleteVM(ctx, backend.Ref{Name: name}); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
