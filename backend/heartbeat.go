package backend

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
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
	mu      sync.Mutex // guards the fields below
	cursor  map[string]int64
	misses  map[string]int
	pending map[string][]agentapi.Event // events a job's lock kept us from applying
	// instance is the agent process whose numbering the cursor follows
	// (get_events' instance, "" from agents that do not say).
	instance map[string]string
	// resync holds the servers to reconcile at their next answer, with
	// why: a server heard from for the first time (its agent may have
	// restarted since the manager last looked) or whose agent restarted.
	resync map[string]string
	beats  int
	// held are the servers whose events a held get_events follows
	// (holdEvents), which the rounds skip; probed says, per server, what
	// get_api_version said of the wait (heldProbe).
	held   map[string]bool
	probed map[string]heldProbe
	// inv is the inventory as the last round read it: the held calls'
	// view of their servers (heldView); atomic, not under mu.
	inv atomic.Pointer[inventory]
}

// ReconcileEvery is how many heartbeats pass between full reconciliations
// (list_vms on every server), which catch what events cannot: a start whose
// answer was lost, an event that came while the manager was down. Exported
// so that a measure of the watcher's cost can span a whole period of it.
const ReconcileEvery = 12

// Watch asks every server for its events (get_events) at each interval,
// until ctx ends: a server that misses heartbeatMisses beats in a row
// becomes Unreachable (and Running again when it answers), a guest that
// shut itself down or crashed is recorded as its server left it, and a
// server whose agent restarted is reconciled at once. Each becomes an
// Event. A server whose agent lists agentapi.ExtEventsWait is followed by
// a get_events the agent holds until an event comes (holdEvents), so
// that a crash is seen when it happens, not at the next beat; the rounds
// skip it while that runs.
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
		m.beat(ctx, interval, m.heldBy)
		m.holdPolls(ctx, interval, &wg)
		m.hb.mu.Lock()
		m.hb.beats++
		full := m.hb.beats%ReconcileEvery == 0
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
func (m *Manager) Beat(ctx context.Context, timeout time.Duration) { m.beat(ctx, timeout, nil) }

// beat is Beat, skipping the servers for which skip (when not nil) is
// true: those a held get_events follows.
func (m *Manager) beat(ctx context.Context, timeout time.Duration, skip func(id string) bool) {
	servers, err := m.beatServers(ctx)
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
		if skip != nil && skip(s.ID) {
			continue
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
	// The round began with the states before it: one read of what it
	// changed serves both what follows it.
	if servers, err = m.beatServers(ctx); err != nil {
		m.log.Warn("heartbeat: read servers after the round", "err", err)
	} else {
		m.moveLostMasters(ctx, servers)
		m.recordServerStates(servers)
	}
	m.haKick(ctx, timeout)
}

// beatServers returns every server, as the store has them now: those of
// the inventory (inventoryCache), which a round reads again only once a
// server, pool or repository changed, not 1,000 rows twice per beat. The
// list is shared: it must not be changed.
func (m *Manager) beatServers(ctx context.Context) ([]store.Server, error) {
	inv, err := m.inventory(ctx)
	if err != nil {
		return nil, err
	}
	return inv.serverList, nil
}

// recordServerStates gives the metrics how many servers are in each state
// once a round has changed what it had to. A master moved by
// moveLostMasters keeps its state: servers, read after the round, serve.
func (m *Manager) recordServerStates(servers []store.Server) {
	if m.metrics == nil {
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
	m.beatWith(ctx, s, c, timeout, 0)
}

// beatResult is how one server's beat went (beatWith).
type beatResult int

const (
	beatMissed    beatResult = iota // no answer: a missed beat
	beatAnswered                    // an answer, its events applied
	beatRestarted                   // an answer from a new agent process, which was reconciled
	beatRefused                     // the agent refused the wait: it no longer has ExtEventsWait; not a miss
)

// beatWith is one server's beat through its client c: get_events bounded
// by timeout, and with a wait when wait is not zero (ExtEventsWait: the
// agent answers at the first event or when wait ends); then what the
// answer says is applied, or the miss counted. It returns how it went and
// the events the answer carried.
func (m *Manager) beatWith(ctx context.Context, s store.Server, c *agentclient.Client, timeout, wait time.Duration) (beatResult, []agentapi.Event) {
	m.hb.mu.Lock()
	if m.hb.cursor == nil {
		m.hb.cursor, m.hb.misses, m.hb.pending = map[string]int64{}, map[string]int{}, map[string][]agentapi.Event{}
		m.hb.instance, m.hb.resync = map[string]string{}, map[string]string{}
	}
	cursor, known := m.hb.cursor[s.ID]
	instance := m.hb.instance[s.ID]
	m.hb.mu.Unlock()
	bctx, cancel := context.WithTimeout(ctx, timeout)
	var evs agentapi.Events
	var err error
	if wait > 0 {
		evs, err = c.GetEventsWait(bctx, cursor, wait)
	} else {
		evs, err = c.GetEvents(bctx, cursor)
	}
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return beatMissed, nil
		}
		if f, ok := agentapi.AsFault(err); wait > 0 && ok && f.Code == agentapi.FaultInvalidArgument {
			return beatRefused, nil
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
		return beatMissed, nil
	}
	// A new agent process numbers its events from 1 again: the cursor
	// went backwards, or the agent says it is another instance.
	restarted := known && (evs.Next < cursor || evs.Instance != instance)
	if restarted && cursor > 0 {
		// Every event of the new process, not those after a number of
		// the old one.
		bctx, cancel := context.WithTimeout(ctx, timeout)
		evs, err = c.GetEvents(bctx, 0)
		cancel()
		if err != nil {
			return beatMissed, nil // the cursor stays: the restart is seen again at the next beat
		}
	}
	m.hb.mu.Lock()
	m.hb.misses[s.ID] = 0
	m.hb.cursor[s.ID] = evs.Next
	m.hb.instance[s.ID] = evs.Instance
	switch {
	case restarted:
		m.hb.resync[s.ID] = "the agent of server " + s.Name + " restarted and does not have it"
	case !known:
		m.hb.resync[s.ID] = "found when the manager first heard from server " + s.Name
	}
	resync := m.hb.resync[s.ID]
	m.hb.mu.Unlock()
	if s.Status == ServerUnreachable {
		if err := m.setServerStatus(ctx, s.ID, ServerRunning); err == nil {
			m.log.Info("server reachable again", "server", s.Name)
			m.event(ctx, "Info", "ServerReachable", "Server", s.ID, s.Name, s.PoolID, "server "+s.Name+" answers again")
		}
	}
	if restarted {
		m.log.Warn("the agent of a server restarted; reconciling its VMs", "server", s.Name)
		m.event(ctx, "Warning", "AgentRestarted", "Server", s.ID, s.Name, s.PoolID,
			"the agent of server "+s.Name+" restarted (its events are numbered anew); its VMs are checked against its domains")
	}
	if resync != "" {
		// The events before the cursor are not there to say what
		// happened: ask for the domains.
		m.resyncServer(ctx, s, c, resync)
	}
	if !known {
		// The first answer sets the cursor; what came before it was
		// settled by the reconciliation just made.
		return beatAnswered, nil
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
	if restarted {
		return beatRestarted, evs.Events
	}
	return beatAnswered, evs.Events
}

// resyncServer reconciles server s at once, the events of VMs found gone
// saying why it was due: its agent restarted (a simulated host loses its
// domains with its agent, and the events of the old process are gone), or
// it answered for the first time. Until it succeeds it is tried again at
// each beat.
func (m *Manager) resyncServer(ctx context.Context, s store.Server, c *agentclient.Client, why string) {
	n, err := m.reconcileServerAfter(ctx, s, c, why)
	if err != nil {
		m.log.Warn("reconcile a server; trying again at the next heartbeat", "server", s.Name, "why", why, "err", err)
		return
	}
	m.hb.mu.Lock()
	delete(m.hb.resync, s.ID)
	m.hb.mu.Unlock()
	m.log.Info("server reconciled", "server", s.Name, "why", why, "vms_changed", n)
}

// agentEvent applies one event an agent reported, once the agent's
// list_vm says what became of the domain (an old event must not stop a VM
// started again since): a guest that shut itself down is recorded Stopped;
// a crash follows the domain's on_crash, which the agent applied: a VM
// whose server restarted it stays Running, one whose domain is gone or
// kept crashed for inspection is recorded Stopped. Each raises an event.
// It returns false when a job holds the VM or the agent cannot tell: the
// event is kept and tried at the next beat.
func (m *Manager) agentEvent(ctx context.Context, s store.Server, c *agentclient.Client, e agentapi.Event) bool {
	if e.Kind == agentapi.EventHAFenced {
		// The server fenced itself: the HA round at the end of this beat
		// restarts the HA VMs the fence destroyed.
		m.haAgentFenced(ctx, s, c, e.Detail)
		return true
	}
	if e.VMUUID == "" || e.Kind != agentapi.EventVMCrashed && e.Kind != agentapi.EventVMShutdown {
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
	if v, err = m.st.Read().VM(ctx, v.ID); err != nil || v.ServerID != s.ID {
		return true
	}
	state, known := m.domainState(ctx, c, v)
	if !known {
		return false
	}
	detail := ""
	if e.Detail != "" {
		detail = ": " + e.Detail
	}
	onCrash := "on_crash " + crashActionWire[v.OnCrash]
	if e.Kind == agentapi.EventVMShutdown {
		if domainLive(state) {
			return true // running again: a stale event
		}
		m.domainEnded(ctx, s, v, "Warning", "VmStoppedOutside", "Vm "+v.Name+" shut itself down on server "+s.Name+detail)
		return true
	}
	switch {
	case domainLive(state):
		if !restartsOnCrash(v.OnCrash) && e.State != agentapi.StateRunning {
			return true // started again since: a stale event
		}
		desc := "Vm " + v.Name + " crashed on server " + s.Name + " and its server restarted it (" + onCrash + ")" + detail
		m.log.Warn(desc)
		m.event(ctx, "Error", "VmCrashed", "Vm", v.ID, v.Name, v.PoolID, desc)
	case state == agentapi.StateCrashed:
		m.domainEnded(ctx, s, v, "Error", "VmCrashed", "Vm "+v.Name+" crashed on server "+s.Name+
			"; the crashed domain is kept on the server for inspection ("+onCrash+") until the VM starts again"+detail)
	default:
		m.domainEnded(ctx, s, v, "Error", "VmCrashed", "Vm "+v.Name+" crashed on server "+s.Name+
			" and its domain was destroyed ("+onCrash+")"+detail)
	}
	return true
}

// domainEnded records VM v, whose domain on server s no longer runs,
// Stopped, and raises an event of kind saying desc. The caller holds the
// VM's lock.
func (m *Manager) domainEnded(ctx context.Context, s store.Server, v store.VM, severity, kind, desc string) {
	if err := m.setVMState(ctx, v.ID, "", VMStopped); err != nil {
		m.log.Error("record vm stopped outside the manager", "vm", v.Name, "err", err)
		return
	}
	m.place.capacity.adjust(s.ID, v.MemoryMiB)
	m.log.Warn(desc)
	m.event(ctx, severity, kind, "Vm", v.ID, v.Name, v.PoolID, desc)
}
