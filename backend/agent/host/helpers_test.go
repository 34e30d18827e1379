package host

import (
	"testing"

	"xenmanager/backend/agent/internal/testkit"
	"xenmanager/backend/agent/xensim"
	"xenmanager/backend/agentapi"
)

// The shared code's tests run it on the simulated driver, as the agent
// does by default.

// testConfig is a host with the simulated driver.
type testConfig = testkit.HostConfig

func newHost(t *testing.T, cfg testConfig) *Host {
	t.Helper()
	cfg = cfg.WithDefaults(t)
	h, err := New(Config{DataDir: cfg.DataDir, Hostname: cfg.Hostname, Now: cfg.Now,
		Driver: xensim.Driver(xensim.Config{CPUs: cfg.CPUs, MemoryMiB: cfg.MemoryMiB})})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h
}

// simOf is the simulated driver of h, for the faults a test injects.
func simOf(h *Host) *xensim.Sim { return h.Driver().(*xensim.Sim) }

var (
	newClock  = testkit.NewClock
	waitFor   = testkit.WaitFor
	wantFault = testkit.WantFault
	mustOK    = testkit.MustOK
)

// must is testkit.Must for this package's tests.
func must[T any](v T, err error) T { return testkit.Must(v, err) }

func addRepo(t *testing.T, h *Host, fsLoc, id string) {
	t.Helper()
	mustOK(t, h.CreateRepository(fsLoc, "/OVS/Repositories/"+id, id, "repo "+id))
}

func vmParams(memory, vcpus int64) agentapi.VMParams {
	return agentapi.VMParams{"name": "web", "memory": memory, "vcpus": vcpus,
		"disk": []any{"file:/OVS/Repositories/r1/VirtualDisks/d.img,xvda,w"}}
}
