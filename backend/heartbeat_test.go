package backend_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/managertest"
)

// waitFor polls cond until it holds, failing the test after deadline: the
// heartbeat watcher runs on its own clock, and the test waits for what it
// does, never for a fixed time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("gave up after %s waiting for %s", deadline, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// watch runs the manager's heartbeat watcher until the test ends.
func watch(t *testing.T, m *backend.Manager, interval time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.Watch(ctx, interval)
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// A server whose agent hangs (as a stopped process would) misses its
// heartbeats, becomes Unreachable with an event, and is Running again with
// another once its agent answers; the other server stays Running.
func TestHeartbeatMarksAHungServerDownAndUp(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 2, AgentTimeout: 2 * time.Second})
	ctx := c.Admin()
	status := func(name string) string {
		s, err := c.Manager.Server(ctx, backend.Ref{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return s.Status
	}
	hasEvent := func(kind string) bool {
		events, err := c.Manager.Events(ctx, false, 50)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if e.Kind == kind && e.Name == "ovs2" {
				return true
			}
		}
		return false
	}
	// Each beat waits an interval for an answer: long enough that ovs1,
	// under -race on a busy machine, never misses three in a row.
	watch(t, c.Manager, 500*time.Millisecond)

	hang := func(on bool) {
		t.Helper()
		if err := c.AgentClient(1).Call(context.Background(), agentapi.MethodSimSet, nil, map[string]any{"hang": on}); err != nil {
			t.Fatal(err)
		}
	}
	hang(true)
	// The status changes first, then the event is written: wait for both.
	waitFor(t, "ovs2 Unreachable, with an event", func() bool {
		return status("ovs2") == backend.ServerUnreachable && hasEvent("ServerUnreachable")
	})
	hang(false)
	waitFor(t, "ovs2 Running again, with an event", func() bool {
		return status("ovs2") == backend.ServerRunning && hasEvent("ServerReachable")
	})
	if s := status("ovs1"); s != backend.ServerRunning {
		t.Fatalf("ovs1, which answered all along, is %s", s)
	}
}
