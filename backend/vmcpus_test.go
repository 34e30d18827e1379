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
