package host

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"xenmanager/backend/agent/xensim"
	"xenmanager/backend/agentapi"
)

// The shared code's tests run it on the simulated driver, as the agent
// does by default.

// testConfig is a host with the simulated driver.
type testConfig struct {
	DataDir   string
	Hostname  string
	CPUs      int
	MemoryMiB int64
	Now       func() time.Time
}

func newHost(t *testing.T, cfg testConfig) *Host {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "xen1"
	}
	h, err := New(Config{DataDir: cfg.DataDir, Hostname: cfg.Hostname, Now: cfg.Now,
		Driver: xensim.Driver(xensim.Config{CPUs: cfg.CPUs, MemoryMiB: cfg.MemoryMiB})})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h
}

// simOf is the simulated driver of h, for the faults a test injects.
func simOf(h *Host) *xensim.Sim { return h.Driver().(*xensim.Sim) }

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

func addRepo(t *testing.T, h *Host, fsLoc, id string) {
	t.Helper()
	mustOK(t, h.CreateRepository(fsLoc, "/OVS/Repositories/"+id, id, "repo "+id))
}

func vmParams(memory, vcpus int64) agentapi.VMParams {
	return agentapi.VMParams{"name": "web", "memory": memory, "vcpus": vcpus,
		"disk": []any{"file:/OVS/Repositories/r1/VirtualDisks/d.img,xvda,w"}}
}
