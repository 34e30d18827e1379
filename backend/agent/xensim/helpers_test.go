package xensim

import (
	"context"
	"testing"

	"xenmanager/backend/agent/host"
	"xenmanager/backend/agent/internal/testkit"
	"xenmanager/backend/agentapi"
)

// The driver's tests run it behind the shared host code, as the agent does.

// testConfig is a host with the simulated driver.
type testConfig = testkit.HostConfig

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
	cfg = cfg.WithDefaults(t)
	h, err := host.New(host.Config{DataDir: cfg.DataDir, Hostname: cfg.Hostname, Now: cfg.Now,
		Driver: Driver(Config{CPUs: cfg.CPUs, MemoryMiB: cfg.MemoryMiB})})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &testHost{Host: h, sim: h.Driver().(*Sim)}
}

var (
	newClock  = testkit.NewClock
	waitFor   = testkit.WaitFor
	wantFault = testkit.WantFault
	mustOK    = testkit.MustOK
)

// must is testkit.Must for this package's tests.
func must[T any](v T, err error) T { return testkit.Must(v, err) }

func addRepo(t *testing.T, h *testHost, fsLoc, id string) {
	t.Helper()
	mustOK(t, h.CreateRepository(fsLoc, "/OVS/Repositories/"+id, id, "repo "+id))
}

func vmParams(memory, vcpus int64) agentapi.VMParams {
	return agentapi.VMParams{"name": "web", "memory": memory, "vcpus": vcpus,
		"disk": []any{"file:/OVS/Repositories/r1/VirtualDisks/d.img,xvda,w"}}
}
