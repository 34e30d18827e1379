package backend_test

import (
	"testing"

	"xenmanager/backend"
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
