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

// A domain that a listing showed live is adopted only if it still runs when
// the VM's lock is taken: a start in flight shows its domain while the
// guest comes up, and when that start fails the VM must stay as recorded
// (an HA restart refused for its disks' lock was once recorded Running on
// the refusing server, then Stopped, and never tried again).
func TestReconcileAdoptsOnlyADomainStillLive(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 1})
	ctx := c.Admin()
	agent := c.AgentClient(0)
	server := c.Discover()[0]
	for _, tc := range []struct {
		name      string
		runBehind bool // started through the agent, behind the manager
		want      int
		status    string
	}{
		{"the domain is gone since the listing", false, 0, backend.VMStopped},
		{"the domain still runs", true, 1, backend.VMRunning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := c.Manager.CreateVM(ctx, backend.CreateVMRequest{Name: "listed", Repository: backend.Ref{Name: managertest.Repo},
				MemoryMiB: 256, CPUCount: 1})
			if err != nil {
				t.Fatal(err)
			}
			if tc.runBehind {
				if err := agent.StartVM(context.Background(), v.Repository.ID, v.ID); err != nil {
					t.Fatal(err)
				}
			}
			if n, err := c.Manager.AdoptListed(ctx, server.ID, v.ID); n != tc.want || err != nil {
				t.Fatalf("adopt = %d, %v; want %d", n, err, tc.want)
			}
			got, err := c.Manager.VM(ctx, backend.Ref{Name: "listed"})
			if err != nil || got.Status != tc.status {
				t.Fatalf("after adopt the VM is %s on %q, %v; want %s", got.Status, got.Server.Name, err, tc.status)
			}
			events, err := c.Manager.Events(ctx, false, 1000)
			if err != nil {
				t.Fatal(err)
			}
			found := 0
			for _, e := range events {
				if e.Kind == "VmFoundRunning" && e.ObjectID == v.ID {
					found++
				}
			}
			if found != tc.want {
				t.Fatalf("%d VmFoundRunning events for the VM; want %d", found, tc.want)
			}
			if tc.runBehind {
				if _, err := c.Manager.KillVM(ctx, backend.Ref{Name: "listed"}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := c.Manager.DeleteVM(ctx, backend.Ref{Name: "listed"}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
