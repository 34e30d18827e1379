package backend

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
	"xenmanager/store"
)

// haState is what the HA failover remembers between heartbeats: which
// servers it has judged fenced (for one event each, and so that what is left
// of their takeover is finished when they answer again), which VM restarts are
// under way (so that a slow one is not started twice by the next beat),
// the last reason each VM could not be restarted (one event per reason, not
// one per beat), and which fenced server each such VM waits on. A restart's
// truth is the store and the agents' leases: a manager that restarts with
// none of this decides again from them.
type haState struct {
	mu       sync.Mutex // guards running, fenced, inflight, failed, waiting and fences
	running  bool       // a round is under way (haKick)
	fenced   map[string]bool
	inflight map[string]bool
	failed   map[string]string
	// waiting maps an HA VM whose restart failed to the fenced server it
	// was recorded on: when that server answers again (and fenced itself),
	// the VM is restarted, even if a reconciliation of the server recorded
	// it Stopped meanwhile (its domain is gone: the fence destroyed it).
	waiting map[string]string
	// fences maps a server of an HA pool to its agent's fenced_count as
	// ha_status reported it before the last reconciliation of the server
	// listed its domains: a count that differs at the next one is a fence
	// since (haFencedSince).
	fences map[string]int64
	wg     sync.WaitGroup // the round under way, for Close
}

func newHAState() *haState {
	return &haState{fenced: map[string]bool{}, inflight: map[string]bool{}, failed: map[string]string{}, waiting: map[string]string{},
		fences: map[string]int64{}}
}

// haWaitingOn is the fenced server whose VM id waits for its HA restart,
// or "".
func (m *Manager) haWaitingOn(id string) string {
	m.ha.mu.Lock()
	defer m.ha.mu.Unlock()
	return m.ha.waiting[id]
}

// haStopWaiting drops VM id's pending HA restart: it was restarted, found
// running, or an operator recorded it stopped (stop Vm force=Yes).
func (m *Manager) haStopWaiting(id string) {
	m.ha.mu.Lock()
	delete(m.ha.waiting, id)
	m.ha.mu.Unlock()
}

// haKick starts an HA round unless one still runs: a round may wait for
// restarts, and the heartbeats must not wait for it.
func (m *Manager) haKick(ctx context.Context, timeout time.Duration) {
	m.ha.mu.Lock()
	if m.ha.running {
		m.ha.mu.Unlock()
		return
	}
	m.ha.running = true
	m.ha.mu.Unlock()
	m.ha.wg.Add(1)
	go func() {
		defer m.ha.wg.Done()
		defer func() {
			m.ha.mu.Lock()
			m.ha.running = false
			m.ha.mu.Unlock()
		}()
		m.haRound(ctx, timeout)
	}()
}

// haParallel bounds the HA restarts run at once.
const haParallel = 8

// haRound is the HA part of a heartbeat round: for every HA pool with an
// Unreachable server, it asks a live server of the pool for the silent
// servers' leases, and for each whose lease has been expired for longer
// than the pool's fence timeout plus its margin (so it has certainly
// stopped its domains itself, or is dead), it takes over that server's VMs:
// HA VMs restart elsewhere (placement: roles, anti-affinity, memory), VMs
// whose lease another server holds are recorded there, the rest Stopped.
func (m *Manager) haRound(ctx context.Context, timeout time.Duration) {
	m.haPools(ctx, func(p store.ServerPool, servers []store.Server) {
		var dead, back []store.Server
		for _, s := range servers {
			switch {
			case s.Status == ServerUnreachable:
				dead = append(dead, s)
			case s.Status == ServerRunning && m.haJudgedFenced(s.ID):
				back = append(back, s)
			default:
				m.haForget(s.ID)
			}
		}
		if len(dead) > 0 {
			m.haPool(ctx, p, servers, dead, timeout)
		}
		for _, s := range back {
			m.haReturned(ctx, p, s, timeout)
		}
	})
}

// haPools calls each with every pool that has high availability on and
// its servers; a store that fails ends the walk, logged.
func (m *Manager) haPools(ctx context.Context, each func(p store.ServerPool, servers []store.Server)) {
	pools, err := m.st.Read().ServerPools(ctx)
	if err != nil {
		m.log.Warn("HA: read pools", "err", err)
		return
	}
	for _, p := range pools {
		if !p.HA.Enabled {
			continue
		}
		servers, err := m.st.Read().ServersInPool(ctx, p.ID)
		if err != nil {
			m.log.Warn("HA: read servers", "err", err)
			return
		}
		each(p, servers)
	}
}

// haJudgedFenced reports whether the failover took server id over as
// fenced and has not forgotten it since.
func (m *Manager) haJudgedFenced(id string) bool {
	m.ha.mu.Lock()
	defer m.ha.mu.Unlock()
	return m.ha.fenced[id]
}

// haReturned finishes the takeover of server s, judged fenced while it was
// silent, now that it answers again, or judged fenced by a reconciliation
// that found its domains gone after a fence too short for it to fall
// silent (haServerFenced). It fenced itself on its return (a resumed agent
// before it answers anything, a restarted one before it serves), so a VM
// still recorded there that it does not run is one whose restart elsewhere
// failed while it was silent, or whose domain the short fence destroyed. Under libvirt that is the
// rule, not the exception: the guest of a frozen or killed agent runs on
// and holds the VM's disks, and every restart elsewhere is refused until
// the agent is back and has fenced. Those VMs are taken over now as for a
// dead server (HA ones restarted, on another server when one can take
// them), and so are the HA VMs waiting on s that a reconciliation of s
// recorded Stopped since (a restarted agent's server is reconciled at its
// first answer, before this round); once none is left the server is
// forgotten.
func (m *Manager) haReturned(ctx context.Context, p store.ServerPool, s store.Server, timeout time.Duration) {
	vms, err := m.st.Read().VMsOnServer(ctx, s.ID)
	if err != nil {
		m.log.Warn("HA: read VMs", "err", err)
		return
	}
	lost := m.haLostWhileWaiting(ctx, s)
	for _, v := range lost {
		m.haRestartOne(ctx, p, s, v)
	}
	if len(vms) == 0 {
		if len(lost) == 0 {
			m.haForget(s.ID)
		}
		return
	}
	c, err := m.clients.get(s)
	if err != nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	doms, err := c.ListVMs(cctx)
	cancel()
	if err != nil {
		m.log.Warn("HA: a fenced server that answers again cannot list its domains; its VMs wait", "server", s.Name, "err", err)
		return
	}
	runs := map[string]bool{}
	for _, d := range doms {
		runs[d.UUID] = true
	}
	var left []store.VM
	for _, v := range vms {
		if !runs[v.ID] {
			left = append(left, v)
		}
	}
	if len(left) == 0 {
		m.haForget(s.ID)
		return
	}
	m.haTakeOverVMs(ctx, p, &haPeer{server: s, client: c}, s, left)
}

// haLostWhileWaiting are the HA VMs waiting on fenced server s for their
// restart that are now recorded Stopped on no server: a reconciliation of s
// found their domains gone. The others waiting on s are dropped: recorded
// on a server (those recorded on s are taken over from the store, which
// marks them waiting again if their restart fails), gone, or no longer HA.
func (m *Manager) haLostWhileWaiting(ctx context.Context, s store.Server) []store.VM {
	m.ha.mu.Lock()
	var ids []string
	for id, srv := range m.ha.waiting {
		if srv == s.ID {
			ids = append(ids, id)
		}
	}
	m.ha.mu.Unlock()
	var lost []store.VM
	for _, id := range ids {
		v, err := m.st.Read().VM(ctx, id)
		switch {
		case err != nil || !v.HA || v.ServerID != "":
			m.haStopWaiting(id)
		case v.ServerID == "" && v.Status == VMStopped:
			lost = append(lost, v)
		}
	}
	return lost
}

// haRestartOne runs haRestart for v unless a restart of it is under way.
func (m *Manager) haRestartOne(ctx context.Context, p store.ServerPool, d store.Server, v store.VM) {
	m.ha.mu.Lock()
	busy := m.ha.inflight[v.ID]
	m.ha.inflight[v.ID] = true
	m.ha.mu.Unlock()
	if busy {
		return
	}
	defer func() {
		m.ha.mu.Lock()
		delete(m.ha.inflight, v.ID)
		m.ha.mu.Unlock()
	}()
	m.haRestart(ctx, p, d, v)
}

// haForget clears what the failover remembers of a server that answers,
// and the restarts that waited on it.
func (m *Manager) haForget(serverID string) {
	m.ha.mu.Lock()
	delete(m.ha.fenced, serverID)
	for id, srv := range m.ha.waiting {
		if srv == serverID {
			delete(m.ha.waiting, id)
		}
	}
	m.ha.mu.Unlock()
}

// haPeer is a live server of the pool that keeps leases, with its client.
type haPeer struct {
	server store.Server
	client *agentclient.Client
}

func (m *Manager) haPool(ctx context.Context, p store.ServerPool, servers, dead []store.Server, timeout time.Duration) {
	ids := make([]string, len(dead))
	for i, s := range dead {
		ids[i] = s.ID
	}
	var peer *haPeer
	var leases []agentapi.ServerLease
	for _, s := range servers {
		if s.Status != ServerRunning {
			continue
		}
		c, err := m.clients.get(s)
		if err != nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		leases, err = c.HAReadLeases(cctx, ids)
		cancel()
		if err != nil {
			m.log.Warn("HA: a live server could not read its peers' leases", "server", s.Name, "err", err)
			continue
		}
		peer = &haPeer{server: s, client: c}
		break
	}
	if peer == nil {
		m.log.Warn("HA: no live server of the pool can read the leases; nothing is restarted", "pool", p.Name)
		return
	}
	expiry := p.HA.Fence + p.HA.Margin
	for _, l := range leases {
		var d store.Server
		for _, s := range dead {
			if s.ID == l.ServerID {
				d = s
			}
		}
		if d.ID == "" || !l.Found || time.Duration(l.AgeMS)*time.Millisecond <= expiry {
			continue
		}
		m.haTakeOver(ctx, p, peer, d, time.Duration(l.AgeMS)*time.Millisecond)
	}
}

// haTakeOver takes over the VMs of server d, whose lease peer has read as
// expired for age.
func (m *Manager) haTakeOver(ctx context.Context, p store.ServerPool, peer *haPeer, d store.Server, age time.Duration) {
	vms, err := m.st.Read().VMsOnServer(ctx, d.ID)
	if err != nil {
		m.log.Warn("HA: read VMs", "err", err)
		return
	}
	m.ha.mu.Lock()
	first := !m.ha.fenced[d.ID]
	m.ha.fenced[d.ID] = true
	m.ha.mu.Unlock()
	if first {
		desc := fmt.Sprintf("Server %s has not renewed its HA lease for %s (fence timeout %s + margin %s): it has stopped its VMs itself or is down; %d VMs recorded there are taken over",
			d.Name, age.Round(time.Millisecond), p.HA.Fence, p.HA.Margin, len(vms))
		m.log.Warn(desc)
		m.event(ctx, "Warning", "ServerFenced", "Server", d.ID, d.Name, p.ID, desc)
	}
	m.haTakeOverVMs(ctx, p, peer, d, vms)
}

// haTakeOverVMs takes over vms, recorded on the fenced server d, asking
// peer, a live server of the pool, for their leases: a VM another server
// holds the live lease of is recorded there, an HA VM is restarted, any
// other is recorded Stopped.
func (m *Manager) haTakeOverVMs(ctx context.Context, p store.ServerPool, peer *haPeer, d store.Server, vms []store.VM) {
	if len(vms) == 0 {
		return
	}
	ids := make([]string, len(vms))
	for i, v := range vms {
		ids[i] = v.ID
	}
	holders := map[string]string{} // vm id -> server holding a live lease on it
	if leases, err := peer.client.HAReadVMLeases(ctx, ids); err == nil {
		for _, l := range leases {
			if l.Found && l.Live && l.ServerID != "" && l.ServerID != d.ID {
				holders[l.VMUUID] = l.ServerID
			}
		}
	} else {
		m.log.Warn("HA: could not read the VM leases; relying on start_vm's own check", "server", peer.server.Name, "err", err)
	}
	slots := make(chan struct{}, haParallel)
	var wg sync.WaitGroup
	for _, v := range vms {
		if holder := holders[v.ID]; holder != "" {
			m.haAdopt(ctx, p, d, v, holder)
			continue
		}
		if !v.HA {
			m.haStopped(ctx, p, d, v)
			continue
		}
		m.ha.mu.Lock()
		busy := m.ha.inflight[v.ID]
		m.ha.inflight[v.ID] = true
		m.ha.mu.Unlock()
		if busy {
			continue
		}
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			defer func() {
				m.ha.mu.Lock()
				delete(m.ha.inflight, v.ID)
				m.ha.mu.Unlock()
			}()
			m.haRestart(ctx, p, d, v)
		}()
	}
	wg.Wait()
}

// haOnDead runs op on VM v under its lock, if it is still recorded on the
// dead server d (a job, or an earlier round, may have moved it since) and
// this manager still leads (asLeader: a new leader decides from then on).
func (m *Manager) haOnDead(ctx context.Context, v store.VM, d store.Server, op func(cur store.VM)) {
	unlock, err := m.tryLock(ctx, v.ID)
	if err != nil {
		return // a job works on it; the next round sees what it did
	}
	defer unlock()
	cur, err := m.st.Read().VM(ctx, v.ID)
	if err != nil || cur.ServerID != d.ID {
		return
	}
	if err := asLeader(ctx, m.st.Read()); err != nil {
		return
	}
	op(cur)
}

// haAdopt records VM v on the server that holds its live lease: it runs
// there (a restart whose answer was lost, a manager killed during
// failover).
func (m *Manager) haAdopt(ctx context.Context, p store.ServerPool, d store.Server, v store.VM, holderID string) {
	holder, err := m.st.Read().Server(ctx, holderID)
	if err != nil || holder.PoolID != p.ID {
		m.log.Error("HA: a VM's lease names a server not in its pool; left as it is", "vm", v.Name, "holder", holderID)
		return
	}
	m.haOnDead(ctx, v, d, func(cur store.VM) {
		if err := m.setVMState(ctx, cur.ID, holder.ID, VMRunning); err != nil {
			m.log.Error("HA: record a VM where its lease is", "vm", cur.Name, "err", err)
			return
		}
		m.place.capacity.forget(holder.ID)
		desc := fmt.Sprintf("Vm %s runs on Server %s, which holds its lease; it was recorded on Server %s, which is fenced", cur.Name, holder.Name, d.Name)
		m.log.Warn(desc)
		m.event(ctx, "Warning", "VmFoundByLease", "Vm", cur.ID, cur.Name, p.ID, desc)
	})
}

// haStopped records a VM without high availability on a fenced server
// Stopped: the server stopped it when it fenced itself.
func (m *Manager) haStopped(ctx context.Context, p store.ServerPool, d store.Server, v store.VM) {
	m.haOnDead(ctx, v, d, func(cur store.VM) {
		if err := m.setVMState(ctx, cur.ID, "", VMStopped); err != nil {
			m.log.Error("HA: record a fenced server's VM stopped", "vm", cur.Name, "err", err)
			return
		}
		desc := fmt.Sprintf("Vm %s is stopped: Server %s fenced itself (its HA lease expired) and the VM does not have high availability", cur.Name, d.Name)
		m.log.Warn(desc)
		m.event(ctx, "Warning", "VmStoppedByFence", "Vm", cur.ID, cur.Name, p.ID, desc)
	})
}

// haRestart starts HA VM v, recorded on the fenced server d, elsewhere: a
// job of the system's, which holds the VM's lock, so that an operator's
// command on the VM waits for it. Placement leaves d out (it matters once d
// answers again: haReturned) unless no other server can take the VM. A failure (no server fits, another
// server's live lease) leaves the VM where it is recorded, to be tried at
// the next round, and is reported once per reason.
func (m *Manager) haRestart(ctx context.Context, p store.ServerPool, d store.Server, v store.VM) {
	summary := fmt.Sprintf("restart Vm %s (high availability: Server %s is fenced)", v.Name, d.Name)
	started := false // the job started the VM (not: found it moved meanwhile)
	_, err := m.job(WithActor(ctx, system), system, p.ID, "restart Vm", summary, []string{v.ID}, func(jctx context.Context, j *jobRun) (any, error) {
		cur, err := m.st.Read().VM(jctx, v.ID)
		if err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "read Vm", Cause: err}
		}
		lost := cur.ServerID == "" && cur.Status == VMStopped && m.haWaitingOn(cur.ID) == d.ID
		if cur.ServerID != d.ID && !lost {
			return nil, nil // moved meanwhile
		}
		cur.LastServerID = "" // CURRENT_SERVER cannot mean the dead server here
		if err := asLeader(jctx, m.st.Read()); err != nil {
			return nil, err // another manager leads now, and decides
		}

		err = m.placeAndRunAvoiding(jctx, j, cur, d.ID, "start", func(c *agentclient.Client) error { return c.StartVM(jctx, cur.RepoID, cur.ID) })
		started = err == nil
		return nil, err
	})
	if errors.Is(err, store.ErrLeaseLost) {
		m.log.Warn("HA: this manager stopped leading before it restarted a VM; the leader decides", "vm", v.Name)
		return
	}
	m.ha.mu.Lock()
	last := m.ha.failed[v.ID]
	if err == nil {
		delete(m.ha.failed, v.ID)
		delete(m.ha.waiting, v.ID)
	} else {
		m.ha.failed[v.ID] = err.Error()
		m.ha.waiting[v.ID] = d.ID
	}
	m.ha.mu.Unlock()
	if err != nil {
		if err.Error() != last {
			desc := fmt.Sprintf("Vm %s could not be restarted after Server %s was fenced: %v; it is tried again at each heartbeat", v.Name, d.Name, err)
			m.log.Error(desc)
			m.event(ctx, "Error", "VmHaRestartFailed", "Vm", v.ID, v.Name, p.ID, desc)
		}
		return
	}
	now, err := m.st.Read().VM(ctx, v.ID)
	if !started || err != nil || now.ServerID == "" {
		return
	}
	to, _ := m.st.Read().Server(ctx, now.ServerID)
	desc := fmt.Sprintf("Vm %s restarted on Server %s: Server %s did not renew its HA lease for the fence timeout and fenced itself, or is down", v.Name, to.Name, d.Name)
	if now.ServerID == d.ID {
		desc += "; it has fenced itself and answers again, and no other server could take the VM"
	}
	m.log.Warn(desc)
	m.event(ctx, "Warning", "VmHaRestarted", "Vm", v.ID, v.Name, p.ID, desc)
}
