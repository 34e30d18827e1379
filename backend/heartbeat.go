package backend

import (
	"context"
	"strconv"
	"sync"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
	"xenmanager/store"
)

// ServerUnreachable is the status of a server that missed its heartbeats.
const ServerUnreachable = "Unreachable"

// Heartbeat defaults.
const (
	DefaultHeartbeatInterval = 5 * time.Second
	// heartbeatMisses is how many heartbeats in a row a server may miss
	// before it is Unreachable.
	heartbeatMisses = 3
	// heartbeatParallel bounds the servers asked at once.
	heartbeatParallel = 32
)

// heartbeats is what the watcher remembers per server between beats.
type heartbeats struct {
	mu      sync.Mutex // guards cursor, misses, pending and beats
	cursor  map[string]int64
	misses  map[string]int
	pending map[string][]agentapi.Event // events a job's lock kept us from applying
	beats   int
}

// reconcileEvery is how many heartbeats pass between full reconciliations
// (list_vms on every server), which catch what events cannot: a start whose
// answer was lost, an event that came while the manager was down.
const reconcileEvery = 12

// Watch asks every server for its events (get_events) at each interval,
// until ctx ends: a server that misses heartbeatMisses beats in a row
// becomes Unreachable (and Running again when it answers), and a guest that
// shut itself down or crashed is recorded Stopped. Each becomes an Event.
func (m *Manager) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultHeartbeatInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	// The periodic reconcile runs beside the beats, one at a time: a server
	// that hangs without having missed enough beats yet would hold it for a
	// whole agent timeout, and the beats (and HA) must go on meanwhile.
	reconciling := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		m.Beat(ctx, interval)
		m.hb.mu.Lock()
		m.hb.beats++
		full := m.hb.beats%reconcileEvery == 0
		m.hb.mu.Unlock()
		if full {
			select {
			case reconciling <- struct{}{}:
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() { <-reconciling }()
					if _, err := m.Reconcile(ctx); err != nil {
						m.log.Warn("periodic reconcile", "err", err)
					}
					m.haPush(ctx)
				}()
			default: // the last one still runs
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Beat runs one round of heartbeats, each call bounded by timeout; then a
// pool whose master does not answer gets a new one (moveLostMasters).
func (m *Manager) Beat(ctx context.Context, timeout time.Duration) {
	servers, err := m.st.Read().Servers(ctx)
	if err != nil {
		m.log.Warn("heartbeat: read servers", "err", err)
		return
	}
	slots := make(chan struct{}, heartbeatParallel)
	var wg sync.WaitGroup
	for _, s := range servers {
		if s.Status != ServerRunning && s.Status != ServerUnreachable {
			continue // stopped or restarting: its job watches it
		}
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			m.beatOne(ctx, s, timeout)
		}()
	}
	wg.Wait()
	m.moveLostMasters(ctx)
	m.recordServerStates(ctx)
	m.haKick(ctx, timeout)
}

// recordServerStates gives the metrics how many servers are in each state
// once a round has changed what it had to: a read of its own, since the
// round began with the states before it.
func (m *Manager) recordServerStates(ctx context.Context) {
	if m.metrics == nil {
		return
	}
	servers, err := m.st.Read().Servers(ctx)
	if err != nil {
		m.log.Warn("heartbeat: read servers for the metrics", "err", err)
		return
	}
	counts := map[string]int{}
	for _, s := range servers {
		counts[s.Status]++
	}
	m.metrics.ServerStates(counts, time.Now())
}

func (m *Manager) beatOne(ctx context.Context, s store.Server, timeout time.Duration) {
	c, err := m.clients.get(s)
	if err != nil {
		return
	}
	m.hb.mu.Lock()
	if m.hb.cursor == nil {
		m.hb.cursor, m.hb.misses, m.hb.pending = map[string]int64{}, map[string]int{}, map[string][]agentapi.Event{}
	}
	cursor, known := m.hb.cursor[s.ID]
	m.hb.mu.Unlock()
	bctx, cancel := context.WithTimeout(ctx, timeout)
	evs, err := c.GetEvents(bctx, cursor)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		m.hb.mu.Lock()
		m.hb.misses[s.ID]++
		missed := m.hb.misses[s.ID]
		m.hb.mu.Unlock()
		if missed == heartbeatMisses && s.Status == ServerRunning {
			if serr := m.setServerStatus(ctx, s.ID, ServerUnreachable); serr == nil {
				m.log.Warn("server unreachable", "server", s.Name, "err", err)
				m.event(ctx, "Warning", "ServerUnreachable", "Server", s.ID, s.Name, s.PoolID,
					"server "+s.Name+" missed "+strconv.Itoa(heartbeatMisses)+" heartbeats in a row")
			}
		}
		return
	}
	m.hb.mu.Lock()
	m.hb.misses[s.ID] = 0
	m.hb.cursor[s.ID] = evs.Next
	m.hb.mu.Unlock()
	if s.Status == ServerUnreachable {
		if err := m.setServerStatus(ctx, s.ID, ServerRunning); err == nil {
			m.log.Info("server reachable again", "server", s.Name)
			m.event(ctx, "Info", "ServerReachable", "Server", s.ID, s.Name, s.PoolID, "server "+s.Name+" answers again")
		}
	}
	if !known {
		// The first answer sets the cursor; what happened before this
		// manager watched was settled by Reconcile at start-up.
		return
	}
	m.hb.mu.Lock()
	events := append(m.hb.pending[s.ID], evs.Events...)
	delete(m.hb.pending, s.ID)
	m.hb.mu.Unlock()
	for _, e := range events {
		if !m.agentEvent(ctx, s, c, e) {
			m.hb.mu.Lock()
			m.hb.pending[s.ID] = append(m.hb.pending[s.ID], e)
			m.hb.mu.Unlock()
		}
	}
}

// agentEvent applies one event an agent reported: a domain that stopped or
// crashed on its own is recorded Stopped, once the agent confirms it is gone
// (an old event must not stop a VM started again since). It returns false
// when a job holds the VM: the event is kept and tried at the next beat.
func (m *Manager) agentEvent(ctx context.Context, s store.Server, c *agentclient.Client, e agentapi.Event) bool {
	if e.VMUUID == "" {
		return true
	}
	severity, kind, what := "Warning", "VmStoppedOutside", "shut itself down"
	switch e.Kind {
	case agentapi.EventVMCrashed:
		severity, kind, what = "Error", "VmCrashed", "crashed"
	case agentapi.EventVMShutdown:
	default:
		return true
	}
	v, err := m.st.Read().VM(ctx, e.VMUUID)
	if err != nil || v.ServerID != s.ID {
		return true
	}
	lctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	unlock, err := m.locks.lock(lctx, v.ID)
	cancel()
	if err != nil {
		return false
	}
	defer unlock()
	if cur, err := m.st.Read().VM(ctx, v.ID); err != nil || cur.ServerID != s.ID {
		return true
	}
	if running, known := m.domainRunning(ctx, c, v); !known || running {
		return known // running again: a stale event; unknown: try later
	}
	if err := m.setVMState(ctx, v.ID, "", VMStopped); err != nil {
		m.log.Error("record vm stopped outside the manager", "vm", v.Name, "err", err)
		return true
	}
	m.place.capacity.adjust(s.ID, v.MemoryMiB)
	desc := "Vm " + v.Name + " " + what + " on server " + s.Name
	if e.Detail != "" {
		desc += ": " + e.Detail
	}
	m.log.Warn(desc)
	m.event(ctx, severity, kind, "Vm", v.ID, v.Name, v.PoolID, desc)
	return true
}
