package xensim

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"xenmanager/backend/agent/host"
	"xenmanager/backend/agentapi"
)

func TestDom0Memory(t *testing.T) {
	tests := []struct{ total, want int64 }{{32768, 1024}, {8192, 1024}, {8191, 1023}, {4096, 512}}
	for _, tt := range tests {
		if got := Dom0MemoryMiB(tt.total); got != tt.want {
			t.Errorf("Dom0MemoryMiB(%d) = %d, want %d", tt.total, got, tt.want)
		}
	}
}

func TestMemoryAccounting(t *testing.T) {
	h := newHost(t, testConfig{MemoryMiB: 8192, CPUs: 4})
	addRepo(t, h, t.TempDir(), "r1")
	if got, want := h.FreeMemoryMiB(), int64(8192-1024); got != want {
		t.Fatalf("free = %d, want %d", got, want)
	}
	mustOK(t, h.CreateVM("r1", "a", vmParams(2048, 2)))
	preserve := vmParams(4096, 4)
	preserve["on_crash"] = "preserve"
	mustOK(t, h.CreateVM("r1", "b", preserve))
	mustOK(t, h.CreateVM("r1", "c", vmParams(2048, 1)))
	mustOK(t, h.CreateVM("r1", "wide", vmParams(256, 5)))
	mustOK(t, h.StartVM("r1", "a"))
	mustOK(t, h.StartVM("r1", "b"))
	if got, want := h.FreeMemoryMiB(), int64(8192-1024-2048-4096); got != want {
		t.Fatalf("free after two starts = %d, want %d", got, want)
	}
	hw := must(h.DiscoverHardware())
	if hw.FreeMemoryMiB != 1024 || hw.Dom0MemoryMiB != 1024 || hw.TotalMemoryMiB != 8192 || hw.Threads() != 4 {
		t.Errorf("hardware = %+v", hw)
	}
	wantFault(t, h.StartVM("r1", "c"), agentapi.FaultInsufficientResources, "needs 2048 MiB, 1024 MiB free")
	wantFault(t, h.StartVM("r1", "wide"), agentapi.FaultInsufficientResources, "needs 5 vCPUs, server xen1 has 4 CPUs")
	wantFault(t, h.StartVM("r1", "a"), agentapi.FaultInvalidState, "already running")

	// A crashed domain no longer holds memory; stopping it removes it.
	mustOK(t, h.SimSet(map[string]any{SimCrashVM: "b"}))
	if got, want := h.FreeMemoryMiB(), int64(8192-1024-2048); got != want {
		t.Errorf("free with b crashed = %d, want %d", got, want)
	}
	mustOK(t, h.StopVM("r1", "a", false))
	mustOK(t, h.StopVM("r1", "b", true))
	wantFault(t, h.StopVM("r1", "b", true), agentapi.FaultNotFound, "not running")
	if got, want := h.FreeMemoryMiB(), int64(8192-1024); got != want {
		t.Errorf("free after stops = %d, want %d", got, want)
	}
	mustOK(t, h.StartVM("r1", "c"))
}

func TestDomainLifecycle(t *testing.T) {
	clock := newClock(time.Unix(1_700_000_000, 0))
	h := newHost(t, testConfig{Now: clock.Now})
	fsLoc := t.TempDir()
	addRepo(t, h, fsLoc, "r1")
	p := vmParams(1024, 2)
	p["uuid"] = "0004fb00-0006-0000-0000-000000000001"
	mustOK(t, h.CreateVM("r1", "vm1", p))
	wantFault(t, h.CreateVM("r1", "vm1", p), agentapi.FaultInvalidState, "already exists")
	if _, err := os.Stat(filepath.Join(fsLoc, host.DirVMs, "vm1", "vm.cfg")); err != nil {
		t.Fatalf("vm.cfg not in the repository: %v", err)
	}
	got, err := h.GetVMConfig("r1", "vm1")
	mustOK(t, err)
	want := agentapi.VMParams{"name": "web", "uuid": p["uuid"], "memory": int64(1024), "vcpus": int64(2),
		"disk": []string{"file:/OVS/Repositories/r1/VirtualDisks/d.img,xvda,w"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GetVMConfig = %#v, want %#v", got, want)
	}

	_, err = h.ListVM("r1", "vm1")
	wantFault(t, err, agentapi.FaultNotFound, "not running")
	mustOK(t, h.StartVM("r1", "vm1"))
	p2 := vmParams(512, 1)
	p2["on_crash"] = "preserve"
	mustOK(t, h.CreateVM("r1", "vm2", p2))
	mustOK(t, h.StartVM("r1", "vm2"))
	clock.Advance(10 * time.Second)
	d, err := h.ListVM("r1", "vm1")
	mustOK(t, err)
	wantDom := agentapi.Domain{UUID: p["uuid"].(string), Name: "web", DomID: 1, State: agentapi.StateRunning,
		MemoryMiB: 1024, VCPUs: 2, CPUTimeS: 10 * 2 * cpuLoad, RepoID: "r1"}
	if d != wantDom {
		t.Errorf("ListVM = %+v, want %+v", d, wantDom)
	}
	list := must(h.ListVMs())
	if len(list) != 2 || list[0].DomID != 1 || list[1].DomID != 2 || list[1].UUID != "vm2" {
		t.Errorf("ListVMs = %+v", list)
	}
	mustOK(t, h.SimSet(map[string]any{SimCrashVM: "vm2"}))
	clock.Advance(10 * time.Second)
	d, _ = h.ListVM("r1", "vm2")
	if d.State != agentapi.StateCrashed || d.CPUTimeS != 10*cpuLoad {
		t.Errorf("crashed domain = %+v, want crashed with its CPU time frozen at %v", d, 10*cpuLoad)
	}

	wantFault(t, h.DeleteVM("r1", "vm1"), agentapi.FaultInvalidState, "stop it first")
	mustOK(t, h.StopVM("r1", "vm1", false))
	mustOK(t, h.DeleteVM("r1", "vm1"))
	wantFault(t, h.DeleteVM("r1", "vm1"), agentapi.FaultNotFound, "not found")
	_, err = h.GetVMConfig("r1", "vm1")
	wantFault(t, err, agentapi.FaultNotFound, "VM vm1 not found in repository r1")
	wantFault(t, h.StartVM("r1", "vm1"), agentapi.FaultNotFound, "not found")
	if must(h.ListVMs())[0].DomID != 2 {
		t.Errorf("remaining domain should be domid 2: %+v", must(h.ListVMs()))
	}
	mustOK(t, h.StopVM("r1", "vm2", true))
	mustOK(t, h.CreateVM("r1", "vm1", p))
	mustOK(t, h.StartVM("r1", "vm1"))
	if d, _ := h.ListVM("r1", "vm1"); d.DomID != 3 {
		t.Errorf("domids must not be reused: got %d, want 3", d.DomID)
	}
}

func TestSimFaults(t *testing.T) {
	h := newHost(t, testConfig{})
	ctx := context.Background()
	mustOK(t, h.BeforeCall(ctx, agentapi.MethodEcho))
	mustOK(t, h.SimSet(map[string]any{SimFailNext: map[string]any{agentapi.MethodEcho: "disk on fire"}}))
	wantFault(t, h.BeforeCall(ctx, agentapi.MethodEcho), agentapi.FaultInternalError, "disk on fire")
	mustOK(t, h.BeforeCall(ctx, agentapi.MethodEcho)) // only once

	badTests := []struct {
		name   string
		params map[string]any
		sub    string
	}{
		{"unknown key", map[string]any{"latency": 1}, `unknown setting "latency"`},
		{"latency type", map[string]any{SimLatencyMS: 5}, "latency_ms must be a struct"},
		{"negative latency", map[string]any{SimLatencyMS: map[string]any{"echo": int64(-1)}}, "non-negative"},
		{"hang type", map[string]any{SimHang: "yes"}, "hang must be a boolean"},
		{"fail_next type", map[string]any{SimFailNext: map[string]any{"echo": int64(1)}}, "must be a string"},
		{"negative copy speed", map[string]any{SimCopyMiBPerS: int64(-1)}, "copy_mib_per_s must be a non-negative integer"},
		{"copy speed too high", map[string]any{SimCopyMiBPerS: int64(1) << 40}, "copy_mib_per_s must be at most 1073741824"},
	}
	for _, tt := range badTests {
		t.Run(tt.name, func(t *testing.T) {
			wantFault(t, h.SimSet(tt.params), agentapi.FaultInvalidArgument, tt.sub)
		})
	}
	wantFault(t, h.SimSet(map[string]any{SimCrashVM: "nope"}), agentapi.FaultNotFound, "no live domain nope")
	if h.sim.CopyBytesPerSecond() != 0 {
		t.Errorf("a refused copy_mib_per_s set the copy speed to %d", h.sim.CopyBytesPerSecond())
	}
	mustOK(t, h.SimSet(map[string]any{SimCopyMiBPerS: int64(3)}))
	if got := h.sim.CopyBytesPerSecond(); got != 3<<20 {
		t.Errorf("copy_mib_per_s 3 gives %d bytes/s, want %d", got, 3<<20)
	}
	mustOK(t, h.SimSet(map[string]any{SimCopyMiBPerS: int64(0)}))

	// Hang: calls block until hang is lifted or their context ends.
	mustOK(t, h.SimSet(map[string]any{SimHang: true}))
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.BeforeCall(cctx, agentapi.MethodListVMs) }()
	cancel()
	wantFault(t, <-done, agentapi.FaultInternalError, "abandoned")

	released := make(chan error, 1)
	go func() { released <- h.BeforeCall(ctx, agentapi.MethodListVMs) }()
	waitFor(t, "a call blocked in the hang", func() bool { return h.HungCalls() == 1 })
	select {
	case err := <-released:
		t.Fatalf("call returned during a hang: %v", err)
	default:
	}
	mustOK(t, h.BeforeCall(ctx, agentapi.MethodSimSet)) // never blocked
	mustOK(t, h.SimSet(map[string]any{SimHang: false}))
	mustOK(t, <-released)

	// Latency: a context that ends first abandons the wait.
	mustOK(t, h.SimSet(map[string]any{SimLatencyMS: map[string]any{agentapi.MethodEcho: int64(600_000)}}))
	cctx, cancel = context.WithCancel(ctx)
	cancel()
	err := h.BeforeCall(cctx, agentapi.MethodEcho)
	wantFault(t, err, agentapi.FaultInternalError, "abandoned")
	if !errors.Is(cctx.Err(), context.Canceled) {
		t.Fatal("context not cancelled")
	}
	mustOK(t, h.SimSet(map[string]any{SimLatencyMS: map[string]any{agentapi.MethodEcho: int64(0)}, SimDirty: map[string]any{"u1": int64(500)}}))
	mustOK(t, h.BeforeCall(ctx, agentapi.MethodEcho))
	if h.DirtyPageRate("u1") != 500 {
		t.Errorf("dirty rate = %d", h.DirtyPageRate("u1"))
	}
}

func TestConcurrentStarts(t *testing.T) {
	h := newHost(t, testConfig{MemoryMiB: 16384, CPUs: 8}) // 15360 MiB free: room for 15 VMs of 1024
	addRepo(t, h, t.TempDir(), "r1")
	const n = 20
	for i := range n {
		mustOK(t, h.CreateVM("r1", "vm"+string(rune('a'+i)), vmParams(1024, 1)))
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- h.StartVM("r1", "vm"+string(rune('a'+i)))
		}()
	}
	wg.Wait()
	close(errs)
	var ok, full int
	for err := range errs {
		if err == nil {
			ok++
		} else if f, _ := agentapi.AsFault(err); f != nil && f.Code == agentapi.FaultInsufficientResources {
			full++
		} else {
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 15 || full != 5 || h.FreeMemoryMiB() != 0 {
		t.Errorf("started %d, refused %d, free %d; want 15, 5, 0", ok, full, h.FreeMemoryMiB())
	}
}
