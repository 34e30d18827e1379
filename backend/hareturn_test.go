package backend_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/managertest"
)

// A server judged fenced while it was silent, whose HA VM could not be
// restarted elsewhere meanwhile, answers again: it fenced itself on its
// return, and the manager restarts the VM then, as for a dead server: on
// another server when one can take it, back on the returned server when
// none can. (Under libvirt this is the common case: the guest of a frozen
// or killed agent runs on and holds the VM's disks, so every restart
// elsewhere is refused until the agent is back and has fenced. Here
// anti-affinity keeps the VM off the other servers while ovs1 is silent.)
// ovs3 has less memory free than ovs1, so that placement left to itself
// would choose ovs1. The beats are driven by hand. When the manager has
// never heard from ovs1 before (as after its agent restarted), it
// reconciles ovs1 at its first answer, before the HA round: that
// reconciliation finds hag's domain gone from a server judged fenced and
// leaves it to the HA round (no VmLost), which restarts it.
func TestHAFencedServerThatReturnsHasItsVMsRestarted(t *testing.T) {
	for _, tc := range []struct {
		name     string
		freeOvs3 bool // the group's member on ovs3 stops while ovs1 is silent
		// reconciled: the manager first hears from ovs1 when it answers
		// again, so it reconciles ovs1 before the HA round (as after an
		// agent restart), which leaves hag to the HA round
		reconciled bool
		// forceStop: the operator records hag stopped (stop Vm
		// force=Yes) while ovs1 is silent; then it is not restarted
		forceStop bool
		want      string // where hag runs in the end; "" nowhere
	}{
		{"elsewhere when another server can take it", true, false, false, "ovs3"},
		{"on the returned server when none can", false, false, false, "ovs1"},
		{"also when the returned server is reconciled first", true, true, false, "ovs3"},
		{"not after an operator recorded it stopped", true, true, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := managertest.Ready(t, managertest.Options{Agents: 3, MemoryMiB: 8192, CPUs: 4, AgentTimeout: 2 * time.Second})
			ctx := c.Admin()
			m := c.Manager
			if _, err := m.EditServerPool(ctx, backend.Ref{Name: managertest.Pool}, backend.PoolEdit{HA: backend.HAChange{Enabled: ptr(true),
				Repository: &backend.Ref{Name: managertest.Repo}, RenewInterval: ptr("200ms"), FenceTimeout: ptr("1s"), Margin: ptr("500ms")}}); err != nil {
				t.Fatal(err)
			}
			if _, err := m.CreateAntiAffinityGroup(ctx, "tier", "", backend.Ref{Name: managertest.Pool}); err != nil {
				t.Fatal(err)
			}
			for _, vm := range []struct{ name, server string }{{"hag", "ovs1"}, {"b2", "ovs2"}, {"b3", "ovs3"}} {
				if _, err := m.CreateVM(ctx, backend.CreateVMRequest{Name: vm.name, Repository: backend.Ref{Name: managertest.Repo},
					MemoryMiB: 512, CPUCount: 1, HA: vm.name == "hag"}); err != nil {
					t.Fatal(err)
				}
				if _, err := m.AddVMToAntiAffinityGroup(ctx, backend.Ref{Name: vm.name}, backend.Ref{Name: "tier"}); err != nil {
					t.Fatal(err)
				}
				if _, err := m.EditVM(ctx, backend.Ref{Name: vm.name}, backend.EditVMRequest{PreferredServers: &[]backend.Ref{{Name: vm.server}}}); err != nil {
					t.Fatal(err)
				}
				if v, err := m.StartVM(ctx, backend.Ref{Name: vm.name}); err != nil || v.Server.Name != vm.server {
					t.Fatalf("start %s: on %q, %v; want %s", vm.name, v.Server.Name, err, vm.server)
				}
			}
			if _, err := m.EditVM(ctx, backend.Ref{Name: "hag"}, backend.EditVMRequest{PreferredServers: &[]backend.Ref{}}); err != nil {
				t.Fatal(err)
			}
			// ovs3 has less memory free than ovs1 will have: placement
			// left to itself would put hag back on ovs1.
			if _, err := m.CreateVM(ctx, backend.CreateVMRequest{Name: "filler3", Repository: backend.Ref{Name: managertest.Repo}, MemoryMiB: 2048, CPUCount: 1}); err != nil {
				t.Fatal(err)
			}
			if _, err := m.EditVM(ctx, backend.Ref{Name: "filler3"}, backend.EditVMRequest{PreferredServers: &[]backend.Ref{{Name: "ovs3"}}}); err != nil {
				t.Fatal(err)
			}
			if v, err := m.StartVM(ctx, backend.Ref{Name: "filler3"}); err != nil || v.Server.Name != "ovs3" {
				t.Fatalf("start filler3: on %q, %v; want ovs3", v.Server.Name, err)
			}
			servers, err := m.Servers(ctx, backend.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			ovs1 := ""
			for _, s := range servers {
				if s.Name == "ovs1" {
					ovs1 = s.ID
				}
			}
			beat := func() {
				m.Beat(ctx, 300*time.Millisecond)
				m.WaitHA()
			}
			if !tc.reconciled {
				beat() // the manager hears from every server
			}

			// ovs1 goes silent and loses its storage: it fences itself
			// (its domains are destroyed) and misses its heartbeats.
			sim := func(i int, params map[string]any) {
				t.Helper()
				if err := c.AgentClient(i).Call(context.Background(), agentapi.MethodSimSet, nil, params); err != nil {
					t.Fatal(err)
				}
			}
			sim(0, map[string]any{"ha_storage_fail": true, "hang": true})
			deadline := time.Now().Add(30 * time.Second)
			for {
				ls, err := c.AgentClient(1).HAReadLeases(context.Background(), []string{ovs1})
				if err == nil && len(ls) == 1 && ls[0].AgeMS > 1500 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("ovs1's lease as ovs2 reads it: %+v, %v; want older than fence timeout and margin", ls, err)
				}
				time.Sleep(50 * time.Millisecond) // the lease ages on the agents' clocks
			}
			for i := 0; ; i++ {
				beat()
				if evs := haEvents(t, c, "VmHaRestartFailed"); len(evs) > 0 {
					if !strings.Contains(evs[0], "AntiAffinityGroup tier") {
						t.Fatalf("hag's restart failed for another reason: %s", evs[0])
					}
					break
				}
				if i == 20 {
					t.Fatalf("no failed HA restart of hag after %d beats with ovs1 silent", i)
				}
			}
			if server, _ := serverOf(t, c, "hag"); server != "ovs1" {
				t.Fatalf("hag is recorded on %q after its failed restart; want ovs1", server)
			}
			if tc.reconciled && !tc.forceStop {
				defer func() {
					if evs := haEvents(t, c, "VmLost"); len(evs) != 0 {
						t.Errorf("VmLost events %q; want the reconciliation of ovs1, judged fenced, to leave hag to the HA round", evs)
					}
				}()
			}
			if tc.freeOvs3 {
				if _, err := m.StopVM(ctx, backend.Ref{Name: "b3"}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.forceStop {
				if _, err := m.ForceStopVM(ctx, backend.Ref{Name: "hag"}); err != nil {
					t.Fatal(err)
				}
			}

			// ovs1 answers again: it has fenced (hag's domain is gone there).
			sim(0, map[string]any{"ha_storage_fail": false, "hang": false})
			hag, err := m.VM(ctx, backend.Ref{Name: "hag"})
			if err != nil {
				t.Fatal(err)
			}
			// where asks every agent which runs hag.
			where := func() []string {
				var on []string
				for i, name := range []string{"ovs1", "ovs2", "ovs3"} {
					doms, err := c.AgentClient(i).ListVMs(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					for _, d := range doms {
						if d.UUID == hag.ID {
							on = append(on, name)
						}
					}
				}
				return on
			}
			if tc.want == "" {
				for range 3 {
					beat()
				}
				if server, status := serverOf(t, c, "hag"); len(where()) != 0 || status != backend.VMStopped {
					t.Fatalf("hag, recorded stopped by the operator, runs on %v and is recorded %s on %q after ovs1 answers again", where(), status, server)
				}
				return
			}
			// Beats until hag runs where it should, for a generous while:
			// a restart on ovs1 waits for ovs1 to renew its own HA lease
			// (every 200 ms on its own clock), and beats driven by hand
			// can come faster than that.
			giveUp := time.Now().Add(20 * time.Second)
			for i := 0; ; i++ {
				beat()
				server, status := serverOf(t, c, "hag")
				on := where()
				if len(on) > 1 {
					t.Fatalf("hag runs on %v", on)
				}
				if len(on) == 1 && on[0] == tc.want && server == tc.want && status == backend.VMRunning {
					break
				}
				if time.Now().After(giveUp) {
					t.Fatalf("after ovs1 answers again and %d beats, hag runs on %v and is recorded %s on %q; want it running on %s", i, on, status, server, tc.want)
				}
				time.Sleep(20 * time.Millisecond) // the agents' leases renew on their own clocks
			}
			if evs := haEvents(t, c, "VmHaRestarted"); len(evs) != 1 || !strings.Contains(evs[0], "on Server "+tc.want) {
				t.Fatalf("VmHaRestarted events: %q", evs)
			}
		})
	}
}

// haEvents are the descriptions of the manager's events of kind.
func haEvents(t *testing.T, c *managertest.Core, kind string) []string {
	t.Helper()
	evs, err := c.Manager.Events(c.Admin(), false, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		if e.Kind == kind {
			out = append(out, e.Description)
		}
	}
	return out
}
