package host

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"xenmanager/backend/agent/xensim"
	"xenmanager/backend/agentapi"
)

func TestEvents(t *testing.T) {
	clock := newClock(time.Unix(1_700_000_000, 0))
	h := newHost(t, testConfig{Now: clock.Now})
	addRepo(t, h, t.TempDir(), "r1")
	for _, id := range []string{"a", "b"} {
		p := vmParams(256, 1)
		p["uuid"] = "u-" + id
		p["on_crash"] = "preserve"
		mustOK(t, h.CreateVM("r1", id, p))
		mustOK(t, h.StartVM("r1", id))
	}
	if ev := h.Events(0); ev.Next != 0 || len(ev.Events) != 0 {
		t.Fatalf("events of calls: %+v, want none", ev)
	}
	mustOK(t, h.StopVM("r1", "b", false)) // caused by a call: no event
	mustOK(t, h.StartVM("r1", "b"))
	mustOK(t, simOf(h).SimSet(map[string]any{xensim.SimCrashVM: "u-a"}))
	clock.Advance(time.Second)
	mustOK(t, simOf(h).SimSet(map[string]any{xensim.SimGuestShutdown: "b"}))
	wantFault(t, simOf(h).SimSet(map[string]any{xensim.SimGuestShutdown: "a"}), agentapi.FaultInvalidState, "domain a is crashed")
	wantFault(t, simOf(h).SimSet(map[string]any{xensim.SimGuestShutdown: "b"}), agentapi.FaultNotFound, "no live domain b")

	ev := h.Events(0)
	want := []agentapi.Event{
		{Seq: 1, Time: 1_700_000_000, Kind: agentapi.EventVMCrashed, VMUUID: "u-a", RepoID: "r1", State: agentapi.StateCrashed,
			Detail: "the guest crashed (simulated); on_crash preserve keeps the crashed domain (domid 1)"},
		{Seq: 2, Time: 1_700_000_001, Kind: agentapi.EventVMShutdown, VMUUID: "u-b", RepoID: "r1", State: agentapi.StateShutdown, Detail: "the guest powered itself off"},
	}
	if ev.Next != 2 || fmt.Sprint(ev.Events) != fmt.Sprint(want) {
		t.Errorf("events = %+v, want next 2 and %+v", ev, want)
	}
	if _, err := h.ListVM("r1", "b"); err == nil {
		t.Error("a guest that shut itself down is still a domain")
	}
	if ev := h.Events(1); len(ev.Events) != 1 || ev.Events[0].Seq != 2 {
		t.Errorf("events since 1 = %+v", ev)
	}
	if ev := h.Events(2); len(ev.Events) != 0 || ev.Next != 2 {
		t.Errorf("events since 2 = %+v", ev)
	}
	if ev := h.Events(99); len(ev.Events) != 2 {
		t.Errorf("a cursor from another process must get everything held, got %+v", ev)
	}

	// The ring keeps the newest maxEvents.
	for range maxEvents + 5 {
		h.events.Emit(agentapi.Event{Kind: "test"})
	}
	ev = h.Events(0)
	if len(ev.Events) != maxEvents || ev.Events[0].Seq != 8 || ev.Next != maxEvents+7 {
		t.Errorf("after overflow: %d events from seq %d, next %d", len(ev.Events), ev.Events[0].Seq, ev.Next)
	}
}

func TestDiscoverNetwork(t *testing.T) {
	dir := t.TempDir()
	h := newHost(t, testConfig{DataDir: dir})
	nets := h.DiscoverNetwork("192.0.2.7")
	if len(nets) != 1 {
		t.Fatalf("networks = %+v", nets)
	}
	n := nets[0]
	if n.Name != "xenbr0" || n.Device != "eth0" || n.Address != "192.0.2.7" || n.MTU != 1500 ||
		!regexp.MustCompile(`^02(:[0-9a-f]{2}){5}$`).MatchString(n.MAC) {
		t.Errorf("bridge = %+v", n)
	}
	if again := newHost(t, testConfig{DataDir: dir}).DiscoverNetwork(""); again[0].MAC != n.MAC {
		t.Errorf("MAC changed across a restart: %s -> %s", n.MAC, again[0].MAC)
	}
	if other := newHost(t, testConfig{}).DiscoverNetwork(""); other[0].MAC == n.MAC {
		t.Errorf("two hosts share the MAC %s", n.MAC)
	}
}

// console connects a client to h.ServeConsole over an in-memory pipe.
