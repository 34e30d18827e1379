package backend

import (
	"context"
	"sync"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
	"xenmanager/store"
)

// heldProbe is what get_api_version said of a server's agent: whether it
// lists agentapi.ExtEventsWait, asked once per client (address, password,
// pin) and agent process (the instance its events carry), since a restart
// may bring an agent without it.
type heldProbe struct {
	client   *agentclient.Client
	instance string
	has      bool
}

// heldWaitFor is the wait of a held get_events made at now, at heartbeat
// interval: until the next multiple of the interval (of the clock's time
// since its zero), at most one interval and the protocol's bound, so that
// every agent's call without an event ends at the same instant and the
// manager takes their answers and makes the next calls in one burst, as
// a round's, rather than one at a time all through the interval: a
// wake-up of the process for each answer cost figure 6 more than the
// answers themselves. A call made just before such an instant (after an
// event) waits only until it, at least a millisecond. The call is a
// missed beat when it has not answered within its bound
// (heldBound): two intervals after the server's last answer; after a miss
// the server gets plain beats, each bounded by the interval, until it
// answers again. A silent agent therefore becomes Unreachable no later
// than at the rounds: its first miss comes at most two intervals after its
// last answer, as a round's does (the next round an interval after the
// answer, its call bounded by the interval), and the next two one
// interval apart each.
func heldWaitFor(now time.Time, interval time.Duration) time.Duration {
	until := now.Truncate(interval).Add(interval).Sub(now)
	return min(max(until, time.Millisecond), agentapi.MaxEventsWaitMS*time.Millisecond)
}

// heldBound is how long a held get_events of wait made at start may take
// before it is a missed beat: until two intervals after the server's last
// answer (at last), and at least the wait and half an interval, the grace
// in which an answer at the wait's end must come.
func heldBound(last, start time.Time, wait, interval time.Duration) time.Duration {
	return max(last.Add(2*interval).Sub(start), wait+interval/2)
}

// heldBy reports whether a held get_events follows server id (the rounds
// skip it).
func (m *Manager) heldBy(id string) bool {
	m.hb.mu.Lock()
	defer m.hb.mu.Unlock()
	return m.hb.held[id]
}

// holdPolls starts, after a round, a held get_events (holdEvents) for each
// Running server that answered the round, that no held call follows yet
// and whose agent lists agentapi.ExtEventsWait, asking get_api_version of
// those not asked since their client or agent process changed. Each runs
// in wg until ctx ends or it hands its server back to the rounds.
func (m *Manager) holdPolls(ctx context.Context, interval time.Duration, wg *sync.WaitGroup) {
	inv, err := m.inventory(ctx)
	if err != nil {
		return
	}
	m.hb.inv.Store(inv)
	for _, s := range inv.serverList {
		if s.Status != ServerRunning {
			continue
		}
		m.hb.mu.Lock()
		_, known := m.hb.cursor[s.ID]
		ready := known && m.hb.misses[s.ID] == 0 && m.hb.resync[s.ID] == "" && !m.hb.held[s.ID]
		probe, probed := m.hb.probed[s.ID]
		instance := m.hb.instance[s.ID]
		if ready && (!probed || probe.has) {
			if m.hb.held == nil {
				m.hb.held = map[string]bool{}
			}
			m.hb.held[s.ID] = true // the rounds skip it from now on
		}
		m.hb.mu.Unlock()
		if !ready || probed && !probe.has {
			// A server without the wait is asked again only once its
			// client or agent changed: forget handles that.
			if probed && !probe.has && (probe.instance != instance || !m.clients.current(s.ID, probe.client)) {
				m.forgetProbe(s.ID)
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer m.unhold(s.ID)
			m.holdEvents(ctx, s, interval)
		}()
	}
}

// missed is how many beats in a row server id missed.
func (m *Manager) missed(id string) int {
	m.hb.mu.Lock()
	defer m.hb.mu.Unlock()
	return m.hb.misses[id]
}

// unhold hands server id back to the rounds.
func (m *Manager) unhold(id string) {
	m.hb.mu.Lock()
	delete(m.hb.held, id)
	m.hb.mu.Unlock()
}

// forgetProbe drops what get_api_version said of server id's agent, so
// that it is asked again.
func (m *Manager) forgetProbe(id string) {
	m.hb.mu.Lock()
	delete(m.hb.probed, id)
	m.hb.mu.Unlock()
}

// heldView returns server id as the inventory the last round read has it,
// and that inventory's generation: what a held call reads of its server
// at each call. Reading the inventory itself there would, at every
// change of a server, pool or repository, have each of 1,000 held calls
// read every server's row again (a profile of figure 6 showed them at
// half of the manager's CPU); the rounds read it once an interval.
func (m *Manager) heldView(id string) (s store.Server, gen int64, found bool) {
	inv := m.hb.inv.Load()
	if inv == nil {
		return store.Server{}, 0, false
	}
	s, found = inv.servers[id]
	return s, inv.gen, found
}

// hasEventsWait reports whether server s's agent, through c, lists
// agentapi.ExtEventsWait, asking get_api_version unless it was asked for
// this client and agent process; ok is false when the agent did not say.
func (m *Manager) hasEventsWait(ctx context.Context, s store.Server, c *agentclient.Client, timeout time.Duration) (has, ok bool) {
	m.hb.mu.Lock()
	probe, probed := m.hb.probed[s.ID]
	instance := m.hb.instance[s.ID]
	m.hb.mu.Unlock()
	if probed && probe.client == c && probe.instance == instance {
		return probe.has, true
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	ver, err := c.GetAPIVersion(pctx)
	cancel()
	if err != nil {
		return false, false
	}
	has = ver.Has(agentapi.ExtEventsWait)
	m.hb.mu.Lock()
	if m.hb.probed == nil {
		m.hb.probed = map[string]heldProbe{}
	}
	m.hb.probed[s.ID] = heldProbe{client: c, instance: instance, has: has}
	m.hb.mu.Unlock()
	return has, true
}

// holdEvents follows server s with get_events calls its agent holds until
// an event comes or the wait (heldWaitFor) ends, each answer being a beat
// of that server (beatWith) and each event applied when it comes, until
// ctx ends or the server is no longer for it: not Running or Unreachable
// (its job watches it), another client (its address, password or pin
// changed), an agent without the wait (asked first, and again after a
// restart of the agent), or one that refuses the wait. The rounds then
// take it again. A held call that does not answer within its bound is a
// missed beat; the server then gets plain beats, one an interval, each
// bounded by the interval as a round's, until it answers again. An
// ha_fenced event starts the HA round at once rather than after the next
// round.
func (m *Manager) holdEvents(ctx context.Context, s store.Server, interval time.Duration) {
	// A context of its own, so that each call's contexts register with it
	// rather than with the watcher's, whose one lock the 1,000 held calls
	// of a burst would otherwise all take twice per call.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, err := m.clients.get(s)
	if err != nil {
		return
	}
	if has, ok := m.hasEventsWait(ctx, s, c, interval); !ok || !has {
		return
	}
	holding := true
	// own is the status the beats here recorded (Unreachable, Running
	// again), which the round's inventory shows once read at or after
	// generation ownGen.
	var own string
	var ownGen int64
	last := time.Now() // of the last answer: the round's, just before
	for ctx.Err() == nil {
		cur, gen, found := m.heldView(s.ID)
		if !found {
			return
		}
		if own != "" && gen < ownGen {
			cur.Status = own
		} else {
			own = ""
		}
		s = cur
		if s.Status != ServerRunning && s.Status != ServerUnreachable || !m.clients.current(s.ID, c) {
			return
		}
		start := time.Now()
		var res beatResult
		var events []agentapi.Event
		wait := heldWaitFor(start, interval)
		if holding {
			res, events = m.beatWith(ctx, s, c, heldBound(last, start, wait, interval), wait)
		} else {
			res, events = m.beatWith(ctx, s, c, interval, 0)
		}
		if res != beatMissed && res != beatRefused {
			last = time.Now()
		}
		switch {
		case res != beatMissed && res != beatRefused && s.Status == ServerUnreachable:
			own, ownGen = ServerRunning, m.st.InventoryGeneration()
		case res == beatMissed && s.Status == ServerRunning && m.missed(s.ID) >= heartbeatMisses:
			own, ownGen = ServerUnreachable, m.st.InventoryGeneration()
		}
		for _, e := range events {
			if e.Kind == agentapi.EventHAFenced {
				m.haKick(ctx, interval)
				break
			}
		}
		var next time.Duration // from start, before the next call
		switch res {
		case beatRefused:
			m.forgetProbe(s.ID)
			return
		case beatRestarted:
			return // the new agent process may lack the wait: ask it again
		case beatMissed:
			holding, next = false, interval
		case beatAnswered:
			switch {
			case !holding:
				holding = true // it answers again: hold from now on
			case len(events) > 0:
				// More may follow at once (a fence, a pool's crashes):
				// a short pause, so that a flood is paced.
				next = interval / 10
			case time.Since(start) < wait/2:
				// An answer with nothing long before the wait's end:
				// the agent does not hold calls as it said; poll at
				// the rounds' pace rather than spin.
				next = interval
			}
		}
		if d := next - time.Since(start); d > 0 && !sleepCtx(ctx, d) {
			return
		}
	}
}

// sleepCtx waits d, or less when ctx ends first; it reports whether d
// passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
