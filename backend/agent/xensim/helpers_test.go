package xensim

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"xenmanager/backend/agent/host"
	"xenmanager/backend/agentapi"
)

// The driver's tests run it behind the shared host code, as the agent does.

// testConfig is a host with the simulated driver.
type testConfig struct {
	DataDir   string
	Hostname  string
	CPUs      int
	MemoryMiB int64
	Now       func() time.Time
}

// testHost is the shared host and its simulated driver.
type testHost struct {
	*host.Host
	sim *Sim
}

func (h *testHost) SimSet(params map[string]any) error { return h.sim.SimSet(params) }
func (h *testHost) HungCalls() int                     { return h.sim.HungCalls() }
func (h *testHost) DirtyPageRate(uuid string) int64    { return h.sim.DirtyPageRate(uuid) }
func (h *testHost) MemorySHA256(repoID, vmID string) (string, error) {
	return h.sim.MemorySHA256(repoID, vmID)
}
func (h *testHost) BeforeCall(ctx context.Context, method string) error {
	return h.sim.BeforeCall(ctx, method)
}

func newHost(t *testing.T, cfg testConfig) *testHost {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "xen1"
	}
	h, err := host.New(host.Config{DataDir: cfg.DataDir, Hostname: cfg.Hostname, Now: cfg.Now,
		Driver: Driver(Config{CPUs: cfg.CPUs, MemoryMiB: cfg.MemoryMiB})})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &testHost{Host: h, sim: h.Driver().(*Sim)}
}

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

func addRepo(t *testing.T, h *testHost, fsLoc, id string) {
	t.Helper()
	mustOK(t, h.CreateRepository(fsLoc, "/OVS/Repositories/"+id, id, "repo "+id))
}

func vmParams(memory, vcpus int64) agentapi.VMParams {
	return agentapi.VMParams{"name": "web", "memory": memory, "vcpus": vcpus,
		"disk": []any{"file:/OVS/Repositories/r1/VirtualDisks/d.img,xvda,w"}}
}
