package backend_test

import (
	"context"
	"testing"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/managertest"
)

// A server that fences itself for a moment (its storage fails for longer
// than the fence timeout, then works again) and goes on answering its
// heartbeats is never judged dead, yet its domains are gone. The manager
// learns of the fence either from the reconciliation that finds them gone
// (it asks the agent whether it fenced) or from the agent's ha_fenced
// event (as the heartbeat hands it over), and hands the server to the HA
// round, which restarts the HA VM (on another server: placement avoids the
// one that fenced) and records the VM without HA Stopped. An HA VM whose
// guest shuts itself down later on the same server (which fenced before,
// not since), found by a reconciliation, stays Stopped: only a fence
// restarts. The beats are driven by hand.
func TestHAShortSelfFenceRestartsHAVMs(t *testing.T) {
	for _, how := range []string{"reconciliation", "ha_fenced event", "heartbeat"} {
		t.Run(how, func(t *testing.T) { testHAShortSelfFence(t, how) })
	}
}

// testHAShortSelfFence learns of the fence how says: a reconciliation, the
// ha_fenced event handed to haAgentFenced by hand, or the heartbeats alone
// (which read the event; no reconciliation runs).
func testHAShortSelfFence(t *testing.T, how string) {
	c := managertest.Ready(t, managertest.Options{Agents: 2, MemoryMiB: 8192, CPUs: 4, AgentTimeout: 2 * time.Second})
	ctx := c.Admin()
	m := c.Manager
	if _, err := m.EditServerPool(ctx, backend.Ref{Name: managertest.Pool}, backend.PoolEdit{HA: backend.HAChange{Enabled: ptr(true),
		Repository: &backend.Ref{Name: managertest.Repo}, RenewInterval: ptr("200ms"), FenceTimeout: ptr("1s"), Margin: ptr("500ms")}}); err != nil {
		t.Fatal(err)
	}
	for _, vm := range []struct {
		name string
		ha   bool
	}{{"ha1", true}, {"plain", false}, {"ha2", true}} {
		if _, err := m.CreateVM(ctx, backend.CreateVMRequest{Name: vm.name, Repository: backend.Ref{Name: managertest.Repo},
			MemoryMiB: 512, CPUCount: 1, HA: vm.ha}); err != nil {
			t.Fatal(err)
		}
		if _, err := m.EditVM(ctx, backend.Ref{Name: vm.name}, backend.EditVMRequest{PreferredServers: &[]backend.Ref{{Name: "ovs1"}}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"ha1", "plain"} {
		if v, err := m.StartVM(ctx, backend.Ref{Name: name}); err != nil || v.Server.Name != "ovs1" {
			t.Fatalf("start %s: on %q, %v; want ovs1", name, v.Server.Name, err)
		}
		if _, err := m.EditVM(ctx, backend.Ref{Name: name}, backend.EditVMRequest{PreferredServers: &[]backend.Ref{}}); err != nil {
			t.Fatal(err)
		}
	}
	beat := func() {
		m.Beat(ctx, 2*time.Second)
		m.WaitHA()
	}
	beat() // the manager hears from every server
	if _, err := m.Reconcile(ctx); err != nil {
		t.Fatal(err) // and looks at them once, as the periodic reconciliation does
	}
	sim := func(i int, params map[string]any) {
		t.Helper()
		if err := c.AgentClient(i).Call(context.Background(), agentapi.MethodSimSet, nil, params); err != nil {
			t.Fatal(err)
		}
	}
	// waitStatus polls ovs1's ha_status until ok says so.
	waitStatus := func(what string, ok func(agentapi.HAStatus) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			st, err := c.AgentClient(0).HAStatus(context.Background())
			if err == nil && ok(st) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("ovs1 not %s: %+v, %v", what, st, err)
			}
			time.Sleep(50 * time.Millisecond) // the lease lapses on the agent's clock
		}
	}
	// where asks every agent which runs VM id.
	where := func(id string) []string {
		var on []string
		for i, name := range []string{"ovs1", "ovs2"} {
			doms, err := c.AgentClient(i).ListVMs(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range doms {
				if d.UUID == id {
					on = append(on, name)
				}
			}
		}
		return on
	}
	ha1, err := m.VM(ctx, backend.Ref{Name: "ha1"})
	if err != nil {
		t.Fatal(err)
	}

	// ovs1 loses its storage for a moment: it fences (its domains are
	// destroyed) and renews again, answering its heartbeats throughout.
	sim(0, map[string]any{"ha_storage_fail": true})
	waitStatus("fenced", func(st agentapi.HAStatus) bool { return st.Fenced && st.FencedCount == 1 })
	sim(0, map[string]any{"ha_storage_fail": false})
	waitStatus("renewing again", func(st agentapi.HAStatus) bool { return !st.Fenced })
	if on := where(ha1.ID); len(on) != 0 {
		t.Fatalf("ha1 runs on %v after ovs1 fenced", on)
	}

	switch how {
	case "heartbeat":
	case "reconciliation":
		beat()
		if _, err := m.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
	default:
		evs, err := c.AgentClient(0).GetEvents(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		detail := ""
		for _, e := range evs.Events {
			if e.Kind == agentapi.EventHAFenced {
				detail = e.Detail
			}
		}
		if detail == "" {
			t.Fatalf("ovs1 raised no %s event: %+v", agentapi.EventHAFenced, evs.Events)
		}
		if err := m.HAAgentFenced(ctx, ha1.Server.ID, detail); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; ; i++ {
		beat()
		server, status := serverOf(t, c, "ha1")
		on := where(ha1.ID)
		if len(on) > 1 {
			t.Fatalf("ha1 runs on %v", on)
		}
		if len(on) == 1 && on[0] == "ovs2" && server == "ovs2" && status == backend.VMRunning {
			break
		}
		if i == 40 {
			t.Fatalf("after ovs1 fenced itself and %d beats, ha1 runs on %v and is recorded %s on %q; want it running on ovs2\nevents: %q",
				i, on, status, server, haEvents(t, c, "VmLost"))
		}
	}
	if server, status := serverOf(t, c, "plain"); server != "" || status != backend.VMStopped {
		t.Fatalf("plain, without HA, is recorded %s on %q after ovs1 fenced; want Stopped", status, server)
	}
	if evs := haEvents(t, c, "VmHaRestarted"); len(evs) != 1 {
		t.Fatalf("VmHaRestarted events: %q", evs)
	}
	if evs := haEvents(t, c, "ServerFenced"); len(evs) != 1 {
		t.Fatalf("ServerFenced events: %q", evs)
	}
	if evs := haEvents(t, c, "VmStoppedByFence"); len(evs) != 1 {
		t.Fatalf("VmStoppedByFence events: %q; want plain's", evs)
	}

	// An HA VM started on ovs1 after the fence whose guest shuts itself
	// down, found by a reconciliation before any heartbeat, stays Stopped.
	if v, err := m.StartVM(ctx, backend.Ref{Name: "ha2"}); err != nil || v.Server.Name != "ovs1" {
		t.Fatalf("start ha2: on %q, %v; want ovs1", v.Server.Name, err)
	}
	ha2, err := m.VM(ctx, backend.Ref{Name: "ha2"})
	if err != nil {
		t.Fatal(err)
	}
	sim(0, map[string]any{"guest_shutdown": ha2.ID})
	if _, err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		beat()
	}
	if ha2, err = m.VM(ctx, backend.Ref{Name: "ha2"}); err != nil {
		t.Fatal(err)
	}
	if on := where(ha2.ID); len(on) != 0 || ha2.Status != backend.VMStopped {
		t.Fatalf("ha2, whose guest shut itself down, runs on %v and is recorded %s", on, ha2.Status)
	}
	if evs := haEvents(t, c, "VmHaRestarted"); len(evs) != 1 {
		t.Fatalf("VmHaRestarted events after ha2 shut itself down: %q", evs)
	}
}
