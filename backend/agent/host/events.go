package host

import (
	"sync"

	"xenmanager/backend/agentapi"
)

// maxEvents bounds the event log: a reader that falls further behind loses
// the oldest events.
const maxEvents = 1000

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
