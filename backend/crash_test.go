package backend_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/managertest"
)

// vmEvents returns the events about VM name, newest first.
func vmEvents(t *testing.T, c *managertest.Core, name string) []backend.Event {
	t.Helper()
	events, err := c.Manager.Events(c.Admin(), false, 200)
	if err != nil {
		t.Fatal(err)
	}
	var out []backend.Event
	for _, e := range events {
		if e.ObjectType == "Vm" && e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// A guest that crashes reaches the manager at the next heartbeat, as its
// restartActionOnCrash (vm.cfg's on_crash) made the server treat it: a VM
// the server restarted stays Running on it, one whose domain was destroyed
// is Stopped, one whose crashed domain is kept is Stopped too, and starts
// again in place of that domain. Each raises a VmCrashed event saying so.
func TestHeartbeatFollowsACrash(t *testing.T) {
	for _, tc := range []struct {
		action     string
		wantStatus string
		wantDesc   string
	}{
		{backend.OnCrashRestart, backend.VMRunning, "crashed on server ovs1 and its server restarted it (on_crash restart)"},
		{backend.OnCrashCoredumpRestart, backend.VMRunning, "crashed on server ovs1 and its server restarted it (on_crash coredump-restart)"},
		{backend.OnCrashDestroy, backend.VMStopped, "crashed on server ovs1 and its domain was destroyed (on_crash destroy)"},
		{backend.OnCrashCoredumpDestroy, backend.VMStopped, "crashed on server ovs1 and its domain was destroyed (on_crash coredump-destroy)"},
		{backend.OnCrashPreserve, backend.VMStopped, "crashed on server ovs1; the crashed domain is kept on the server for inspection (on_crash preserve)"},
	} {
		t.Run(tc.action, func(t *testing.T) {
			c := managertest.Ready(t, managertest.Options{Agents: 1})
			ctx := c.Admin()
			beat := func() { c.Manager.Beat(context.Background(), 10*time.Second) } // a bound per call, generous on a loaded machine
			v, err := c.Manager.CreateVM(ctx, backend.CreateVMRequest{Name: "g", Repository: backend.Ref{Name: managertest.Repo},
				MemoryMiB: 256, CPUCount: 1, OnCrash: tc.action})
			if err != nil {
				t.Fatal(err)
			}
			if v.RestartActionOnCrash != tc.action {
				t.Fatalf("restartActionOnCrash = %q, want %q", v.RestartActionOnCrash, tc.action)
			}
			if _, err := c.Manager.StartVM(ctx, backend.Ref{Name: "g"}); err != nil {
				t.Fatal(err)
			}
			beat() // the first beat sets the server's event cursor
			agent := c.AgentClient(0)
			before, err := agent.ListVM(context.Background(), v.Repository.ID, v.ID)
			if err != nil {
				t.Fatal(err)
			}
			if err := agent.Call(context.Background(), agentapi.MethodSimSet, nil, map[string]any{"crash_vm": v.ID}); err != nil {
				t.Fatal(err)
			}
			beat()
			got, err := c.Manager.VM(ctx, backend.Ref{Name: "g"})
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tc.wantStatus || (got.Server.ID == "") != (tc.wantStatus == backend.VMStopped) {
				t.Errorf("after the crash and one heartbeat the VM is %s on %q, want %s", got.Status, got.Server.Name, tc.wantStatus)
			}
			events := vmEvents(t, c, "g")
			if len(events) == 0 || events[0].Kind != "VmCrashed" || !strings.Contains(events[0].Description, tc.wantDesc) {
				t.Fatalf("events of the VM %+v, want VmCrashed saying %q", events, tc.wantDesc)
			}
			dom, derr := agent.ListVM(context.Background(), v.Repository.ID, v.ID)
			switch tc.wantStatus {
			case backend.VMRunning:
				if derr != nil || dom.DomID == before.DomID || dom.State != agentapi.StateRunning {
					t.Errorf("the restarted domain is %+v (%v), want a new running domain, not domid %d", dom, derr, before.DomID)
				}
			default:
				if tc.action == backend.OnCrashPreserve && (derr != nil || dom.State != agentapi.StateCrashed) {
					t.Errorf("the preserved domain is %+v (%v), want it kept crashed", dom, derr)
				}
			}
			// Nothing more at the next beat, nor at a reconciliation: the
			// crashed domain kept for inspection is not a running VM.
			beat()
			if n, err := c.Manager.Reconcile(ctx); n != 0 || err != nil {
				t.Errorf("Reconcile after the crash = %d, %v; want nothing changed", n, err)
			}
			if again := vmEvents(t, c, "g"); len(again) != len(events) {
				t.Errorf("more events after the crash was recorded: %+v", again[:len(again)-len(events)])
			}
			if tc.wantStatus == backend.VMStopped {
				// start Vm starts it again, in place of a crashed domain.
				got, err := c.Manager.StartVM(ctx, backend.Ref{Name: "g"})
				if err != nil || got.Status != backend.VMRunning {
					t.Fatalf("start after the crash = %s, %v", got.Status, err)
				}
			}
		})
	}
}

// A VM recorded Running whose domain crashed and was kept, found by a
// reconciliation rather than an event (the event was lost), is recorded
// Stopped with a VmCrashed event; a VM whose domain is gone is Stopped
// with a VmLost event.
func TestReconcileRaisesEventsForWhatItFinds(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 1})
	ctx := c.Admin()
	agent := c.AgentClient(0)
	ids := map[string]string{}
	for _, name := range []string{"kept", "gone"} {
		v, err := c.Manager.CreateVM(ctx, backend.CreateVMRequest{Name: name, Repository: backend.Ref{Name: managertest.Repo},
			MemoryMiB: 256, CPUCount: 1, OnCrash: backend.OnCrashPreserve})
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = v.ID
		if _, err := c.Manager.StartVM(ctx, backend.Ref{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	if err := agent.Call(context.Background(), agentapi.MethodSimSet, nil, map[string]any{"crash_vm": ids["kept"]}); err != nil {
		t.Fatal(err)
	}
	if err := agent.Call(context.Background(), agentapi.MethodSimSet, nil, map[string]any{"guest_shutdown": ids["gone"]}); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Manager.Reconcile(ctx); n != 2 || err != nil {
		t.Fatalf("Reconcile = %d, %v; want 2 VMs changed", n, err)
	}
	for name, want := range map[string]string{"kept": "VmCrashed", "gone": "VmLost"} {
		v, err := c.Manager.VM(ctx, backend.Ref{Name: name})
		if err != nil || v.Status != backend.VMStopped {
			t.Errorf("%s after Reconcile: %s, %v; want Stopped", name, v.Status, err)
		}
		if events := vmEvents(t, c, name); len(events) != 1 || events[0].Kind != want {
			t.Errorf("events of %s: %+v, want one %s", name, events, want)
		}
	}
}

// restartActionOnCrash is written to vm.cfg's on_crash, at create and when
// edited; a value that is not an action is refused, saying which are.
func TestRestartActionOnCrashReachesVMCfg(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 1})
	ctx := c.Admin()
	v, err := c.Manager.CreateVM(ctx, backend.CreateVMRequest{Name: "g", Repository: backend.Ref{Name: managertest.Repo}, MemoryMiB: 256, CPUCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	onCrash := func() any {
		t.Helper()
		cfg, err := c.AgentClient(0).GetVMConfig(context.Background(), v.Repository.ID, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		return cfg[agentapi.KeyOnCrash]
	}
	if v.RestartActionOnCrash != backend.OnCrashRestart || onCrash() != "restart" {
		t.Errorf("by default restartActionOnCrash = %q, on_crash = %v; want Restart, restart", v.RestartActionOnCrash, onCrash())
	}
	action := backend.OnCrashCoredumpDestroy
	if v, err = c.Manager.EditVM(ctx, backend.Ref{Name: "g"}, backend.EditVMRequest{OnCrash: &action}); err != nil {
		t.Fatal(err)
	}
	if v.RestartActionOnCrash != action || onCrash() != "coredump-destroy" {
		t.Errorf("after edit restartActionOnCrash = %q, on_crash = %v; want %s, coredump-destroy", v.RestartActionOnCrash, onCrash(), action)
	}
	bad := "Explode"
	_, err = c.Manager.EditVM(ctx, backend.Ref{Name: "g"}, backend.EditVMRequest{OnCrash: &bad})
	if backend.KindOf(err) != backend.KindInvalidArgument || !strings.Contains(err.Error(), "Restart, Destroy, Preserve, CoredumpRestart, CoredumpDestroy") {
		t.Errorf("edit with restartActionOnCrash=Explode: %v", err)
	}
	_, err = c.Manager.CreateVM(ctx, backend.CreateVMRequest{Name: "h", Repository: backend.Ref{Name: managertest.Repo}, MemoryMiB: 256, CPUCount: 1, OnCrash: "restart"})
	if backend.KindOf(err) != backend.KindInvalidArgument {
		t.Errorf("create with restartActionOnCrash=restart (vm.cfg's spelling): %v", err)
	}
}

// Crashes on several servers at once are all noticed by the one beat after
// them (each server's events read in the same round), and only the crashed
// VMs raise events; then, with the watcher running on its own clock, a
// crash is noticed without anyone calling Beat (a bounded wait, not a
// speed measure: bench figure 6b times it).
func TestOneBeatNoticesCrashesOnEveryServer(t *testing.T) {
	const servers, perServer = 3, 2
	c := managertest.Ready(t, managertest.Options{Agents: servers})
	ctx := c.Admin()
	for i := range servers * perServer {
		name := "g" + strconv.Itoa(i)
		if _, err := c.Manager.CreateVM(ctx, backend.CreateVMRequest{Name: name, Repository: backend.Ref{Name: managertest.Repo},
			MemoryMiB: 256, CPUCount: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Manager.StartVM(ctx, backend.Ref{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	c.Manager.Beat(context.Background(), 10*time.Second) // the first beat sets every server's event cursor
	// The first guest of each server crashes.
	crash := func(i int) (name string) {
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
			v, err := c.Manager.VM(ctx, backend.Ref{ID: d.UUID})
			if err != nil {
				t.Fatal(err)
			}
			if len(vmEvents(t, c, v.Name)) > 0 {
				continue // crashed before
			}
			if err := agent.Call(context.Background(), agentapi.MethodSimSet, nil, map[string]any{"crash_vm": d.UUID}); err != nil {
				t.Fatal(err)
			}
			return v.Name
		}
		t.Fatalf("server %d runs no guest that has not crashed", i)
		return ""
	}
	crashed := map[string]bool{}
	for i := range servers {
		crashed[crash(i)] = true
	}
	if len(crashed) != servers {
		t.Fatalf("crashed %v, want one VM on each of %d servers", crashed, servers)
	}
	c.Manager.Beat(context.Background(), 10*time.Second)
	for i := range servers * perServer {
		name := "g" + strconv.Itoa(i)
		events := vmEvents(t, c, name)
		switch {
		case crashed[name] && (len(events) != 1 || events[0].Kind != "VmCrashed"):
			t.Errorf("%s crashed; after one beat its events are %+v, want one VmCrashed", name, events)
		case !crashed[name] && len(events) != 0:
			t.Errorf("%s did not crash; its events are %+v", name, events)
		}
	}

	watch(t, c.Manager, 200*time.Millisecond)
	name := crash(1)
	waitFor(t, "the watcher to record the crash of "+name, func() bool {
		events := vmEvents(t, c, name)
		return len(events) == 1 && events[0].Kind == "VmCrashed"
	})
}
