package host

import (
	"context"
	"sync"
	"testing"
	"time"

	"xenmanager/backend/agent/xensim"
	"xenmanager/backend/agentapi"
)

// longWait is the wait of the calls that must answer before it ends: the
// protocol's bound, so that a call that waited it out rather than answering
// at once fails the test however loaded the machine.
const longWait = agentapi.MaxEventsWaitMS * time.Millisecond

// waiters is how many get_events calls wait on h now.
func waiters(h *Host) int { return h.EventWaiters() }

// TestWaitEvents: get_events with a wait answers at once when it has
// something to say (events after since, a cursor of another process, no
// wait, too many waiting already), wakes at the first event a driver
// records (a guest's crash on the simulated host), answers with none when
// the wait ends or its caller leaves, and holds nothing after it answered.
func TestWaitEvents(t *testing.T) {
	crash := func(t *testing.T, h *Host) { mustOK(t, simOf(h).SimSet(map[string]any{xensim.SimCrashVM: "u-a"})) }
	tests := []struct {
		name   string
		before func(t *testing.T, h *Host) // before the call
		since  func(h *Host) int64         // the call's cursor; the newest event's when nil
		wait   time.Duration
		// during runs once the call waits (nil: the call must not wait);
		// cancel ends the call's context.
		during     func(t *testing.T, h *Host, cancel func())
		wantEvents int
		// wantWaited: the call must have waited its whole wait (it ended
		// with no event); otherwise it must end before the wait.
		wantWaited bool
	}{
		{name: "events held: at once", before: crash, since: func(*Host) int64 { return 0 }, wait: longWait, wantEvents: 1},
		{name: "a cursor of another process: at once", before: crash, since: func(*Host) int64 { return 99 }, wait: longWait,
			wantEvents: 1},
		{name: "no wait: at once", wait: 0},
		{name: "an event wakes it", wait: longWait, wantEvents: 1,
			during: func(t *testing.T, h *Host, _ func()) { crash(t, h) }},
		{name: "an event of the HA keeper wakes it", wait: longWait, wantEvents: 1,
			during: func(_ *testing.T, h *Host, _ func()) {
				haHost{h}.Emit(agentapi.Event{Kind: agentapi.EventHAFenced, Detail: "test"})
			}},
		{name: "the caller leaves", wait: longWait, during: func(_ *testing.T, _ *Host, cancel func()) { cancel() }},
		{name: "the wait ends with none", wait: 50 * time.Millisecond, wantWaited: true,
			during: func(*testing.T, *Host, func()) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(t, testConfig{})
			addRepo(t, h, t.TempDir(), "r1")
			p := vmParams(256, 1)
			p["uuid"] = "u-a"
			mustOK(t, h.CreateVM("r1", "a", p))
			mustOK(t, h.StartVM("r1", "a"))
			if tt.before != nil {
				tt.before(t, h)
			}
			since := h.Events(0).Next
			if tt.since != nil {
				since = tt.since(h)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			type answer struct {
				ev   agentapi.Events
				took time.Duration
			}
			done := make(chan answer, 1)
			start := time.Now()
			go func() {
				ev := h.WaitEvents(ctx, since, tt.wait)
				done <- answer{ev, time.Since(start)}
			}()
			if tt.during != nil {
				waitFor(t, "the call to wait", func() bool { return waiters(h) == 1 })
				tt.during(t, h, cancel)
			}
			got := <-done
			if len(got.ev.Events) != tt.wantEvents {
				t.Errorf("events = %+v, want %d", got.ev.Events, tt.wantEvents)
			}
			if got.ev.Next != h.Events(0).Next || got.ev.Instance == "" {
				t.Errorf("next %d, instance %q; want %d and the host's instance", got.ev.Next, got.ev.Instance, h.Events(0).Next)
			}
			switch {
			case tt.wantWaited && got.took < tt.wait:
				t.Errorf("answered after %s, before its wait of %s ended, with nothing to say", got.took, tt.wait)
			case !tt.wantWaited && tt.wait > 0 && got.took >= tt.wait:
				t.Errorf("answered after %s: it waited its whole wait of %s", got.took, tt.wait)
			}
			if n := waiters(h); n != 0 {
				t.Errorf("%d calls still counted as waiting after the answer", n)
			}
		})
	}
}

// TestWaitEventsBounded: beyond MaxEventWaiters waiting calls, one more
// answers at once, without waiting; the waiting ones all wake at the next
// event.
func TestWaitEventsBounded(t *testing.T) {
	h := newHost(t, testConfig{})
	since := h.Events(0).Next
	var wg sync.WaitGroup
	woke := make(chan int, MaxEventWaiters)
	for range MaxEventWaiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			woke <- len(h.WaitEvents(context.Background(), since, longWait).Events)
		}()
	}
	waitFor(t, "every call to wait", func() bool { return waiters(h) == MaxEventWaiters })
	start := time.Now()
	if ev := h.WaitEvents(context.Background(), since, longWait); len(ev.Events) != 0 || time.Since(start) >= longWait {
		t.Errorf("the call beyond the bound: %+v after %s, want none at once", ev, time.Since(start))
	}
	if n := waiters(h); n != MaxEventWaiters {
		t.Errorf("%d waiting, want %d", n, MaxEventWaiters)
	}
	h.events.Emit(agentapi.Event{Kind: "test"})
	wg.Wait()
	close(woke)
	for n := range woke {
		if n != 1 {
			t.Errorf("a waiting call woke with %d events, want 1", n)
		}
	}
}
