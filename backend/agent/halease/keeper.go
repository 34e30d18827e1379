// Package halease keeps the high-availability leases of an agent whose
// server is in an HA-enabled pool (docs/agent-protocol.md, "High
// availability: leases and fencing"): a server lease that says the server
// is alive and reaches the pool's HA repository, and a lease per domain it
// runs that says which server may run the VM. A Keeper renews them, fences
// the server (destroys every domain) when its lease could not be renewed
// for the fence timeout, takes a VM's lease before a start, and releases
// it when the domain ends. It talks to the hypervisor only through Host,
// so that it works for every driver.
package halease

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"xenmanager/backend/agentapi"
)

// Config is where and how a server keeps its leases (ha_configure).
type Config struct {
	PoolUUID string
	RepoUUID string
	ServerID string // the name of this server's lease, and the holder its VM leases name
	Root     string // the HA repository's root directory as this server sees it
	Params   agentapi.HAParams
}

// Domain is a domain of this server as the keeper sees it.
type Domain struct {
	UUID, RepoID, VMID, State string
}

// Host is the server whose leases a Keeper keeps: its domains, as its
// hypervisor driver runs them, and its event log. Its methods must not
// call back into the Keeper.
type Host interface {
	// Domains lists every domain of this server, in any state; it fails
	// when the hypervisor cannot tell.
	Domains() ([]Domain, error)
	// Domain is the VM's domain here; ok is false when there is none.
	Domain(repoID, vmID string) (d Domain, ok bool, err error)
	// Destroy ends the VM's domain at once (a forced stop).
	Destroy(repoID, vmID string) error
	// CancelIncoming releases the VM's incoming migration, if any.
	CancelIncoming(repoID, vmID string)
	// IsHA reports whether the VM's vm.cfg marks it for high
	// availability (OVM_high_availability); it reads the repository.
	IsHA(repoID, vmID string) bool
	// Emit records an event for get_events.
	Emit(e agentapi.Event)
}

// holdsLease reports whether a domain in state needs its VM's lease:
// running, blocked, paused, or suspended here (which a restore_vm would
// run again).
func holdsLease(state string) bool {
	switch state {
	case agentapi.StateRunning, agentapi.StateBlocked, agentapi.StatePaused, agentapi.StateSuspended:
		return true
	}
	return false
}

// Bounds of fencing.
const (
	// fenceRetryBound is how long a fence keeps trying to destroy a domain
	// that a long operation holds (a save, a migration being cut).
	fenceRetryBound = 30 * time.Second
	fenceRetry      = 50 * time.Millisecond
	// maxLeaseIDs bounds the ids of one ha_read_leases or
	// ha_read_vm_leases call.
	maxLeaseIDs = 4096
)

// Keeper keeps one server's leases. The zero value is not usable; see New.
// Every method is safe for concurrent use; the call-facing ones report
// failures as *agentapi.Fault.
//
// Lock order: cfgMu, then fenceMu, then mu. mu is never held during file
// or hypervisor I/O, so that a repository that hangs cannot stop a fence:
// the watchdog and the call gate fence without touching the repository.
type Keeper struct {
	hostname string
	host     Host
	log      *slog.Logger
	fault    func() bool
	now      func() time.Time
	// manual (tests) runs no renewal loop and no watchdog: the test calls
	// tick and Gate itself.
	manual bool

	// cfgMu serialises Configure, Resume, Disable and Close, and guards
	// the renewal loop's channels, which they stop and start.
	cfgMu    sync.Mutex
	loopStop chan struct{}
	loopDone chan struct{}

	// fenceMu serialises fences, so that a call that finds the lease
	// lapsed waits for a fence under way before it goes on.
	fenceMu sync.Mutex

	// leaseMu serialises this process's look-then-write on the VM leases
	// it holds (a renewal's write, a release), so that a release (a start
	// that failed, a stop) never lands between a renewal's look at the
	// lease or the domain and its write, which would take the lease back
	// for a VM that runs nowhere. The VM's lock file orders servers; this
	// orders the goroutines of one. Taken after the lock file, never
	// before; k.mu may be taken under it.
	leaseMu sync.Mutex

	// mu guards the fields below.
	mu      sync.Mutex
	cfg     *Config // nil: HA is not configured
	store   *Store
	lastOK  time.Time // the start of the last fully successful renewal
	counter int64     // of the server lease's last write
	fenced  bool      // from a fence until the next successful renewal
	// fenceGen counts fences begun, so that a start that overlapped one
	// can tell.
	fenceGen    int64
	fencedCount int64
	lastFence   time.Time
	lastErr     string
	held        map[string]vmRef              // by VM uuid: the VM leases this server holds
	ha          map[string]bool               // by VM uuid: vm.cfg's HA flag as last read, for a fence's order
	starting    map[string]int                // by VM uuid: starts between taking the lease and the domain running
	incoming    map[string]vmRef              // by VM uuid: migrations to this server set up
	outgoing    map[string]context.CancelFunc // by VM uuid: migrations from this server in flight
	handover    bool                          // an incoming domain waits for its source to release the lease
	scan        bool                          // the next renewal releases our leases of VMs not running here
	warned      map[string]bool               // domains whose uuid names no lease file, warned about once
	watchdog    *time.Timer                   // fences at lastOK + fence timeout
	listing     *domainList                   // the host's listing under way, if any (listDomains)
}

// domainList is one call of Host.Domains, which renewals wait for.
type domainList struct {
	done chan struct{} // closed when doms and err are set
	doms []Domain
	err  error
}

type vmRef struct{ repoID, vmID string }

// Options configure a Keeper.
type Options struct {
	Hostname string // the server's name, written in its leases
	Host     Host
	Logger   *slog.Logger
	// Fault, when set, fails every lease access while it returns true (the
	// simulated host's sim_set ha_storage_fail).
	Fault func() bool
}

// New makes a keeper with HA not configured.
func New(o Options) *Keeper {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Keeper{hostname: o.Hostname, host: o.Host, log: o.Logger, fault: o.Fault, now: time.Now,
		held: map[string]vmRef{}, ha: map[string]bool{}, starting: map[string]int{},
		incoming: map[string]vmRef{}, outgoing: map[string]context.CancelFunc{}, warned: map[string]bool{}}
}

// Enabled reports whether HA is configured.
func (k *Keeper) Enabled() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cfg != nil
}

// Configured is the configuration, and false when HA is not configured.
func (k *Keeper) Configured() (Config, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cfg == nil {
		return Config{}, false
	}
	return *k.cfg, true
}

// Configure starts keeping leases as cfg says, or changes how (a new call
// replaces the settings). It writes the server lease once before it
// returns (a failure is InvalidState and leaves the previous settings),
// then the leases of the domains running here. The caller has checked
// cfg's ids and params.
func (k *Keeper) Configure(cfg Config) error {
	k.cfgMu.Lock()
	defer k.cfgMu.Unlock()
	k.stopLoopLocked()
	k.mu.Lock()
	prev, prevStore, counter := k.cfg, k.store, k.counter
	k.mu.Unlock()
	store := NewStore(cfg.Root, cfg.PoolUUID, k.fault)
	sameLoc := prev != nil && prev.Root == cfg.Root && prev.PoolUUID == cfg.PoolUUID && prev.ServerID == cfg.ServerID
	if !sameLoc {
		counter = 0
		if l, found, err := store.ReadServer(cfg.ServerID); err == nil && found {
			counter = l.Counter // go on counting where an earlier life stopped
		}
	}
	start := k.now()
	if err := store.WriteServer(Lease{ServerID: cfg.ServerID, Hostname: k.hostname, RenewedUnixMS: start.UnixMilli(), Counter: counter + 1}); err != nil {
		if prev != nil {
			k.startLoopLocked(prev.Params.RenewInterval())
		}
		return agentapi.Errorf(agentapi.FaultInvalidState, "server %s cannot write its lease in repository %s: %v", k.hostname, cfg.RepoUUID, err)
	}
	if prev != nil && !sameLoc {
		k.abandon(*prev, prevStore)
	}
	k.mu.Lock()
	k.cfg, k.store, k.counter = &cfg, store, counter+1
	k.lastOK, k.lastErr = start, ""
	k.fenced = false
	if !sameLoc {
		k.held, k.scan = map[string]vmRef{}, true
	}
	k.armWatchdogLocked()
	k.mu.Unlock()
	k.log.Info("HA leases configured", "pool", cfg.PoolUUID, "repository", cfg.RepoUUID, "server_id", cfg.ServerID,
		"renew_interval_ms", cfg.Params.RenewIntervalMS, "fence_timeout_ms", cfg.Params.FenceTimeoutMS)
	// The leases of the domains running here now, so that they are
	// covered when the call answers.
	if err := k.renewVMs(cfg, store); err != nil {
		k.failed(err)
	}
	k.startLoopLocked(cfg.Params.RenewInterval())
	return nil
}

// Resume goes on keeping leases as a configuration persisted by an earlier
// agent process says. When this server's lease lapsed while the agent was
// down (or cannot be read within the fence timeout), it fences before it
// returns, that is before the agent serves anything: a peer may be running
// its VMs by now. Domains survive an agent restart under a real
// hypervisor; the simulated ones died with the process.
func (k *Keeper) Resume(cfg Config) {
	k.cfgMu.Lock()
	defer k.cfgMu.Unlock()
	store := NewStore(cfg.Root, cfg.PoolUUID, k.fault)
	timeout := cfg.Params.FenceTimeout()
	l, found, err := readServerWithin(store, cfg.ServerID, timeout)
	now := k.now()
	k.mu.Lock()
	k.cfg, k.store, k.scan = &cfg, store, true
	switch {
	case err == nil && found && l.ServerID == cfg.ServerID:
		k.counter = l.Counter
		k.lastOK = now.Add(-max(l.Age(now), 0))
	default:
		k.lastOK = now.Add(-timeout) // unknown: lapsed
		if err != nil {
			k.lastErr = err.Error()
		}
	}
	age := now.Sub(k.lastOK)
	k.mu.Unlock()
	k.log.Info("HA leases resumed from the saved configuration", "pool", cfg.PoolUUID, "repository", cfg.RepoUUID,
		"server_id", cfg.ServerID, "lease_age_ms", age.Milliseconds())
	k.fenceIfLapsed()
	k.mu.Lock()
	k.armWatchdogLocked()
	k.mu.Unlock()
	k.startLoopLocked(0)
}

// readServerWithin reads a server lease, giving up after timeout: a
// repository that hangs must not hold the agent's start for ever.
func readServerWithin(s *Store, serverID string, timeout time.Duration) (Lease, bool, error) {
	type result struct {
		l     Lease
		found bool
		err   error
	}
	ch := make(chan result, 1)
	go func() {
		l, found, err := s.ReadServer(serverID)
		ch <- result{l, found, err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.l, r.found, r.err
	case <-t.C:
		return Lease{}, false, &Error{Op: "read", Rel: s.ServerRel(serverID), Err: errors.New("no answer within the fence timeout")}
	}
}

// Disable stops keeping leases: it removes this server's lease and
// releases the VM leases it holds. The domains keep running, no longer
// covered. Failures to reach the repository are logged: the leases then
// lapse by themselves.
func (k *Keeper) Disable() {
	k.cfgMu.Lock()
	defer k.cfgMu.Unlock()
	k.stopLoopLocked()
	k.mu.Lock()
	cfg, store := k.cfg, k.store
	k.cfg, k.store, k.fenced, k.lastErr = nil, nil, false, ""
	k.stopWatchdogLocked()
	k.mu.Unlock()
	if cfg == nil {
		return
	}
	k.abandon(*cfg, store)
	k.log.Info("HA leases disabled", "pool", cfg.PoolUUID, "repository", cfg.RepoUUID)
}

// abandon releases every VM lease this server holds in store and removes
// its server lease, as far as the repository lets it.
func (k *Keeper) abandon(cfg Config, store *Store) {
	k.mu.Lock()
	k.held, k.incoming = map[string]vmRef{}, map[string]vmRef{}
	k.mu.Unlock()
	uuids, err := store.VMLeases()
	if err != nil {
		k.log.Warn("HA: cannot list the VM leases to release them; they lapse by themselves", "err", err)
	}
	for _, uuid := range uuids {
		if checkName(uuid) != nil {
			continue
		}
		if err := k.releaseIfOurs(cfg, store, uuid); err != nil {
			k.log.Warn("HA: cannot release a VM lease; it lapses by itself", "vm", uuid, "err", err)
		}
	}
	if err := store.RemoveServer(cfg.ServerID); err != nil {
		k.log.Warn("HA: cannot remove the server lease; it lapses by itself", "err", err)
	}
}

// releaseIfOurs writes the VM's lease released when this server holds it.
func (k *Keeper) releaseIfOurs(cfg Config, store *Store, uuid string) error {
	unlock, err := store.LockVM(uuid)
	if err != nil {
		return err
	}
	defer unlock()
	l, found, err := store.ReadVM(uuid)
	if err != nil || !found || l.ServerID != cfg.ServerID {
		return err
	}
	return store.WriteVM(uuid, Lease{Hostname: k.hostname, RenewedUnixMS: k.now().UnixMilli(), Counter: l.Counter + 1})
}

// Close stops the renewal loop and the watchdog, leaving the leases as
// they are (the agent is shutting down; its leases lapse unless it comes
// back in time).
func (k *Keeper) Close() {
	k.cfgMu.Lock()
	defer k.cfgMu.Unlock()
	k.stopLoopLocked()
	k.mu.Lock()
	k.stopWatchdogLocked()
	k.mu.Unlock()
}

// startLoopLocked starts the renewal loop, its first renewal after first.
// k.cfgMu must be held.
func (k *Keeper) startLoopLocked(first time.Duration) {
	if k.manual || k.loopStop != nil {
		return
	}
	k.loopStop, k.loopDone = make(chan struct{}), make(chan struct{})
	go k.run(k.loopStop, k.loopDone, first)
}

// stopLoopLocked stops the renewal loop and waits for a renewal under
// way. k.cfgMu must be held.
func (k *Keeper) stopLoopLocked() {
	if k.loopStop == nil {
		return
	}
	close(k.loopStop)
	<-k.loopDone
	k.loopStop, k.loopDone = nil, nil
}

func (k *Keeper) run(stop <-chan struct{}, done chan<- struct{}, first time.Duration) {
	defer close(done)
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		k.tick()
		t.Reset(k.nextWait())
	}
}

// nextWait is the time to the next renewal: the renew interval, or a
// quarter of it while an incoming domain waits for its source to release
// the VM's lease, so that the destination takes it soon after.
func (k *Keeper) nextWait() time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cfg == nil {
		return time.Hour // stopped before it fires
	}
	d := k.cfg.Params.RenewInterval()
	if k.handover {
		d = max(d/4, 25*time.Millisecond)
	}
	return d
}

// armWatchdogLocked sets the watchdog to fence at lastOK + fence timeout.
// k.mu must be held.
func (k *Keeper) armWatchdogLocked() {
	if k.manual || k.cfg == nil {
		return
	}
	d := k.lastOK.Add(k.cfg.Params.FenceTimeout()).Sub(k.now())
	if k.watchdog == nil {
		k.watchdog = time.AfterFunc(d, k.fenceIfLapsed)
		return
	}
	k.watchdog.Reset(d)
}

func (k *Keeper) stopWatchdogLocked() {
	if k.watchdog != nil {
		k.watchdog.Stop()
	}
}

// tick is one renewal: fence first if the lease lapsed (an agent resumed
// after SIGSTOP must not renew before it fences), then write the server
// lease, then the VM leases. Only a renewal that wrote them all counts.
func (k *Keeper) tick() {
	k.fenceIfLapsed()
	k.mu.Lock()
	cfg, store, counter := k.cfg, k.store, k.counter+1
	k.handover = false
	k.mu.Unlock()
	if cfg == nil {
		return
	}
	start := k.now()
	if err := store.WriteServer(Lease{ServerID: cfg.ServerID, Hostname: k.hostname, RenewedUnixMS: start.UnixMilli(), Counter: counter}); err != nil {
		k.failed(err)
		return
	}
	k.mu.Lock()
	k.counter = counter
	k.mu.Unlock()
	if err := k.renewVMs(*cfg, store); err != nil {
		k.failed(err)
		return
	}
	k.renewed(*cfg, start)
}

// renewed records a fully successful renewal that began at start; one
// that took longer than the fence timeout does not count.
func (k *Keeper) renewed(cfg Config, start time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cfg == nil || *k.cfg != cfg {
		return // reconfigured meanwhile
	}
	if k.now().Sub(start) >= cfg.Params.FenceTimeout() {
		k.lastErr = "a renewal took longer than the fence timeout"
		return
	}
	if start.After(k.lastOK) {
		k.lastOK = start
	}
	if k.fenced {
		k.fenced = false
		k.log.Warn("HA lease renewed again after a fence: this server may start VMs again")
	}
	k.lastErr = ""
	k.armWatchdogLocked()
}

// failed records why a renewal failed; it logs only a new reason, not the
// same one at every renewal.
func (k *Keeper) failed(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	msg := err.Error()
	if msg != k.lastErr {
		k.log.Warn("HA lease renewal failed", "err", msg)
	}
	k.lastErr = msg
}

// renewVMs renews the lease of every domain this server runs, destroys a
// domain whose lease another server holds live, and releases the leases of
// VMs that no longer run here. It returns the first failure; the other
// VMs are still done.
func (k *Keeper) renewVMs(cfg Config, store *Store) error {
	doms, err := k.listDomains(cfg.Params.RenewInterval())
	if err != nil {
		// The hypervisor cannot tell what runs: keep what is held, so
		// that no domain that may still run loses its lease.
		k.log.Warn("HA: the hypervisor cannot list its domains; renewing the VM leases held", "err", err)
		return k.renewHeld(cfg, store)
	}
	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	running := map[string]bool{}
	for _, d := range doms {
		if !holdsLease(d.State) {
			continue
		}
		if checkName(d.UUID) != nil {
			k.warnOnce(d)
			continue
		}
		running[d.UUID] = true
		isHA := k.host.IsHA(d.RepoID, d.VMID)
		k.mu.Lock()
		k.ha[d.UUID] = isHA
		k.mu.Unlock()
		keep(k.renewVM(cfg, store, d))
	}
	k.mu.Lock()
	var gone []string
	for uuid := range k.held {
		if !running[uuid] && k.starting[uuid] == 0 && k.outgoing[uuid] == nil {
			gone = append(gone, uuid)
		}
	}
	refs := make(map[string]vmRef, len(gone))
	for _, uuid := range gone {
		refs[uuid] = k.held[uuid]
	}
	for uuid := range k.ha {
		if !running[uuid] {
			delete(k.ha, uuid)
		}
	}
	scan := k.scan
	k.mu.Unlock()
	for _, uuid := range gone {
		keep(k.releaseIfGone(cfg, store, uuid, refs[uuid]))
	}
	if scan {
		err := k.releaseStale(cfg, store, running)
		keep(err)
		if err == nil {
			k.mu.Lock()
			k.scan = false
			k.mu.Unlock()
		}
	}
	return firstErr
}

// listDomains is the host's Domains, waited for at most within (the renew
// interval): a hypervisor busy with a domain's job can take seconds to
// list (libvirtd holds a domain QEMU is starting, and a refused start's
// cleanup, that long on a loaded host), and a renewal held that long
// would lapse the lease and fence a healthy server. A listing that does
// not come in time counts as one the hypervisor cannot give, so the
// renewal renews the leases held (which errs on the side of holding). At
// most one listing runs at once: a renewal that finds one under way waits
// for it rather than starting another.
func (k *Keeper) listDomains(within time.Duration) ([]Domain, error) {
	k.mu.Lock()
	l := k.listing
	if l == nil {
		l = &domainList{done: make(chan struct{})}
		k.listing = l
		go func() {
			doms, err := k.host.Domains()
			k.mu.Lock()
			l.doms, l.err = doms, err
			if k.listing == l {
				k.listing = nil
			}
			k.mu.Unlock()
			close(l.done)
		}()
	}
	k.mu.Unlock()
	t := time.NewTimer(within)
	defer t.Stop()
	select {
	case <-l.done:
		return l.doms, l.err
	case <-t.C:
		return nil, fmt.Errorf("the hypervisor did not list its domains within %v", within)
	}
}

func (k *Keeper) warnOnce(d Domain) {
	k.mu.Lock()
	seen := k.warned[d.UUID]
	k.warned[d.UUID] = true
	k.mu.Unlock()
	if !seen {
		k.log.Warn("HA: a domain's uuid cannot name a lease file; it runs without a lease", "uuid", d.UUID, "vm", d.VMID)
	}
}

// renewVM renews the lease of a domain running here. When this server
// holds it, it writes it again without the VM's lock: a server frozen
// (SIGSTOP) while holding the lock would keep every other server from the
// VM until it resumed, and a renewal races no taker, since a taker only
// takes a lease that is not live, which this server's is until its own
// lease lapsed and it fenced. The renewal is stamped with the time before
// the read, so that a write delayed by a freeze lands already old.
// Anything else is decided under the lock: when nobody holds the lease
// (released, missing, lapsed, unreadable) it takes it; when another server
// holds it live, the copy here must not live and is destroyed, unless it
// is migrating in or out, whose lease the other end holds for now.
func (k *Keeper) renewVM(cfg Config, store *Store, d Domain) error {
	stamp := k.now()
	l, _, err := store.ReadVM(d.UUID)
	if err == nil && l.ServerID == cfg.ServerID {
		return k.writeVM(cfg, store, d, l, stamp)
	}
	unlock, err := store.LockVM(d.UUID)
	if err != nil {
		return err
	}
	defer unlock()
	l, _, readErr := store.ReadVM(d.UUID)
	if readErr != nil && !errors.Is(readErr, ErrUnreadable) {
		return readErr
	}
	now := k.now()
	if readErr == nil && l.ServerID != cfg.ServerID && l.Live(now, cfg.Params.FenceTimeout()) {
		k.mu.Lock()
		_, incoming := k.incoming[d.UUID]
		outgoing := k.outgoing[d.UUID] != nil
		if incoming {
			k.handover = true
		}
		k.mu.Unlock()
		if incoming || outgoing {
			return nil
		}
		// The domain may have ended since it was listed.
		if cur, ok, err := k.host.Domain(d.RepoID, d.VMID); err != nil || !ok || !holdsLease(cur.State) {
			return err
		}
		return k.loseDomain(d, l, now)
	}
	return k.writeVM(cfg, store, d, l, now)
}

// writeVM writes this server as the holder of the lease of d, whose
// current content is l, unless the domain ended since it was listed (a
// stop releases the lease itself).
func (k *Keeper) writeVM(cfg Config, store *Store, d Domain, l Lease, stamp time.Time) error {
	k.leaseMu.Lock()
	defer k.leaseMu.Unlock()
	if l.ServerID == cfg.ServerID {
		// Read again under leaseMu: a release since the caller's read
		// must stand.
		cur, _, err := store.ReadVM(d.UUID)
		if err != nil {
			return err
		}
		if cur.ServerID != cfg.ServerID {
			return nil
		}
		l = cur
	}
	if cur, ok, err := k.host.Domain(d.RepoID, d.VMID); err != nil || !ok || !holdsLease(cur.State) {
		return err
	}
	if err := store.WriteVM(d.UUID, Lease{ServerID: cfg.ServerID, Hostname: k.hostname, RenewedUnixMS: stamp.UnixMilli(), Counter: l.Counter + 1}); err != nil {
		return err
	}
	k.mu.Lock()
	k.held[d.UUID] = vmRef{d.RepoID, d.VMID}
	delete(k.incoming, d.UUID)
	k.mu.Unlock()
	return nil
}

// loseDomain destroys the copy here of a VM whose live lease another
// server holds, and says so (event vm_lease_lost).
func (k *Keeper) loseDomain(d Domain, l Lease, now time.Time) error {
	holder := cmp.Or(l.Hostname, l.ServerID)
	if err := k.host.Destroy(d.RepoID, d.VMID); err != nil {
		return fmt.Errorf("destroy VM %s, whose live lease server %s holds: %w", d.UUID, holder, err)
	}
	k.mu.Lock()
	delete(k.held, d.UUID)
	k.mu.Unlock()
	detail := fmt.Sprintf("server %s holds the VM's live lease (renewed %d ms ago): the copy here was destroyed", holder, l.Age(now).Milliseconds())
	k.log.Error("HA: destroyed a domain whose VM another server holds", "vm", d.UUID, "holder", holder, "renewed_ms_ago", l.Age(now).Milliseconds())
	k.host.Emit(agentapi.Event{Time: now.Unix(), Kind: agentapi.EventVMLeaseLost, VMUUID: d.UUID, RepoID: d.RepoID,
		State: agentapi.StateShutdown, Detail: detail})
	return nil
}

// renewHeld renews the leases this server holds while the hypervisor
// cannot list its domains: those the repository still says are this
// server's (without the lock, as renewVM does).
func (k *Keeper) renewHeld(cfg Config, store *Store) error {
	k.mu.Lock()
	uuids := make([]string, 0, len(k.held))
	for uuid := range k.held {
		uuids = append(uuids, uuid)
	}
	k.mu.Unlock()
	var firstErr error
	for _, uuid := range uuids {
		stamp := k.now()
		k.leaseMu.Lock()
		l, _, err := store.ReadVM(uuid)
		if err == nil && l.ServerID == cfg.ServerID {
			err = store.WriteVM(uuid, Lease{ServerID: cfg.ServerID, Hostname: k.hostname, RenewedUnixMS: stamp.UnixMilli(), Counter: l.Counter + 1})
		}
		k.leaseMu.Unlock()
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// releaseIfGone releases the VM's lease when this server holds it and no
// longer runs the VM (a stop, a guest that shut itself down or crashed and
// was destroyed, a migration away, a fence). A start of the VM under way
// here keeps it.
func (k *Keeper) releaseIfGone(cfg Config, store *Store, uuid string, ref vmRef) error {
	unlock, err := store.LockVM(uuid)
	if err != nil {
		return err
	}
	defer unlock()
	k.leaseMu.Lock()
	defer k.leaseMu.Unlock()
	k.mu.Lock()
	busy := k.starting[uuid] > 0 || k.outgoing[uuid] != nil
	k.mu.Unlock()
	if busy {
		return nil
	}
	if d, ok, err := k.host.Domain(ref.repoID, ref.vmID); err != nil {
		return err
	} else if ok && holdsLease(d.State) {
		return nil // it runs here again
	}
	l, found, err := store.ReadVM(uuid)
	if err != nil && !errors.Is(err, ErrUnreadable) {
		return err
	}
	if err == nil && found && l.ServerID == cfg.ServerID {
		if err := store.WriteVM(uuid, Lease{Hostname: k.hostname, RenewedUnixMS: k.now().UnixMilli(), Counter: l.Counter + 1}); err != nil {
			return err
		}
	}
	k.mu.Lock()
	delete(k.held, uuid)
	k.mu.Unlock()
	return nil
}

// releaseStale releases the leases in the repository that name this
// server for VMs that do not run here: after an agent restart (whose
// simulated domains died with it) or a new configuration.
func (k *Keeper) releaseStale(cfg Config, store *Store, running map[string]bool) error {
	uuids, err := store.VMLeases()
	if err != nil {
		return err
	}
	var firstErr error
	for _, uuid := range uuids {
		if running[uuid] || checkName(uuid) != nil {
			continue
		}
		k.mu.Lock()
		ref, held := k.held[uuid]
		busy := held || k.starting[uuid] > 0 || k.outgoing[uuid] != nil
		k.mu.Unlock()
		if busy {
			continue // done by releaseIfGone
		}
		l, found, err := store.ReadVM(uuid)
		if err != nil || !found || l.ServerID != cfg.ServerID {
			continue // unreadable ones are left for someone to look at
		}
		if err := k.releaseIfGone(cfg, store, uuid, ref); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// lapsedLocked reports whether the server lease was not renewed for the
// fence timeout. k.mu must be held and HA configured.
func (k *Keeper) lapsedLocked() bool {
	return k.now().Sub(k.lastOK) >= k.cfg.Params.FenceTimeout()
}

// Gate runs at the start of every call but get_api_version, echo and
// ha_status: when the lease lapsed and the server has not fenced yet, it
// fences now, before the call may say anything about domains (an agent
// resumed after SIGSTOP must not show or touch the copies a peer has
// restarted by now). It returns at once otherwise.
func (k *Keeper) Gate() {
	k.mu.Lock()
	need := k.cfg != nil && !k.fenced && k.lapsedLocked()
	k.mu.Unlock()
	if need {
		k.fenceIfLapsed()
	}
}

// fenceIfLapsed fences when the lease lapsed and no fence happened since
// the last renewal: it cuts the migrations in and out, destroys every
// domain (HA ones first), and raises ha_fenced. It touches no lease file.
func (k *Keeper) fenceIfLapsed() {
	k.fenceMu.Lock()
	defer k.fenceMu.Unlock()
	k.mu.Lock()
	if k.cfg == nil || k.fenced || !k.lapsedLocked() {
		k.mu.Unlock()
		return
	}
	since := k.now().Sub(k.lastOK)
	k.fenceGen++
	cancels := make([]context.CancelFunc, 0, len(k.outgoing))
	for _, c := range k.outgoing {
		cancels = append(cancels, c)
	}
	incoming := make([]vmRef, 0, len(k.incoming))
	for _, r := range k.incoming {
		incoming = append(incoming, r)
	}
	k.incoming = map[string]vmRef{}
	k.mu.Unlock()
	k.log.Error("HA lease not renewed for the fence timeout: fencing, every domain is destroyed", "not_renewed_ms", since.Milliseconds())
	for _, c := range cancels {
		c()
	}
	for _, r := range incoming {
		k.host.CancelIncoming(r.repoID, r.vmID)
	}
	stopped, failures := k.destroyAll()
	k.mu.Lock()
	k.fenced = true
	k.fencedCount++
	k.lastFence = k.now()
	k.mu.Unlock()
	detail := fmt.Sprintf("lease not renewed for %d ms: stopped %d domains", since.Milliseconds(), stopped)
	if len(failures) > 0 {
		detail += fmt.Sprintf("; could not stop %d: %s", len(failures), failures[0])
		k.log.Error("HA fence could not stop every domain", "failures", failures)
	}
	k.host.Emit(agentapi.Event{Time: k.now().Unix(), Kind: agentapi.EventHAFenced, Detail: detail})
}

// destroyAll destroys every domain, HA ones first, retrying those a long
// operation holds for at most fenceRetryBound.
func (k *Keeper) destroyAll() (stopped int, failures []string) {
	deadline := time.Now().Add(fenceRetryBound)
	for {
		failures = failures[:0]
		doms, err := k.host.Domains()
		if err != nil {
			failures = append(failures, fmt.Sprintf("the hypervisor cannot list its domains: %v", err))
		}
		k.mu.Lock()
		haFirst := func(a, b Domain) int {
			ha, okA := k.ha[a.UUID]
			hb, okB := k.ha[b.UUID]
			ha, hb = ha || !okA, hb || !okB // unknown counts as HA
			if ha != hb {
				if ha {
					return -1
				}
				return 1
			}
			return cmp.Compare(a.UUID, b.UUID)
		}
		slices.SortFunc(doms, haFirst)
		k.mu.Unlock()
		for _, d := range doms {
			err := k.host.Destroy(d.RepoID, d.VMID)
			if f, ok := agentapi.AsFault(err); ok && f.Code == agentapi.FaultNotFound {
				continue // ended meanwhile
			}
			if err != nil {
				failures = append(failures, fmt.Sprintf("VM %s: %v", d.UUID, err))
				continue
			}
			stopped++
		}
		if len(failures) == 0 || time.Now().After(deadline) {
			return stopped, failures
		}
		time.Sleep(fenceRetry)
	}
}

// Status answers ha_status.
func (k *Keeper) Status() agentapi.HAStatus {
	k.mu.Lock()
	defer k.mu.Unlock()
	st := agentapi.HAStatus{LastRenewalAgeMS: -1, Fenced: k.fenced, FencedCount: k.fencedCount, LastError: k.lastErr}
	if !k.lastFence.IsZero() {
		st.LastFenceUnix = k.lastFence.Unix()
	}
	if k.cfg == nil {
		return st
	}
	st.Enabled = true
	st.PoolUUID, st.RepoUUID, st.ServerID = k.cfg.PoolUUID, k.cfg.RepoUUID, k.cfg.ServerID
	st.RenewIntervalMS, st.FenceTimeoutMS = k.cfg.Params.RenewIntervalMS, k.cfg.Params.FenceTimeoutMS
	if !k.lastOK.IsZero() {
		st.LastRenewalAgeMS = max(k.now().Sub(k.lastOK).Milliseconds(), 0)
	}
	return st
}

// configuredStore is the configuration and store, or InvalidState when HA
// is not configured.
func (k *Keeper) configuredStore() (Config, *Store, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cfg == nil {
		return Config{}, nil, agentapi.Errorf(agentapi.FaultInvalidState,
			"HA is not configured on server %s: ha_configure it first", k.hostname)
	}
	return *k.cfg, k.store, nil
}

// checkIDs checks the ids of a read call: at most maxLeaseIDs, each a
// name a lease file can have.
func checkIDs(what string, ids []string) error {
	if len(ids) > maxLeaseIDs {
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "at most %d %s per call, got %d", maxLeaseIDs, what, len(ids))
	}
	for _, id := range ids {
		if err := checkName(id); err != nil {
			return agentapi.Errorf(agentapi.FaultInvalidArgument, "%s: %q %v", what, truncate(id), err)
		}
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// unreadableFault and readFault are the faults of a lease that cannot be
// read.
func (k *Keeper) readFault(cfg Config, err error) error {
	if errors.Is(err, ErrUnreadable) {
		k.log.Error("HA: a lease file is unreadable", "err", err)
		return agentapi.Errorf(agentapi.FaultInvalidState, "in repository %s, %v: nobody can tell who holds it; fix or remove the file", cfg.RepoUUID, err)
	}
	return agentapi.Errorf(agentapi.FaultInvalidState, "server %s cannot read the leases in repository %s: %v", k.hostname, cfg.RepoUUID, err)
}

// ReadServers answers ha_read_leases: the server leases of the given
// servers in this server's pool, as this server reads them now.
func (k *Keeper) ReadServers(ids []string) ([]agentapi.ServerLease, error) {
	cfg, store, err := k.configuredStore()
	if err != nil {
		return nil, err
	}
	if err := checkIDs("server_ids", ids); err != nil {
		return nil, err
	}
	out := make([]agentapi.ServerLease, 0, len(ids))
	for _, id := range ids {
		l, found, err := store.ReadServer(id)
		if err != nil {
			return nil, k.readFault(cfg, err)
		}
		sl := agentapi.ServerLease{ServerID: id, Found: found}
		if found {
			sl.Hostname, sl.RenewedUnixMS, sl.Counter = l.Hostname, l.RenewedUnixMS, l.Counter
			sl.AgeMS = l.Age(k.now()).Milliseconds()
		}
		out = append(out, sl)
	}
	return out, nil
}

// ReadVMs answers ha_read_vm_leases.
func (k *Keeper) ReadVMs(uuids []string) ([]agentapi.VMLease, error) {
	cfg, store, err := k.configuredStore()
	if err != nil {
		return nil, err
	}
	if err := checkIDs("vm_uuids", uuids); err != nil {
		return nil, err
	}
	out := make([]agentapi.VMLease, 0, len(uuids))
	for _, uuid := range uuids {
		l, found, err := store.ReadVM(uuid)
		if err != nil {
			return nil, k.readFault(cfg, err)
		}
		vl := agentapi.VMLease{VMUUID: uuid, Found: found}
		if found {
			now := k.now()
			vl.ServerID, vl.RenewedUnixMS = l.ServerID, l.RenewedUnixMS
			vl.AgeMS = l.Age(now).Milliseconds()
			vl.Live = l.Live(now, cfg.Params.FenceTimeout())
		}
		out = append(out, vl)
	}
	return out, nil
}
