package backend

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
	"xenmanager/store"
)

// Reconcile brings the recorded state of VMs in line with what each server's
// agent reports: a VM recorded Running whose domain is gone (the server
// rebooted, the guest shut itself down) or crashed is recorded Stopped, and
// a domain found running is recorded; each raises an event. On a server of
// a pool with high availability that fenced itself since the last look
// (haFencedSince), the VMs whose domains are gone are left to the HA round,
// which restarts the HA ones. Servers that do not answer are left as they
// are and logged. It returns how many VMs changed.
func (m *Manager) Reconcile(ctx context.Context) (int, error) {
	servers, err := m.st.Read().Servers(ctx)
	if err != nil {
		return 0, &Error{Kind: KindInternal, Msg: "read servers", Cause: err}
	}
	// The servers are asked at once (as many as the heartbeat asks), so
	// that one that hangs holds up none of the others.
	var (
		mu       sync.Mutex // guards changed and firstErr
		changed  int
		firstErr error
	)
	slots := make(chan struct{}, heartbeatParallel)
	var wg sync.WaitGroup
	for _, s := range servers {
		c, err := m.clients.get(s)
		if err != nil {
			mu.Lock()
			firstErr = cmp.Or(firstErr, err)
			mu.Unlock()
			continue
		}
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			n, err := m.reconcileServer(ctx, s, c)
			if errors.Is(err, errServerSilent) {
				m.log.Warn("reconcile: server does not answer; its VMs keep their recorded state", "server", s.Name, "err", err)
				err = nil
			}
			mu.Lock()
			changed += n
			firstErr = cmp.Or(firstErr, err)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return changed, firstErr
}

// errServerSilent is reconcileServer's error when the agent does not list
// its domains: nothing was changed.
var errServerSilent = errors.New("the server does not list its domains")

// serverSilent is errServerSilent for the agent's failure cause: it is
// errServerSilent (errors.Is) and unwraps to cause alone, which callers
// that report the agent's failure take (errors.Unwrap of an error of two
// %w would be nil).
func serverSilent(cause error) error { return &silentError{cause} }

type silentError struct{ cause error }

func (e *silentError) Error() string        { return errServerSilent.Error() + ": " + e.cause.Error() }
func (e *silentError) Is(target error) bool { return target == errServerSilent }
func (e *silentError) Unwrap() error        { return e.cause }

// reconcileServer brings the VMs of server s in line with the domains its
// agent runs: it adopts domains recorded as stopped and stops VMs recorded
// there that no longer run, but for those a fence destroyed on a server of
// an HA pool (the HA round takes them over); it returns how many VMs it
// changed.
func (m *Manager) reconcileServer(ctx context.Context, s store.Server, c *agentclient.Client) (int, error) {
	return m.reconcileServerAfter(ctx, s, c, "found at reconciliation")
}

// reconcileServerAfter is reconcileServer, the events of VMs found gone
// saying why the manager looked (after).
func (m *Manager) reconcileServerAfter(ctx context.Context, s store.Server, c *agentclient.Client, after string) (int, error) {
	placed, err := m.st.Read().VMIDsOnServer(ctx, s.ID)
	if err != nil {
		return 0, &Error{Kind: KindInternal, Msg: "read VMs", Cause: err}
	}
	fences, haPool, err := m.haLookAtFences(ctx, s, c)
	if err != nil {
		return 0, serverSilent(err)
	}
	domains, err := c.ListVMs(ctx)
	if err != nil {
		return 0, serverSilent(err)
	}
	changed := 0
	live := map[string]bool{}
	crashed := map[string]bool{}
	here := make(map[string]bool, len(placed))
	for _, id := range placed {
		here[id] = true
	}
	for _, d := range domains {
		if !domainLive(d.State) {
			// A crashed domain kept for inspection, or a suspended
			// one, runs no guest: nothing to adopt.
			crashed[d.UUID] = d.State == agentapi.StateCrashed
			continue
		}
		live[d.UUID] = true
		if here[d.UUID] {
			continue // recorded on s already: nothing to adopt
		}
		n, err := m.adopt(ctx, s, c, d.UUID)
		if err != nil {
			return changed, err
		}
		changed += n
	}
	fenced, askedFence := false, false
	for _, id := range placed {
		if live[id] {
			continue
		}
		// A domain gone from a server of an HA pool that fenced itself
		// was destroyed by the fence: the HA round takes the server
		// over (haServerFenced), restarting the HA VMs.
		if haPool && !crashed[id] {
			if !askedFence {
				askedFence = true
				if fenced = m.haFencedSince(ctx, s, c, fences); fenced {
					name := id
					if v, err := m.st.Read().VM(ctx, id); err == nil {
						name = v.Name
					}
					m.haServerFenced(ctx, fences.pool, s, "the reconciliation finds Vm "+name+"'s domain gone ("+after+")")
				}
			}
			if fenced {
				continue
			}
		}
		// A job working on the VM settles it itself: skip it when busy,
		// and check again under the lock.
		unlock, err := m.tryLock(ctx, id)
		if err != nil {
			continue
		}
		cur, err := m.st.Read().VM(ctx, id)
		if err != nil || cur.ServerID != s.ID {
			unlock()
			continue
		}
		err = m.st.Write(ctx, func(q *store.Queries) error { return q.SetVMState(ctx, id, "", VMStopped) })
		unlock()
		if err != nil {
			return changed, &Error{Kind: KindInternal, Msg: "record Vm state", Cause: err}
		}
		m.place.capacity.adjust(s.ID, cur.MemoryMiB)
		changed++
		if crashed[id] {
			desc := "Vm " + cur.Name + " crashed on server " + s.Name + "; the crashed domain is kept on the server for inspection (on_crash " +
				crashActionWire[cur.OnCrash] + ") until the VM starts again (" + after + "); recorded Stopped"
			m.log.Warn(desc)
			m.event(ctx, "Error", "VmCrashed", "Vm", cur.ID, cur.Name, cur.PoolID, desc)
			continue
		}
		desc := "Vm " + cur.Name + " no longer runs on server " + s.Name + ": its domain is gone (" + after + "); recorded Stopped"
		m.log.Warn(desc)
		m.event(ctx, "Warning", "VmLost", "Vm", cur.ID, cur.Name, cur.PoolID, desc)
	}
	return changed, nil
}

// adopt records a domain found running on server s that the store has as
// Stopped (a start whose answer was lost, or a start made outside the
// manager). A domain of a VM recorded running on another server is logged
// as an error and left alone: a person must decide which copy lives. The
// listing that named the domain was taken before the VM's lock: a start in
// flight shows its domain while QEMU comes up, and the start may fail once
// it lets go of the lock, so the domain is asked about again under the lock.
func (m *Manager) adopt(ctx context.Context, s store.Server, c *agentclient.Client, vmID string) (int, error) {
	v, err := m.st.Read().VM(ctx, vmID)
	if err != nil {
		return 0, nil // not a VM of this manager
	}
	if v.ServerID == s.ID {
		return 0, nil
	}
	unlock, err := m.tryLock(ctx, v.ID)
	if err != nil {
		return 0, nil // a job works on it
	}
	defer unlock()
	if v, err = m.st.Read().VM(ctx, v.ID); err != nil || v.ServerID == s.ID {
		return 0, nil
	}
	if running, known := m.domainRunning(ctx, c, v); !running || !known {
		return 0, nil
	}
	// A VM recorded on a silent server of an HA pool is recorded where it
	// runs (haMovedOff); on any other server, a person must decide.
	if v.ServerID != "" && !m.haMovedOff(ctx, v, s) {
		m.log.Error("reconcile: vm runs on two servers", "vm", v.Name, "recorded", v.ServerID, "also", s.Name)
		m.event(ctx, "Error", "VmOnTwoServers", "Vm", v.ID, v.Name, v.PoolID,
			"Vm "+v.Name+" has a domain on server "+s.Name+" as well as on the server it is recorded on; stop one of them")
		return 0, nil
	}
	err = m.st.Write(ctx, func(q *store.Queries) error { return q.SetVMState(ctx, v.ID, s.ID, VMRunning) })
	if err != nil {
		return 0, &Error{Kind: KindInternal, Msg: "record Vm state", Cause: err}
	}
	m.place.capacity.adjust(s.ID, -v.MemoryMiB)
	was := v.Status
	if v.ServerID != "" {
		if on, err := m.st.Read().Server(ctx, v.ServerID); err == nil {
			was += " on server " + on.Name
		}
	}
	desc := "Vm " + v.Name + " was found running on server " + s.Name + ", though recorded " + was + "; recorded Running there"
	m.log.Warn(desc)
	m.event(ctx, "Warning", "VmFoundRunning", "Vm", v.ID, v.Name, v.PoolID, desc)
	return 1, nil
}

// tryLock takes an object's lock only if it is free within a moment.
func (m *Manager) tryLock(ctx context.Context, key string) (func(), error) {
	lctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	return m.locks.lock(lctx, key)
}

// haMovedOff reports whether VM v, recorded on another server, may be
// recorded where server s runs it: when its recorded server is Unreachable
// in a pool with high availability, whose agents start a VM only with its
// lease.
func (m *Manager) haMovedOff(ctx context.Context, v store.VM, s store.Server) bool {
	rec, err := m.st.Read().Server(ctx, v.ServerID)
	if err != nil || rec.Status != ServerUnreachable || rec.PoolID != s.PoolID {
		return false
	}
	p, err := m.st.Read().ServerPool(ctx, rec.PoolID)
	return err == nil && p.HA.Enabled
}
