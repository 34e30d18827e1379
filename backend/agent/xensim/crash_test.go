package xensim

import (
	"strings"
	"testing"
	"time"

	"xenmanager/backend/agentapi"
)

// A crash does what the domain's on_crash says, as Xen does, and the
// event's state says what became of the domain: preserve keeps it crashed
// (holding no memory), destroy ends it, restart ends it and boots a new
// domain with the next domid; the coredump actions act as destroy and
// restart; no on_crash is Xen's default, destroy.
func TestCrashFollowsOnCrash(t *testing.T) {
	for _, tc := range []struct {
		onCrash   string // "" leaves the key out
		wantState string // of the domain afterwards, "" for none
		event     string // the event's state
		detail    string
	}{
		{"", "", agentapi.StateShutdown, "on_crash destroy destroyed domain 1"},
		{"destroy", "", agentapi.StateShutdown, "on_crash destroy destroyed domain 1"},
		{"coredump-destroy", "", agentapi.StateShutdown, "on_crash coredump-destroy destroyed domain 1"},
		{"preserve", agentapi.StateCrashed, agentapi.StateCrashed, "on_crash preserve keeps the crashed domain (domid 1)"},
		{"restart", agentapi.StateRunning, agentapi.StateRunning, "on_crash restart destroyed domain 1 and booted domain 2"},
		{"coredump-restart", agentapi.StateRunning, agentapi.StateRunning, "on_crash coredump-restart destroyed domain 1 and booted domain 2"},
	} {
		t.Run("on_crash="+tc.onCrash, func(t *testing.T) {
			clock := newClock(time.Unix(1_700_000_000, 0))
			h := newHost(t, testConfig{MemoryMiB: 8192, CPUs: 4, Now: clock.Now})
			addRepo(t, h, t.TempDir(), "r1")
			p := vmParams(2048, 2)
			p["uuid"] = "u-vm1"
			if tc.onCrash != "" {
				p["on_crash"] = tc.onCrash
			}
			mustOK(t, h.CreateVM("r1", "vm1", p))
			mustOK(t, h.StartVM("r1", "vm1"))
			clock.Advance(time.Minute)
			mustOK(t, h.SimSet(map[string]any{SimCrashVM: "vm1"}))

			d, err := h.ListVM("r1", "vm1")
			switch {
			case tc.wantState == "":
				wantFault(t, err, agentapi.FaultNotFound, "not running")
			case err != nil:
				t.Fatalf("ListVM after the crash: %v", err)
			case d.State != tc.wantState:
				t.Errorf("domain after the crash is %s, want %s", d.State, tc.wantState)
			case tc.wantState == agentapi.StateRunning && (d.DomID != 2 || d.CPUTimeS != 0 || d.MemoryMiB != 2048 || d.VCPUs != 2):
				t.Errorf("the restarted domain is %+v, want domid 2, booted now, with the VM's 2048 MiB and 2 vCPUs", d)
			}
			held := int64(0)
			if tc.wantState == agentapi.StateRunning {
				held = 2048
			}
			if got, want := h.FreeMemoryMiB(), int64(8192-1024)-held; got != want {
				t.Errorf("free memory after the crash = %d, want %d", got, want)
			}
			ev := h.Events(0)
			if len(ev.Events) != 1 {
				t.Fatalf("events = %+v, want the crash", ev)
			}
			e := ev.Events[0]
			if e.Kind != agentapi.EventVMCrashed || e.VMUUID != "u-vm1" || e.State != tc.event || !strings.HasSuffix(e.Detail, tc.detail) {
				t.Errorf("event = %+v, want vm_crashed, state %s, detail ending %q", e, tc.event, tc.detail)
			}
		})
	}
}

// start_vm replaces a crashed domain (on_crash preserve) with a new one,
// as xl does after destroying it; another domain of the VM is still
// InvalidState. A crashed domain cannot crash again, and an on_crash that
// is no action is refused when a domain would boot from it.
func TestStartReplacesACrashedDomain(t *testing.T) {
	h := newHost(t, testConfig{MemoryMiB: 8192, CPUs: 4})
	addRepo(t, h, t.TempDir(), "r1")
	p := vmParams(1024, 1)
	p["on_crash"] = "preserve"
	mustOK(t, h.CreateVM("r1", "vm1", p))
	mustOK(t, h.StartVM("r1", "vm1"))
	mustOK(t, h.SimSet(map[string]any{SimCrashVM: "vm1"}))
	wantFault(t, h.SimSet(map[string]any{SimCrashVM: "vm1"}), agentapi.FaultInvalidState, "domain vm1 is crashed")
	mustOK(t, h.StartVM("r1", "vm1"))
	d := must(h.ListVM("r1", "vm1"))
	if d.State != agentapi.StateRunning || d.DomID != 2 {
		t.Errorf("after start_vm of a crashed VM: %+v, want a new running domain 2", d)
	}
	if n := len(must(h.ListVMs())); n != 1 {
		t.Errorf("%d domains, want the new one only", n)
	}
	wantFault(t, h.StartVM("r1", "vm1"), agentapi.FaultInvalidState, "already running")

	bad := vmParams(256, 1)
	bad["on_crash"] = "explode"
	mustOK(t, h.CreateVM("r1", "bad", bad))
	wantFault(t, h.StartVM("r1", "bad"), agentapi.FaultInvalidArgument, `on_crash "explode" is not an action (accepted: destroy, restart, preserve`)
}

// A domain keeps its on_crash through save and restore.
func TestOnCrashSurvivesSaveAndRestore(t *testing.T) {
	h := newHost(t, testConfig{MemoryMiB: 8192, CPUs: 4})
	addRepo(t, h, t.TempDir(), "r1")
	p := vmParams(64, 1)
	p["on_crash"] = "preserve"
	mustOK(t, h.CreateVM("r1", "vm1", p))
	mustOK(t, h.StartVM("r1", "vm1"))
	mustOK(t, h.SaveVM("r1", "vm1", false))
	mustOK(t, h.RestoreVM("r1", "vm1", false))
	mustOK(t, h.SimSet(map[string]any{SimCrashVM: "vm1"}))
	if d := must(h.ListVM("r1", "vm1")); d.State != agentapi.StateCrashed {
		t.Errorf("a restored domain with on_crash preserve crashed into %s, want crashed", d.State)
	}
}
