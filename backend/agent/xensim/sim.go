package xensim

import (
	"cmp"
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"xenmanager/backend/agentapi"
)

// faults is the injected misbehaviour of the host (sim_set). The agent
// consults it only when it runs with simulation control.
type faults struct {
	mu       sync.Mutex               // guards the fields below
	latency  map[string]time.Duration // by method name
	failNext map[string]string        // by method name: the message of the next call's fault
	dirty    map[string]int64         // by VM uuid (or VM id): pages per second while migrating
	hung     chan struct{}            // non-nil while hang is on; closed when it is turned off
	blocked  int                      // calls waiting in a hang now
	// corruptMig and breakMig are one-shot migration faults, by VM uuid or
	// VM id (see migrate.go); migMiBPerS is the simulated migration link's
	// speed, DefaultMigrationMiBPerS when 0.
	corruptMig map[string]bool
	breakMig   map[string]bool
	migMiBPerS int64
	// leaseFail makes every access to the HA leases fail
	// (SimHAStorageFail).
	leaseFail bool
	// copyMiBPerS limits the speed of every copy_file (SimCopyMiBPerS); 0:
	// none.
	copyMiBPerS int64
}

// Sim parameter names of sim_set.
const (
	SimLatencyMS = "latency_ms"
	SimFailNext  = "fail_next"
	SimDirty     = "dirty_pages_per_s"
	SimCrashVM   = "crash_vm"
	SimHang      = "hang"
	// SimGuestShutdown names a live domain (uuid or VM id) whose guest
	// powers itself off: the domain goes away and an event says so.
	SimGuestShutdown = "guest_shutdown"
	// SimCorruptMigration names a VM (uuid or VM id) whose next incoming
	// migration to this server has one page flipped in the destination's
	// rebuilt memory before the checksum is compared, so the migration
	// fails with a checksum mismatch. Set it on the destination; it is used
	// once.
	SimCorruptMigration = "corrupt_migration"
	// SimBreakMigration names a VM (uuid or VM id) whose next migration
	// stream to or from this server is cut half-way through round 1 by
	// this server, as a broken network would. It is used once.
	SimBreakMigration = "break_migration"
	// SimMigrationMiBPerS sets the speed of the simulated migration link of
	// this server as a source (MiB of guest memory per second, as if every
	// page were 4 KiB); 0 restores DefaultMigrationMiBPerS. A low speed
	// makes migrations take long enough to watch.
	SimMigrationMiBPerS = "migration_mib_per_s"
	// SimHAStorageFail (bool) makes every read and write of this server's
	// HA leases fail, as if the pool's HA repository were unreachable
	// from it, so that its fencing can be tested; false ends it.
	SimHAStorageFail = "ha_storage_fail"
	// SimCopyMiBPerS limits every copy_file of this server to that many
	// MiB of data per second, from the copy's start; 0 removes the limit.
	// Slow copies let a test see how many run at once.
	SimCopyMiBPerS = "copy_mib_per_s"
)

// maxLatency bounds an injected latency, so that a typo cannot park calls
// for days.
const maxLatency = 10 * time.Minute

// BeforeCall applies the injected faults to a call of method: it blocks
// while the host hangs, waits the method's latency, then fails with the
// method's pending fail_next message (once). It returns early with an
// InternalError when ctx ends. sim_set itself is never delayed, so that a
// hang can be lifted.
func (h *Sim) BeforeCall(ctx context.Context, method string) error {
	if method == agentapi.MethodSimSet {
		return nil
	}
	f := &h.faults
	f.mu.Lock()
	hung, delay := f.hung, f.latency[method]
	if hung != nil {
		f.blocked++
	}
	f.mu.Unlock()
	abandoned := func() error {
		return agentapi.Errorf(agentapi.FaultInternalError, "call to %s abandoned: %v", method, context.Cause(ctx))
	}
	if hung != nil {
		var err error
		select {
		case <-hung:
		case <-ctx.Done():
			err = abandoned()
		}
		f.mu.Lock()
		f.blocked--
		f.mu.Unlock()
		if err != nil {
			return err
		}
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return abandoned()
		}
	}
	f.mu.Lock()
	msg, fail := f.failNext[method]
	delete(f.failNext, method)
	f.mu.Unlock()
	if fail {
		return agentapi.Errorf(agentapi.FaultInternalError, "%s", msg)
	}
	return nil
}

// simSettings is a checked sim_set request.
type simSettings struct {
	latency  map[string]time.Duration
	failNext map[string]string
	dirty    map[string]int64
	crashVM  string
	shutdown string
	hang     *bool
	corrupt  string
	brk      string
	migSpeed *int64
	haFail   *bool
	copySpd  *int64
}

// SimSet changes the injected faults (sim_set). Every key is checked before
// anything changes. latency_ms maps method names to milliseconds (0 clears),
// fail_next method names to the message of one InternalError (""
// clears), dirty_pages_per_s VM uuids to a rate, crash_vm names a live
// domain (by uuid or VM id) whose guest crashes (its on_crash decides what
// becomes of the domain), guest_shutdown one whose
// guest powers itself off (the domain goes away), both recorded as events
// for get_events, hang (bool) makes every other call block until it is set
// false; corrupt_migration, break_migration and migration_mib_per_s are
// the migration faults described at their constants, copy_mib_per_s the
// speed limit of copy_file.
func (h *Sim) SimSet(params map[string]any) error {
	s, err := parseSimSettings(params)
	if err != nil {
		return err
	}
	if s.crashVM != "" {
		if err := h.crash(s.crashVM); err != nil {
			return err
		}
	}
	if s.shutdown != "" {
		if err := h.guestShutdown(s.shutdown); err != nil {
			return err
		}
	}
	f := &h.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	for m, d := range s.latency {
		if f.latency == nil {
			f.latency = map[string]time.Duration{}
		}
		if d == 0 {
			delete(f.latency, m)
		} else {
			f.latency[m] = d
		}
	}
	for m, msg := range s.failNext {
		if f.failNext == nil {
			f.failNext = map[string]string{}
		}
		if msg == "" {
			delete(f.failNext, m)
		} else {
			f.failNext[m] = msg
		}
	}
	for id, rate := range s.dirty {
		if f.dirty == nil {
			f.dirty = map[string]int64{}
		}
		f.dirty[id] = rate
	}
	if s.corrupt != "" {
		if f.corruptMig == nil {
			f.corruptMig = map[string]bool{}
		}
		f.corruptMig[s.corrupt] = true
	}
	if s.brk != "" {
		if f.breakMig == nil {
			f.breakMig = map[string]bool{}
		}
		f.breakMig[s.brk] = true
	}
	if s.migSpeed != nil {
		f.migMiBPerS = *s.migSpeed
	}
	if s.haFail != nil {
		f.leaseFail = *s.haFail
	}
	if s.copySpd != nil {
		f.copyMiBPerS = *s.copySpd
	}
	if s.hang != nil {
		switch {
		case *s.hang && f.hung == nil:
			f.hung = make(chan struct{})
		case !*s.hang && f.hung != nil:
			close(f.hung)
			f.hung = nil
		}
	}
	return nil
}

// LeaseStorageFailing reports whether ha_storage_fail is on
// (hypervisor.LeaseStorageFault).
func (h *Sim) LeaseStorageFailing() bool {
	h.faults.mu.Lock()
	defer h.faults.mu.Unlock()
	return h.faults.leaseFail
}

// CopyBytesPerSecond is the speed limit copy_mib_per_s set, in bytes per
// second; 0 when none (hypervisor.CopyPace).
func (h *Sim) CopyBytesPerSecond() int64 {
	h.faults.mu.Lock()
	defer h.faults.mu.Unlock()
	return h.faults.copyMiBPerS << 20
}

// HungCalls is the number of calls blocked by a hang right now; tests use it
// to know a call has arrived before they lift the hang.
func (h *Sim) HungCalls() int {
	h.faults.mu.Lock()
	defer h.faults.mu.Unlock()
	return h.faults.blocked
}

// DirtyPageRate is the dirty-page rate set for a VM uuid by sim_set, 0 when
// none (a migration then uses DefaultDirtyPagesPerS).
func (h *Sim) DirtyPageRate(uuid string) int64 {
	h.faults.mu.Lock()
	defer h.faults.mu.Unlock()
	return h.faults.dirty[uuid]
}

func parseSimSettings(params map[string]any) (simSettings, error) {
	var s simSettings
	bad := func(format string, args ...any) (simSettings, error) {
		return simSettings{}, agentapi.Errorf(agentapi.FaultInvalidArgument, "sim_set: "+format, args...)
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := params[k]
		switch k {
		case SimLatencyMS, SimDirty:
			m, ok := v.(map[string]any)
			if !ok {
				return bad("%s must be a struct of name to integer, got %T", k, v)
			}
			for name, x := range m {
				n, err := agentapi.ToInt(x)
				if err != nil || n < 0 {
					return bad("%s.%s must be a non-negative integer, got %#v", k, name, x)
				}
				if k == SimDirty {
					if s.dirty == nil {
						s.dirty = map[string]int64{}
					}
					s.dirty[name] = n
					continue
				}
				d := time.Duration(n) * time.Millisecond
				if n > int64(maxLatency/time.Millisecond) {
					return bad("%s.%s is %d ms, more than the %v allowed", k, name, n, maxLatency)
				}
				if s.latency == nil {
					s.latency = map[string]time.Duration{}
				}
				s.latency[name] = d
			}
		case SimFailNext:
			m, ok := v.(map[string]any)
			if !ok {
				return bad("%s must be a struct of method name to message, got %T", k, v)
			}
			s.failNext = map[string]string{}
			for name, x := range m {
				msg, ok := x.(string)
				if !ok {
					return bad("%s.%s must be a string, got %T", k, name, x)
				}
				s.failNext[name] = msg
			}
		case SimCrashVM, SimGuestShutdown, SimCorruptMigration, SimBreakMigration:
			id, ok := v.(string)
			if !ok || id == "" {
				return bad("%s must be a VM uuid, got %#v", k, v)
			}
			switch k {
			case SimCrashVM:
				s.crashVM = id
			case SimGuestShutdown:
				s.shutdown = id
			case SimCorruptMigration:
				s.corrupt = id
			default:
				s.brk = id
			}
		case SimMigrationMiBPerS, SimCopyMiBPerS:
			n, err := agentapi.ToInt(v)
			if err != nil || n < 0 {
				return bad("%s must be a non-negative integer, got %#v", k, v)
			}
			if k == SimCopyMiBPerS {
				if n > 1<<30 {
					return bad("%s must be at most %d, got %d", k, 1<<30, n)
				}
				s.copySpd = &n
			} else {
				s.migSpeed = &n
			}
		case SimHang, SimHAStorageFail:
			b, ok := v.(bool)
			if !ok {
				return bad("%s must be a boolean, got %T", k, v)
			}
			if k == SimHang {
				s.hang = &b
			} else {
				s.haFail = &b
			}
		default:
			return bad("unknown setting %q (known: %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", k,
				SimLatencyMS, SimFailNext, SimDirty, SimCrashVM, SimGuestShutdown, SimHang,
				SimCorruptMigration, SimBreakMigration, SimMigrationMiBPerS, SimHAStorageFail, SimCopyMiBPerS)
		}
	}
	return s, nil
}

// crash makes the guest of the live domain with uuid or VM id crash, and
// does what the domain's on_crash says, as Xen does: preserve keeps the
// domain, crashed; destroy (and coredump-destroy, the default) ends it;
// restart (and coredump-restart, rename-restart) ends it and boots a new
// domain of the VM at once, with the next domid. The event's state says
// which: crashed, shutdown or running. Only a domain that holds memory
// (running, blocked or paused) can crash.
func (h *Sim) crash(id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for key, d := range h.domains {
		if d.uuid != id && d.vmID != id {
			continue
		}
		if !d.holdsMemory() {
			return agentapi.Errorf(agentapi.FaultInvalidState,
				"sim_set: domain %s is %s; only a running, blocked or paused guest can crash", id, d.state)
		}
		const crashed = "the guest crashed (simulated)"
		switch d.onCrash {
		case agentapi.CrashPreserve:
			d.setState(agentapi.StateCrashed, h.now())
			h.emitLocked(d, agentapi.EventVMCrashed, agentapi.StateCrashed,
				fmt.Sprintf("%s; on_crash %s keeps the crashed domain (domid %d)", crashed, d.onCrash, d.domID))
		case agentapi.CrashRestart, agentapi.CrashCoredumpRestart, agentapi.CrashRenameRestart:
			h.removeDomainLocked(key)
			next := h.restartedLocked(d)
			h.domains[key] = next
			h.emitLocked(next, agentapi.EventVMCrashed, agentapi.StateRunning,
				fmt.Sprintf("%s; on_crash %s destroyed domain %d and booted domain %d", crashed, d.onCrash, d.domID, next.domID))
		default:
			action := cmp.Or(d.onCrash, agentapi.CrashDestroy)
			h.removeDomainLocked(key)
			h.emitLocked(d, agentapi.EventVMCrashed, agentapi.StateShutdown,
				fmt.Sprintf("%s; on_crash %s destroyed domain %d", crashed, action, d.domID))
		}
		return nil
	}
	return agentapi.Errorf(agentapi.FaultNotFound, "sim_set: no live domain %s on this server to crash", id)
}

// restartedLocked is a new domain of d's VM with d's configuration, booted
// now with the next domid, as on_crash restart boots it. h.mu must be
// held; d no longer holds memory, so the new domain fits.
func (h *Sim) restartedLocked(d *domain) *domain {
	now := h.now()
	next := &domain{
		repoID: d.repoID, vmID: d.vmID, uuid: d.uuid, name: d.name,
		domID: h.nextDomID, state: agentapi.StateRunning,
		memoryMiB: d.memoryMiB, vcpus: d.vcpus, maxMemMiB: d.maxMemMiB, maxVCPUs: d.maxVCPUs,
		since: now, booted: now, diskMiB: d.diskMiB, osType: d.osType, onCrash: d.onCrash,
		gone: make(chan struct{}),
	}
	h.nextDomID++
	return next
}

// guestShutdown makes the guest of the live domain with uuid or VM id power
// itself off: the domain is destroyed (on_poweroff 'destroy', Xen's
// default) and the event recorded.
func (h *Sim) guestShutdown(id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for key, d := range h.domains {
		if d.uuid == id || d.vmID == id {
			if !d.holdsMemory() {
				return agentapi.Errorf(agentapi.FaultInvalidState,
					"sim_set: domain %s is %s; only a running guest can shut itself down", id, d.state)
			}
			h.removeDomainLocked(key)
			h.emitLocked(d, agentapi.EventVMShutdown, agentapi.StateShutdown, "the guest powered itself off")
			return nil
		}
	}
	return agentapi.Errorf(agentapi.FaultNotFound, "sim_set: no live domain %s on this server to shut down", id)
}

// migrationDirtyRate is the rate at which the guest of the domain (uuid,
// vmID) dirties pages while it migrates: the rate sim_set gave its uuid or
// VM id, else DefaultDirtyPagesPerS.
func (h *Sim) migrationDirtyRate(uuid, vmID string) int64 {
	h.faults.mu.Lock()
	defer h.faults.mu.Unlock()
	if r, ok := h.faults.dirty[uuid]; ok {
		return r
	}
	if r, ok := h.faults.dirty[vmID]; ok {
		return r
	}
	return DefaultDirtyPagesPerS
}

// migrationPagesPerS is the speed of the simulated migration link, in 4 KiB
// pages per second.
func (h *Sim) migrationPagesPerS() int64 {
	h.faults.mu.Lock()
	defer h.faults.mu.Unlock()
	return cmp.Or(h.faults.migMiBPerS, DefaultMigrationMiBPerS) * pagesPerMiB
}

// takeMigrationFault reports whether the one-shot corrupt_migration (when
// corrupt) or break_migration fault is set for the VM, by uuid or VM id,
// and clears it.
func (h *Sim) takeMigrationFault(corrupt bool, uuid, vmID string) bool {
	f := &h.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.breakMig
	if corrupt {
		m = f.corruptMig
	}
	for _, id := range []string{uuid, vmID} {
		if m[id] {
			delete(m, id)
			return true
		}
	}
	return false
}

// emitLocked records a state change of d that no call caused. h.mu must be
// held (for d's fields).
func (h *Sim) emitLocked(d *domain, kind, state, detail string) {
	h.events.Emit(agentapi.Event{
		Time:   h.now().Unix(),
		Kind:   kind,
		VMUUID: d.uuid,
		RepoID: d.repoID,
		State:  state,
		Detail: detail,
	})
}
