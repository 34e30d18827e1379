package backend_test

import (
	"context"
	"testing"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/managertest"
)

// startGuests creates and starts n VMs g0, g1, ... through the manager.
func startGuests(t *testing.T, c *managertest.Core, n int) {
	t.Helper()
	ctx := c.Admin()
	for i := range n {
		name := "g" + string(rune('0'+i))
		if _, err := c.Manager.CreateVM(ctx, backend.CreateVMRequest{Name: name, Repository: backend.Ref{Name: managertest.Repo},
			MemoryMiB: 256, CPUCount: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Manager.StartVM(ctx, backend.Ref{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
}

// crashOn crashes a running guest of agent i that has raised no event yet
// and returns its VM's name.
func crashOn(t *testing.T, c *managertest.Core, i int) string {
	t.Helper()
	agent := c.AgentClient(i)
	doms, err := agent.ListVMs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range doms {
		if d.DomID == 0 || d.State != agentapi.StateRunning {
			continue
		}
		v, err := c.Manager.VM(c.Admin(), backend.Ref{ID: d.UUID})
		if err != nil {
			t.Fatal(err)
		}
		if len(vmEvents(t, c, v.Name)) > 0 {
			continue
		}
		if err := agent.Call(context.Background(), agentapi.MethodSimSet, nil, map[string]any{"crash_vm": d.UUID}); err != nil {
			t.Fatal(err)
		}
		return v.Name
	}
	t.Fatalf("agent %d runs no guest that has not crashed", i)
	return ""
}

// crashRecorded reports whether VM name has its one VmCrashed event.
func crashRecorded(t *testing.T, c *managertest.Core, name string) func() bool {
	return func() bool {
		events := vmEvents(t, c, name)
		return len(events) == 1 && events[0].Kind == "VmCrashed"
	}
}

// serverID is the manager's id of server name.
func serverID(t *testing.T, c *managertest.Core, name string) string {
	t.Helper()
	s, err := c.Manager.Server(c.Admin(), backend.Ref{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return s.ID
}

// With an agent that lists the wait, the watcher holds a get_events there
// and records a crash when the agent answers it, not at the next beat: the
// heartbeat interval is an hour, so that no round comes while the test
// runs, and the crash must show well before the held call's wait (the
// protocol's 30 s) would have ended it without an event (a bounded wait,
// generous on a loaded machine, not a measure of speed: bench figure 6b
// times it).
func TestHeldEventsNoticeACrashWithoutABeat(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 1})
	startGuests(t, c, 2)
	watch(t, c.Manager, time.Hour)
	id := serverID(t, c, "ovs1")
	waitFor(t, "a held get_events on ovs1", func() bool { return c.Manager.HeldBy(id) })
	name := crashOn(t, c, 0)
	bound := agentapi.MaxEventsWaitMS * time.Millisecond * 2 / 3
	end := time.Now().Add(bound)
	for !crashRecorded(t, c, name)() {
		if time.Now().After(end) {
			t.Fatalf("the crash of %s was not recorded within %s, while the held call waits %s and no beat comes",
				name, bound, agentapi.MaxEventsWaitMS*time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s, err := c.Manager.Server(c.Admin(), backend.Ref{Name: "ovs1"}); err != nil || s.Status != backend.ServerRunning {
		t.Fatalf("ovs1 = %+v, %v; want Running", s, err)
	}
}

// An agent that does not list the wait (one from before it) keeps plain
// beats: the watcher asks it once, holds nothing there, and still records
// its crashes, while the agent beside it that lists the wait gets held
// calls; both stay Running.
func TestHeldEventsFallBackToBeats(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 2, WithoutEventsWait: []int{1}})
	startGuests(t, c, 4)
	watch(t, c.Manager, 200*time.Millisecond)
	held, old := serverID(t, c, "ovs1"), serverID(t, c, "ovs2")
	waitFor(t, "a held get_events on ovs1 and ovs2 found without the wait", func() bool {
		return c.Manager.HeldBy(held) && c.Manager.ProbedWithoutWait(old)
	})
	if c.Manager.HeldBy(old) {
		t.Fatal("a held get_events follows ovs2, whose agent does not list the wait")
	}
	for i := range 2 {
		name := crashOn(t, c, i)
		waitFor(t, "the crash of "+name+" on agent "+string(rune('1'+i)), crashRecorded(t, c, name))
	}
	for _, name := range []string{"ovs1", "ovs2"} {
		if s, err := c.Manager.Server(c.Admin(), backend.Ref{Name: name}); err != nil || s.Status != backend.ServerRunning {
			t.Errorf("%s = %+v, %v; want Running", name, s.Status, err)
		}
	}
	if c.Manager.HeldBy(old) {
		t.Error("a held get_events follows ovs2, whose agent does not list the wait")
	}
}
