package xensim

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"xenmanager/backend/agentapi"
)

// fakeClock is a settable clock for CPU-time checks.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// waitFor spins (yielding, not sleeping) until cond holds, failing after a
// generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

func newHost(t *testing.T, cfg Config) *Host {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "xen1"
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h
}

// wantFault fails unless err is a fault of code whose message contains sub.
func wantFault(t *testing.T, err error, code agentapi.FaultCode, sub string) {
	t.Helper()
	f, ok := agentapi.AsFault(err)
	if !ok {
		t.Fatalf("err = %v, want a %s fault", err, code.Kind())
	}
	if f.Code != code || !strings.Contains(f.Message, sub) {
		t.Fatalf("fault = %v, want %s containing %q", f, code.Kind(), sub)
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func addRepo(t *testing.T, h *Host, fsLoc, id string) {
	t.Helper()
	mustOK(t, h.CreateRepository(fsLoc, "/OVS/Repositories/"+id, id, "repo "+id))
}

func vmParams(memory, vcpus int64) agentapi.VMParams {
	return agentapi.VMParams{"name": "web", "memory": memory, "vcpus": vcpus,
		"disk": []any{"file:/OVS/Repositories/r1/VirtualDisks/d.img,xvda,w"}}
}

func TestDom0Memory(t *testing.T) {
	tests := []struct{ total, want int64 }{{32768, 1024}, {8192, 1024}, {8191, 1023}, {4096, 512}}
	for _, tt := range tests {
		if got := Dom0MemoryMiB(tt.total); got != tt.want {
			t.Errorf("Dom0MemoryMiB(%d) = %d, want %d", tt.total, got, tt.want)
		}
	}
}

func TestMemoryAccounting(t *testing.T) {
	h := newHost(t, Config{MemoryMiB: 8192, CPUs: 4})
	addRepo(t, h, t.TempDir(), "r1")
	if got, want := h.FreeMemoryMiB(), int64(8192-1024); got != want {
		t.Fatalf("free = %d, want %d", got, want)
	}
	mustOK(t, h.CreateVM("r1", "a", vmParams(2048, 2)))
	mustOK(t, h.CreateVM("r1", "b", vmParams(4096, 4)))
	mustOK(t, h.CreateVM("r1", "c", vmParams(2048, 1)))
	mustOK(t, h.CreateVM("r1", "wide", vmParams(256, 5)))
	mustOK(t, h.StartVM("r1", "a"))
	mustOK(t, h.StartVM("r1", "b"))
	if got, want := h.FreeMemoryMiB(), int64(8192-1024-2048-4096); got != want {
		t.Fatalf("free after two starts = %d, want %d", got, want)
	}
	hw := h.DiscoverHardware()
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
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	h := newHost(t, Config{Now: clock.Now})
	fsLoc := t.TempDir()
	addRepo(t, h, fsLoc, "r1")
	p := vmParams(1024, 2)
	p["uuid"] = "0004fb00-0006-0000-0000-000000000001"
	mustOK(t, h.CreateVM("r1", "vm1", p))
	wantFault(t, h.CreateVM("r1", "vm1", p), agentapi.FaultInvalidState, "already exists")
	if _, err := os.Stat(filepath.Join(fsLoc, DirVMs, "vm1", "vm.cfg")); err != nil {
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
	mustOK(t, h.CreateVM("r1", "vm2", vmParams(512, 1)))
	mustOK(t, h.StartVM("r1", "vm2"))
	clock.Advance(10 * time.Second)
	d, err := h.ListVM("r1", "vm1")
	mustOK(t, err)
	wantDom := agentapi.Domain{UUID: p["uuid"].(string), Name: "web", DomID: 1, State: agentapi.StateRunning,
		MemoryMiB: 1024, VCPUs: 2, CPUTimeS: 10 * 2 * cpuLoad, RepoID: "r1"}
	if d != wantDom {
		t.Errorf("ListVM = %+v, want %+v", d, wantDom)
	}
	list := h.ListVMs()
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
	if h.ListVMs()[0].DomID != 2 {
		t.Errorf("remaining domain should be domid 2: %+v", h.ListVMs())
	}
	mustOK(t, h.StopVM("r1", "vm2", true))
	mustOK(t, h.CreateVM("r1", "vm1", p))
	mustOK(t, h.StartVM("r1", "vm1"))
	if d, _ := h.ListVM("r1", "vm1"); d.DomID != 3 {
		t.Errorf("domids must not be reused: got %d, want 3", d.DomID)
	}
}

func TestValidation(t *testing.T) {
	h := newHost(t, Config{})
	fsLoc := t.TempDir()
	tests := []struct {
		name string
		err  error
		code agentapi.FaultCode
		sub  string
	}{
		{"relative fs_location", h.CreateRepository("repo", "/OVS/Repositories/r1", "r1", "a"), agentapi.FaultInvalidArgument, "not an absolute path"},
		{"dotdot fs_location", h.CreateRepository(fsLoc+"/../x", "/OVS/Repositories/r1", "r1", "a"), agentapi.FaultInvalidArgument, "contains '..'"},
		{"dotdot mount", h.CreateRepository(fsLoc, "/OVS/../../etc", "r1", "a"), agentapi.FaultInvalidArgument, "contains '..'"},
		{"root mount", h.CreateRepository(fsLoc, "/", "r1", "a"), agentapi.FaultInvalidArgument, "root directory"},
		{"relative mount", h.AddRepository(fsLoc, "OVS"), agentapi.FaultInvalidArgument, "not an absolute path"},
		{"bad repo uuid", h.CreateRepository(fsLoc, "/OVS/Repositories/r1", "a/b", "a"), agentapi.FaultInvalidArgument, "repository uuid \"a/b\" is not valid"},
		{"alias newline", h.CreateRepository(fsLoc, "/OVS/Repositories/r1", "r1", "a\nOVS_REPO_UUID=x"), agentapi.FaultInvalidArgument, "alias"},
		{"add without marker", h.AddRepository(fsLoc, "/OVS/Repositories/r1"), agentapi.FaultNotFound, "no .ovsrepo"},
		{"unknown repo", h.CreateVM("nope", "vm1", vmParams(1, 1)), agentapi.FaultNotFound, "repository nope is not known"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantFault(t, tt.err, tt.code, tt.sub) })
	}
	addRepo(t, h, fsLoc, "r1")
	vmTests := []struct {
		name   string
		vmID   string
		params agentapi.VMParams
		sub    string
	}{
		{"slash in id", "a/b", vmParams(1, 1), `VM id "a/b" is not valid`},
		{"dotdot id", "..", vmParams(1, 1), "is not valid"},
		{"dot first", ".x", vmParams(1, 1), "is not valid"},
		{"empty id", "", vmParams(1, 1), "is not valid"},
		{"no memory", "v", agentapi.VMParams{"vcpus": int64(1)}, "params.memory must be a positive integer"},
		{"string vcpus", "v", agentapi.VMParams{"memory": int64(1), "vcpus": "two"}, "params.vcpus"},
		{"zero vcpus", "v", agentapi.VMParams{"memory": int64(1), "vcpus": int64(0)}, "params.vcpus"},
		{"unwritable value", "v", agentapi.VMParams{"memory": int64(1), "vcpus": int64(1), "x": 1.5}, "cannot write a float64"},
	}
	for _, tt := range vmTests {
		t.Run(tt.name, func(t *testing.T) {
			wantFault(t, h.CreateVM("r1", tt.vmID, tt.params), agentapi.FaultInvalidArgument, tt.sub)
		})
	}
	// Integers as decimal strings are accepted, as the protocol allows.
	mustOK(t, h.CreateVM("r1", "strint", agentapi.VMParams{"memory": "512", "vcpus": "1", "maxmem": "8589934592", "name": "007"}))
	mustOK(t, h.StartVM("r1", "strint"))
	got, err := h.GetVMConfig("r1", "strint")
	mustOK(t, err)
	want := agentapi.VMParams{"memory": int64(512), "vcpus": int64(1), "maxmem": int64(8589934592), "name": "007"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("integer keys not normalised: got %#v, want %#v", got, want)
	}
}

func TestRepositoryLayout(t *testing.T) {
	h := newHost(t, Config{})
	fsLoc := filepath.Join(t.TempDir(), "nfs", "repo1") // created by create_repository
	mustOK(t, h.CreateRepository(fsLoc, "/OVS/Repositories/r1", "r1", "Repo One"))
	for _, d := range []string{DirVMs, DirDisks, DirISOs, DirTemplates} {
		if fi, err := os.Stat(filepath.Join(fsLoc, d)); err != nil || !fi.IsDir() {
			t.Errorf("%s not laid out: %v", d, err)
		}
	}
	marker, err := os.ReadFile(filepath.Join(fsLoc, RepoMarker))
	mustOK(t, err)
	if string(marker) != "OVS_REPO_UUID=r1\nOVS_REPO_ALIAS=Repo One\n" {
		t.Errorf(".ovsrepo = %q", marker)
	}
	link := filepath.Join(h.DataDir(), "OVS", "Repositories", "r1")
	if target, err := os.Readlink(link); err != nil || target != fsLoc {
		t.Errorf("mount point link = %q, %v; want a link to %s", target, err, fsLoc)
	}
	// Same uuid again: acts as add_repository. Another uuid: InvalidState.
	mustOK(t, h.CreateRepository(fsLoc, "/OVS/Repositories/r1", "r1", "ignored"))
	wantFault(t, h.CreateRepository(fsLoc, "/OVS/Repositories/r2", "r2", "two"), agentapi.FaultInvalidState, "already holds repository r1")
	wantFault(t, h.CreateRepository(t.TempDir(), "/OVS/Repositories/r1", "r3", "three"), agentapi.FaultInvalidState, "already used by repository r1")

	mustOK(t, h.CreateVM("r1", "vm1", vmParams(512, 1)))
	mustOK(t, os.WriteFile(filepath.Join(fsLoc, DirDisks, "d1.img"), nil, 0o644))
	mustOK(t, os.WriteFile(filepath.Join(fsLoc, DirISOs, "i1.iso"), nil, 0o644))
	mustOK(t, os.Mkdir(filepath.Join(fsLoc, DirTemplates, "t1"), 0o755))
	repos, err := h.DiscoverRepositories(nil)
	mustOK(t, err)
	if len(repos) != 1 {
		t.Fatalf("repos = %+v", repos)
	}
	r := repos[0]
	if r.UUID != "r1" || r.Alias != "Repo One" || r.MountPoint != "/OVS/Repositories/r1" ||
		r.VMs != 1 || r.Disks != 1 || r.ISOs != 1 || r.Templates != 1 || r.TotalMiB <= 0 || r.FreeMiB < 0 || r.FreeMiB > r.TotalMiB {
		t.Errorf("repository = %+v", r)
	}
	_, err = h.DiscoverRepositories([]string{"r1", "zz"})
	wantFault(t, err, agentapi.FaultNotFound, "repository zz is not known")
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("link vanished: %v", err)
	}
	// A real directory in the way of a mount point is not replaced.
	mustOK(t, os.MkdirAll(filepath.Join(h.DataDir(), "OVS", "busy"), 0o755))
	wantFault(t, h.CreateRepository(t.TempDir(), "/OVS/busy", "r4", "four"), agentapi.FaultInvalidState, "is not a repository link")
}

// TestSharedRepository checks that a VM created through one host starts on
// another host that shares the repository directory, as in a pool.
func TestSharedRepository(t *testing.T) {
	shared := t.TempDir()
	a := newHost(t, Config{Hostname: "xen-a"})
	b := newHost(t, Config{Hostname: "xen-b"})
	mustOK(t, a.CreateRepository(shared, "/OVS/Repositories/r1", "r1", "pool repo"))
	mustOK(t, b.AddRepository(shared, "/OVS/Repositories/r1"))
	repos, err := b.DiscoverRepositories([]string{"r1"})
	mustOK(t, err)
	if repos[0].Alias != "pool repo" {
		t.Errorf("b sees alias %q", repos[0].Alias)
	}
	mustOK(t, a.CreateVM("r1", "vm1", vmParams(1024, 1)))
	mustOK(t, b.StartVM("r1", "vm1"))
	if len(a.ListVMs()) != 0 || len(b.ListVMs()) != 1 {
		t.Errorf("domains: a %+v, b %+v", a.ListVMs(), b.ListVMs())
	}
	// a does not know it runs on b (no cluster lock in the simulator), but
	// b refuses to delete a running VM.
	wantFault(t, b.DeleteVM("r1", "vm1"), agentapi.FaultInvalidState, "stop it first")
	mustOK(t, b.StopVM("r1", "vm1", false))
	mustOK(t, a.DeleteVM("r1", "vm1"))
	wantFault(t, b.StartVM("r1", "vm1"), agentapi.FaultNotFound, "not found")
}

func TestOwnershipAndPersistence(t *testing.T) {
	dir := t.TempDir()
	fsLoc := t.TempDir()
	h := newHost(t, Config{DataDir: dir})
	id := h.UniqueID()
	if info := h.DiscoverServer("10.0.0.1"); info.MembershipState != agentapi.MembershipUnowned || info.UniqueID != id || info.Address != "10.0.0.1" {
		t.Errorf("fresh server = %+v", info)
	}
	mustOK(t, h.TakeOwnership("m1", "manager one"))
	mustOK(t, h.TakeOwnership("m1", "manager one"))
	wantFault(t, h.TakeOwnership("m2", "manager two"), agentapi.FaultNotOwner, `owned by manager "manager one" (m1)`)
	wantFault(t, h.ReleaseOwnership("m2"), agentapi.FaultNotOwner, "not by m2")
	wantFault(t, h.TakeOwnership("", "x"), agentapi.FaultInvalidArgument, "manager_uuid")
	addRepo(t, h, fsLoc, "r1")
	mustOK(t, h.CreateVM("r1", "vm1", vmParams(512, 1)))
	mustOK(t, h.StartVM("r1", "vm1"))

	// A reload is a reboot: same identity, owner and repositories; no domains.
	h2 := newHost(t, Config{DataDir: dir})
	if h2.UniqueID() != id {
		t.Errorf("unique id changed across reload: %s -> %s", id, h2.UniqueID())
	}
	if u, n := h2.Owner(); u != "m1" || n != "manager one" {
		t.Errorf("owner after reload = %q %q", u, n)
	}
	if info := h2.DiscoverServer(""); info.MembershipState != agentapi.MembershipOwned || info.ManagerUniqueID != "m1" {
		t.Errorf("server after reload = %+v", info)
	}
	if got := h2.Repositories(); len(got) != 1 || got[0] != (RepoState{UUID: "r1", Alias: "repo r1", FSLocation: fsLoc, MountPoint: "/OVS/Repositories/r1"}) {
		t.Errorf("repositories after reload = %+v", got)
	}
	if len(h2.ListVMs()) != 0 {
		t.Errorf("domains survived a reload: %+v", h2.ListVMs())
	}
	mustOK(t, h2.StartVM("r1", "vm1"))
	mustOK(t, h2.ReleaseOwnership("m1"))
	mustOK(t, h2.ReleaseOwnership("m1")) // idempotent
	mustOK(t, h2.TakeOwnership("m2", "manager two"))
	if fi, err := os.Stat(filepath.Join(dir, stateFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file: %v, mode %v", err, fi.Mode())
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}

	mustOK(t, os.WriteFile(filepath.Join(dir, stateFile), []byte("{"), 0o600))
	if _, err := New(Config{DataDir: dir, Hostname: "x"}); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("New with corrupt state: %v", err)
	}
}

func TestSimFaults(t *testing.T) {
	h := newHost(t, Config{})
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
	}
	for _, tt := range badTests {
		t.Run(tt.name, func(t *testing.T) {
			wantFault(t, h.SimSet(tt.params), agentapi.FaultInvalidArgument, tt.sub)
		})
	}
	wantFault(t, h.SimSet(map[string]any{SimCrashVM: "nope"}), agentapi.FaultNotFound, "no live domain nope")

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
	h := newHost(t, Config{MemoryMiB: 16384, CPUs: 8}) // 15360 MiB free: room for 15 VMs of 1024
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
