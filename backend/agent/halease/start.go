package halease

import (
	"cmp"
	"context"
	"errors"

	"xenmanager/backend/agentapi"
)

// checkName rejects a VM uuid or server id that cannot name a lease file:
// one is 1 to 128 letters, digits, '.', '_' or '-', starting with a letter
// or a digit (the agent's rule for ids).
func checkName(id string) error {
	ok := id != "" && len(id) <= 128
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		ok = alnum || i > 0 && (c == '.' || c == '_' || c == '-')
	}
	if !ok {
		return errors.New("is not valid: use 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	return nil
}

// Start is a start of a domain (start_vm, restore_vm) that took the VM's
// lease; End finishes it. A nil *Start (HA not configured) is valid.
type Start struct {
	k     *Keeper
	cfg   Config
	store *Store
	uuid  string
	ref   vmRef
	gen   int64 // k.fenceGen when the lease was taken
}

// BeginStart takes the VM's lease before a domain of it starts here: under
// the VM's lock in the repository, it refuses (InvalidState) while another
// server holds a live lease on the VM, while the lease is unreadable, and
// while this server's own lease lapsed (it fenced, or is about to); Busy
// when another server holds the lock for the whole wait. Otherwise it
// writes this server as the holder. With HA not configured it does
// nothing. The caller must call End with the start's outcome.
func (k *Keeper) BeginStart(uuid, repoID, vmID string) (*Start, error) {
	k.mu.Lock()
	if k.cfg == nil {
		k.mu.Unlock()
		return nil, nil
	}
	cfg, store := *k.cfg, k.store
	if err := checkName(uuid); err != nil {
		k.mu.Unlock()
		return nil, agentapi.Errorf(agentapi.FaultInvalidState,
			"VM %s has uuid %q, which %v, so it can have no HA lease and cannot start on a server of an HA pool", vmID, truncate(uuid), err)
	}
	if k.fenced || k.lapsedLocked() {
		age := k.now().Sub(k.lastOK).Milliseconds()
		k.mu.Unlock()
		return nil, agentapi.Errorf(agentapi.FaultInvalidState,
			"server %s cannot start Vm %s: its own HA lease in repository %s was last renewed %d ms ago, not within the fence timeout of %d ms; it starts nothing until its lease is renewed",
			k.hostname, uuid, cfg.RepoUUID, age, cfg.Params.FenceTimeoutMS)
	}
	s := &Start{k: k, cfg: cfg, store: store, uuid: uuid, ref: vmRef{repoID, vmID}, gen: k.fenceGen}
	k.starting[uuid]++
	k.mu.Unlock()
	if err := k.take(cfg, store, uuid, s.ref); err != nil {
		k.mu.Lock()
		k.doneStartingLocked(uuid)
		k.mu.Unlock()
		return nil, err
	}
	return s, nil
}

func (k *Keeper) doneStartingLocked(uuid string) {
	if k.starting[uuid]--; k.starting[uuid] <= 0 {
		delete(k.starting, uuid)
	}
}

// take is read-decide-write of a VM's lease for a start, under the VM's
// lock.
func (k *Keeper) take(cfg Config, store *Store, uuid string, ref vmRef) error {
	unlock, err := store.LockVM(uuid)
	if errors.Is(err, ErrLockBusy) {
		return agentapi.Errorf(agentapi.FaultBusy, "Vm %s: another server is deciding about its HA lease now; try again", uuid)
	}
	if err != nil {
		return agentapi.Errorf(agentapi.FaultInvalidState, "server %s cannot take the HA lease of Vm %s in repository %s: %v", k.hostname, uuid, cfg.RepoUUID, err)
	}
	defer unlock()
	l, _, err := store.ReadVM(uuid)
	if errors.Is(err, ErrUnreadable) {
		k.log.Error("HA: a VM lease is unreadable; the VM is not started", "vm", uuid, "err", err)
		return agentapi.Errorf(agentapi.FaultInvalidState,
			"Vm %s: its HA lease (%s in repository %s) is unreadable, so nobody can tell which server may run it; not started. Fix or remove the file once the VM is known to run nowhere",
			uuid, store.VMRel(uuid), cfg.RepoUUID)
	}
	if err != nil {
		return agentapi.Errorf(agentapi.FaultInvalidState, "server %s cannot take the HA lease of Vm %s in repository %s: %v", k.hostname, uuid, cfg.RepoUUID, err)
	}
	now := k.now()
	if l.ServerID != cfg.ServerID && l.Live(now, cfg.Params.FenceTimeout()) {
		return agentapi.Errorf(agentapi.FaultInvalidState, "Vm %s holds a live lease of server %s (renewed %d ms ago); it may be running there",
			uuid, cmp.Or(l.Hostname, l.ServerID), l.Age(now).Milliseconds())
	}
	if err := store.WriteVM(uuid, Lease{ServerID: cfg.ServerID, Hostname: k.hostname, RenewedUnixMS: now.UnixMilli(), Counter: l.Counter + 1}); err != nil {
		return agentapi.Errorf(agentapi.FaultInvalidState, "server %s cannot take the HA lease of Vm %s in repository %s: %v", k.hostname, uuid, cfg.RepoUUID, err)
	}
	k.mu.Lock()
	k.held[uuid] = ref
	delete(k.incoming, uuid)
	k.mu.Unlock()
	return nil
}

// End finishes a start with its outcome startErr, which it returns. A
// start that failed releases the lease it took, unless a domain of the VM
// runs here anyway (it was running already). A start that overlapped a
// fence has its domain destroyed: a fenced server runs nothing.
func (s *Start) End(startErr error) error {
	if s == nil {
		return startErr
	}
	k := s.k
	k.mu.Lock()
	k.doneStartingLocked(s.uuid)
	fenced := k.fenceGen != s.gen
	k.mu.Unlock()
	if startErr != nil {
		if err := k.releaseIfGone(s.cfg, s.store, s.uuid, s.ref); err != nil {
			k.log.Warn("HA: cannot release the lease of a VM that did not start; the next renewal tries again", "vm", s.uuid, "err", err)
		}
		return startErr
	}
	if fenced {
		if err := k.host.Destroy(s.ref.repoID, s.ref.vmID); err != nil {
			k.log.Error("HA: cannot destroy a domain started during a fence", "vm", s.uuid, "err", err)
		}
		return agentapi.Errorf(agentapi.FaultInvalidState,
			"server %s fenced itself (its HA lease lapsed) while Vm %s was starting; the domain was destroyed", k.hostname, s.uuid)
	}
	return nil
}

// Release releases the VM's lease after its domain ended here (stop_vm),
// unless a domain of it runs here again. Failures are logged: the next
// renewal tries again.
func (k *Keeper) Release(uuid, repoID, vmID string) {
	k.mu.Lock()
	if k.cfg == nil {
		k.mu.Unlock()
		return
	}
	cfg, store := *k.cfg, k.store
	k.mu.Unlock()
	if checkName(uuid) != nil {
		return
	}
	if err := k.releaseIfGone(cfg, store, uuid, vmRef{repoID, vmID}); err != nil {
		k.log.Warn("HA: cannot release a VM lease; the next renewal tries again", "vm", uuid, "err", err)
		k.mu.Lock()
		k.held[uuid] = vmRef{repoID, vmID}
		k.mu.Unlock()
	}
}

// BeginOutgoing marks the VM as migrating away from this server for the
// length of a migrate_vm: its lease is still renewed, and a fence cuts the
// migration (through the context returned). end, with whether the domain
// left, releases the lease when it did: the source does not know the
// destination's server id, and the destination takes the lease at its next
// renewal.
func (k *Keeper) BeginOutgoing(ctx context.Context, uuid, repoID, vmID string) (context.Context, func(migrated bool)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cfg == nil || checkName(uuid) != nil {
		return ctx, func(bool) {}
	}
	ctx, cancel := context.WithCancel(ctx)
	k.outgoing[uuid] = cancel
	return ctx, func(migrated bool) {
		k.mu.Lock()
		delete(k.outgoing, uuid)
		k.mu.Unlock()
		cancel()
		if migrated {
			k.Release(uuid, repoID, vmID)
		}
	}
}

// ExpectIncoming marks the VM as migrating to this server
// (setup_migration_target): its domain here is not destroyed while the
// source holds the lease, and the lease is taken once the source released
// it. InvalidState while this server's own lease lapsed.
func (k *Keeper) ExpectIncoming(uuid, repoID, vmID string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cfg == nil {
		return nil
	}
	if err := checkName(uuid); err != nil {
		return agentapi.Errorf(agentapi.FaultInvalidState,
			"VM %s has uuid %q, which %v, so it can have no HA lease and cannot run on a server of an HA pool", vmID, truncate(uuid), err)
	}
	if k.fenced || k.lapsedLocked() {
		return agentapi.Errorf(agentapi.FaultInvalidState,
			"server %s cannot receive Vm %s: its own HA lease in repository %s was last renewed %d ms ago, not within the fence timeout of %d ms",
			k.hostname, uuid, k.cfg.RepoUUID, k.now().Sub(k.lastOK).Milliseconds(), k.cfg.Params.FenceTimeoutMS)
	}
	k.incoming[uuid] = vmRef{repoID, vmID}
	return nil
}

// CancelIncoming forgets the VM's incoming migration
// (cleanup_migration_target).
func (k *Keeper) CancelIncoming(repoID, vmID string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for uuid, r := range k.incoming {
		if r == (vmRef{repoID, vmID}) {
			delete(k.incoming, uuid)
		}
	}
}
