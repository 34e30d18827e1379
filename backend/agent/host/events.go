package host

import (
	"context"
	"sync"
	"time"

	"xenmanager/backend/agentapi"
)

// maxEvents bounds the event log: a reader that falls further behind loses
// the oldest events.
const maxEvents = 1000

// MaxEventWaiters bounds the get_events calls that wait at once
// (agentapi.ExtEventsWait); one more is answered at once, as a call
// without a wait, so that held calls cannot pile up: a manager holds one
// per agent (only the leader of a database watches), and a waiting call
// holds nothing but its goroutine, its connection and a timer.
const MaxEventWaiters = 16

// eventLog is the ring of domain state changes not caused by a call
// (get_events). Sequence numbers start at 1 and never repeat within the
// process; the log survives a simulated host reboot, so that a reader's
// cursor stays valid.
type eventLog struct {
	// instance names this process's numbering (get_events' instance); set
	// once by New, before any reader.
	instance string

	mu   sync.Mutex       // guards the fields below
	ring []agentapi.Event // oldest first, at most maxEvents
	last int64            // seq of the newest event, 0 before the first
	// changed is closed by the next Emit, which wakes every waiting
	// get_events; nil while nobody waits.
	changed chan struct{}
	waiters int // get_events calls waiting now, at most MaxEventWaiters
}

// Emit appends an event, giving it the next sequence number; drivers
// record through it the state changes no call caused.
func (l *eventLog) Emit(e agentapi.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last++
	e.Seq = l.last
	if len(l.ring) == maxEvents {
		copy(l.ring, l.ring[1:])
		l.ring = l.ring[:maxEvents-1]
	}
	l.ring = append(l.ring, e)
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

// Events answers get_events: the events after since, oldest first, the
// cursor for the next call and the instance of this process. A since
// beyond the newest event comes from a reader of an earlier agent process
// (sequence numbers restart with the process), which gets every event
// held.
func (h *Host) Events(since int64) agentapi.Events {
	l := &h.events
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.eventsLocked(since)
}

// eventsLocked is Events with l.mu held.
func (l *eventLog) eventsLocked(since int64) agentapi.Events {
	if since > l.last || since < 0 {
		since = 0
	}
	out := agentapi.Events{Next: l.last, Events: []agentapi.Event{}, Instance: l.instance}
	for _, e := range l.ring {
		if e.Seq > since {
			out.Events = append(out.Events, e)
		}
	}
	return out
}

// EventWaiters is how many get_events calls wait now (WaitEvents), for
// the agent's metrics and tests.
func (h *Host) EventWaiters() int {
	h.events.mu.Lock()
	defer h.events.mu.Unlock()
	return h.events.waiters
}

// WaitEvents answers get_events with a wait (agentapi.ExtEventsWait): at
// once when events after since are held, or since is not a number of this
// process's (a reader of an earlier agent, which must learn of the restart
// now); otherwise when the next event comes, wait passes or ctx ends,
// whichever is first, with what is held then. The caller has bounded wait
// (agentapi.MaxEventsWaitMS); nothing outlives it: the timer is stopped
// and the call returns. Beyond MaxEventWaiters waiting calls it answers at
// once, as Events.
func (h *Host) WaitEvents(ctx context.Context, since int64, wait time.Duration) agentapi.Events {
	l := &h.events
	l.mu.Lock()
	if wait <= 0 || since != l.last || l.waiters >= MaxEventWaiters {
		defer l.mu.Unlock()
		return l.eventsLocked(since)
	}
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	changed := l.changed
	l.waiters++
	l.mu.Unlock()

	t := time.NewTimer(wait)
	select {
	case <-changed:
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waiters--
	return l.eventsLocked(since)
}
