package backend_test

import (
	"context"
	"testing"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/managertest"
)

// Placement end to end: each start lands on the server with the most room,
// as the agents report it, and a VM no server has room for is refused.
func TestStartPlacesWhereThereIsRoom(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 2, MemoryMiB: 8192, CPUs: 4})
	ctx := c.Admin()
	for _, step := range []struct {
		vm         string
		memoryMiB  int64
		wantServer string // "" when it must be refused
		wantKind   backend.Kind
	}{
		{"filler", 6144, "ovs1", 0}, // both empty: the first by name
		{"big", 4096, "ovs2", 0},    // ovs1 has no room left for it
		{"small", 512, "ovs2", 0},   // ovs2 has the most free memory
		{"huge", 8192, "", backend.KindInsufficientResources},
	} {
		if _, err := c.Manager.CreateVM(ctx, backend.CreateVMRequest{Name: step.vm, Repository: backend.Ref{Name: managertest.Repo},
			MemoryMiB: step.memoryMiB, CPUCount: 1}); err != nil {
			t.Fatalf("create %s: %v", step.vm, err)
		}
		v, err := c.Manager.StartVM(ctx, backend.Ref{Name: step.vm})
		if step.wantServer == "" {
			if backend.KindOf(err) != step.wantKind {
				t.Fatalf("start %s = %+v, %v; want %v", step.vm, v.Server, err, step.wantKind)
			}
			continue
		}
		if err != nil || v.Status != backend.VMRunning || v.Server.Name != step.wantServer {
			t.Fatalf("start %s: on %q (%s), %v; want Running on %s", step.vm, v.Server.Name, v.Status, err, step.wantServer)
		}
	}
}

// A start that the first candidate refuses for lack of memory tries the
// next one with that server's memory reserved while it is in flight there
// (so that fencing waits for it and a read of the server's capacity does
// not count it twice), and every reservation is released after.
func TestStartFallbackReservesTheServerItTries(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 2, MemoryMiB: 8192, CPUs: 4})
	ctx := c.Admin()
	if _, err := c.Manager.CreateVM(ctx, backend.CreateVMRequest{Name: "vm1", Repository: backend.Ref{Name: managertest.Repo},
		MemoryMiB: 512, CPUCount: 1}); err != nil {
		t.Fatal(err)
	}
	var tried []string
	reservedWhileTried := map[string]int64{}
	err := c.Manager.PlaceAndRun(ctx, backend.Ref{Name: "vm1"}, func(serverID string) error {
		tried = append(tried, serverID)
		reservedWhileTried[serverID] = c.Manager.ReservedMiB(serverID)
		if len(tried) == 1 {
			return agentapi.Errorf(agentapi.FaultInsufficientResources, "the first candidate is full")
		}
		return nil
	})
	if err != nil || len(tried) != 2 {
		t.Fatalf("start = %v after trying %d servers; want success on the second", err, len(tried))
	}
	for _, id := range tried {
		if reservedWhileTried[id] != 512 {
			t.Errorf("server %s had %d MiB reserved while the start was tried there, want 512", id, reservedWhileTried[id])
		}
		if n := c.Manager.ReservedMiB(id); n != 0 {
			t.Errorf("server %s keeps %d MiB reserved after the start", id, n)
		}
	}
}

// A start whose server's capacity is older than CapacityTTL is placed from
// it while the server is asked again; when that old capacity says no
// server has room, placement waits for the new one instead of refusing:
// here a VM stopped behind the manager's back freed the room.
func TestOldCapacityWithoutRoomIsAskedAgain(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 1, MemoryMiB: 8192, CPUs: 4})
	ctx := c.Admin()
	createVM(t, c, "a", 6144)
	createVM(t, c, "b", 4096)
	a, err := c.Manager.StartVM(ctx, backend.Ref{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	// a's domain goes behind the manager's back: its memory is free, which
	// the manager's cached capacity does not know.
	if err := c.AgentClient(0).StopVM(context.Background(), a.Repository.ID, a.ID, true); err != nil {
		t.Fatal(err)
	}
	c.Manager.AgeCapacities(backend.CapacityTTL + time.Second)
	b, err := c.Manager.StartVM(ctx, backend.Ref{Name: "b"})
	if err != nil || b.Server.Name != "ovs1" {
		t.Fatalf("start b with an old capacity that has no room for it: on %q, %v; want ovs1 once asked again", b.Server.Name, err)
	}
}
