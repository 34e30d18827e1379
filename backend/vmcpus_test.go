package backend_test

import (
	"fmt"
	"strings"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
)

// A live decrease of a running VM's vCPUs changes its current vCPUs only:
// vm.cfg keeps the maxvcpus it started with, the recorded limit (Max.
// Processors) stays that, and raising the count back while it still runs
// works.
func TestEditVMLiveVCPUsKeepTheMaximum(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 1, CPUs: 4})
	ctx := c.Admin()
	repo, err := c.Manager.Repository(ctx, backend.Ref{Name: managertest.Repo})
	if err != nil {
		t.Fatal(err)
	}
	vm := backend.Ref{Name: "two"}
	created, err := c.Manager.CreateVM(ctx, backend.CreateVMRequest{Name: "two", Repository: backend.Ref{Name: managertest.Repo}, MemoryMiB: 512, CPUCount: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Manager.StartVM(ctx, vm); err != nil {
		t.Fatal(err)
	}
	n := func(i int64) *int64 { return &i }
	for _, step := range []struct {
		count           int64
		wantVCPUs       string // in vm.cfg
		wantMaxVCPUs    string // in vm.cfg
		wantMaxRecorded int64  // Max. Processors: max(limit, count)
	}{
		{count: 1, wantVCPUs: "1", wantMaxVCPUs: "2", wantMaxRecorded: 2},
		{count: 2, wantVCPUs: "2", wantMaxVCPUs: "2", wantMaxRecorded: 2},
		{count: 1, wantVCPUs: "1", wantMaxVCPUs: "2", wantMaxRecorded: 2},
	} {
		v, err := c.Manager.EditVM(ctx, vm, backend.EditVMRequest{CPUCount: n(step.count)})
		if err != nil {
			t.Fatalf("edit cpuCount=%d of the running VM: %v", step.count, err)
		}
		if v.Status != backend.VMRunning || v.CPUCount != step.count || max(v.CPUCountLimit, v.CPUCount) != step.wantMaxRecorded {
			t.Fatalf("after cpuCount=%d: %s with %d vCPUs, limit %d; want Running with %d, limit %d",
				step.count, v.Status, v.CPUCount, max(v.CPUCountLimit, v.CPUCount), step.count, step.wantMaxRecorded)
		}
		cfg := readVMConfig(t, repo, created.ID)
		if got := fmt.Sprint(cfg["vcpus"]); got != step.wantVCPUs {
			t.Errorf("after cpuCount=%d vm.cfg vcpus = %s, want %s", step.count, got, step.wantVCPUs)
		}
		if got := fmt.Sprint(cfg["maxvcpus"]); got != step.wantMaxVCPUs {
			t.Errorf("after cpuCount=%d vm.cfg maxvcpus = %s, want %s", step.count, got, step.wantMaxVCPUs)
		}
	}
	// Above the maximum it started with is still refused while it runs.
	if _, err := c.Manager.EditVM(ctx, vm, backend.EditVMRequest{CPUCount: n(3)}); backend.KindOf(err) != backend.KindInvalidArgument ||
		!strings.Contains(err.Error(), "above cpuCountLimit 2") {
		t.Fatalf("edit cpuCount=3 of a VM running with maxvcpus 2: %v; want it refused", err)
	}
}

// A cpuPinning naming CPUs the VM's server lacks is refused while the VM
// runs there, saying which CPUs the server has; a stopped VM takes it, but
// cannot start or be sent to a server that lacks them, and is told so.
func TestCPUPinningAgainstTheServersCPUs(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 2, CPUs: 4})
	ctx := c.Admin()
	vm := backend.Ref{Name: "pinned"}
	if _, err := c.Manager.CreateVM(ctx, backend.CreateVMRequest{Name: "pinned", Repository: backend.Ref{Name: managertest.Repo}, MemoryMiB: 512, CPUCount: 2}); err != nil {
		t.Fatal(err)
	}
	pin := func(s string) backend.EditVMRequest { return backend.EditVMRequest{CPUPinning: &s} }
	pinning := func() string {
		v, err := c.Manager.VM(ctx, vm)
		if err != nil {
			t.Fatal(err)
		}
		return v.CPUPinning
	}
	// Stopped: no server to judge it by yet.
	if _, err := c.Manager.EditVM(ctx, vm, pin("60-63")); err != nil {
		t.Fatalf("cpuPinning=60-63 of a stopped VM: %v", err)
	}
	_, err := c.Manager.StartVM(ctx, vm)
	if backend.KindOf(err) != backend.KindInsufficientResources ||
		!strings.Contains(err.Error(), "its cpuPinning 60-63 names CPUs they lack (server ovs1 has CPUs 0-3; server ovs2 has CPUs 0-3)") {
		t.Fatalf("start with cpuPinning=60-63 on 4-CPU servers: %v; want it refused naming their CPUs", err)
	}
	_, _, err = c.Manager.MigrateVM(ctx, vm, backend.Ref{Name: "ovs2"})
	if backend.KindOf(err) != backend.KindInvalidArgument ||
		!strings.Contains(err.Error(), "Vm pinned cannot run on destServer ovs2: its cpuPinning 60-63 names CPUs the server lacks (it has CPUs 0-3)") {
		t.Fatalf("migrate of a stopped VM with cpuPinning=60-63 to a 4-CPU server: %v; want it refused", err)
	}
	// Running: judged by its server.
	if _, err := c.Manager.EditVM(ctx, vm, pin("2-3")); err != nil {
		t.Fatal(err)
	}
	v, err := c.Manager.StartVM(ctx, vm)
	if err != nil {
		t.Fatalf("start with cpuPinning=2-3: %v", err)
	}
	_, err = c.Manager.EditVM(ctx, vm, pin("60-63"))
	if backend.KindOf(err) != backend.KindInvalidArgument ||
		!strings.Contains(err.Error(), "cpuPinning 60-63: server "+v.Server.Name+" has CPUs 0-3") {
		t.Fatalf("cpuPinning=60-63 of a VM running on a 4-CPU server: %v; want it refused naming the server's CPUs", err)
	}
	if got := pinning(); got != "2-3" {
		t.Fatalf("a refused cpuPinning left %q, want 2-3", got)
	}
	if _, err := c.Manager.EditVM(ctx, vm, pin("0,3")); err != nil || pinning() != "0,3" {
		t.Fatalf("cpuPinning=0,3 of a VM running on a 4-CPU server: %v, pinning %q", err, pinning())
	}
}
