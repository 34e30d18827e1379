package backend

import (
	"context"
	"fmt"
	"strings"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
	"xenmanager/store"
)

// This file holds recovering by hand from a dead server (Oracle VM's "VM is
// on a dead server" path): recording its VMs stopped on the operator's
// word, taking it out of its pool and deleting it without its agent, and
// the pool master moving off it by itself.

// isSilent reports whether the manager records server s as not answering:
// Unreachable (it missed its heartbeats) or Stopped (stop Server powered it
// off). Only for such a server do the force=Yes forms act without its agent.
func isSilent(s store.Server) bool {
	return s.Status == ServerUnreachable || s.Status == ServerStopped
}

// ForceStopVM stops a running or paused VM at once (stop Vm force=Yes). On
// a server that answers it is kill. On a server recorded as not answering
// (isSilent) the operator states that the server is off: the VM is
// recorded Stopped without reaching the agent, and a Warning event says who
// stated it. Should the server come back with the domain still running,
// the reconciliation finds it (adopting it, or raising VmOnTwoServers when
// the VM runs elsewhere by then).
func (m *Manager) ForceStopVM(ctx context.Context, ref Ref) (VM, error) {
	actor := actorFrom(ctx)
	return m.vmJob(ctx, ref, "force stop", PermVMLifecycle, func(ctx context.Context, j *jobRun, v store.VM) error {
		s, err := m.st.Read().Server(ctx, v.ServerID)
		if err != nil {
			return &Error{Kind: KindInternal, Msg: "read the VM's server", Cause: err}
		}
		// The operator's word ends an HA restart still pending.
		if !isSilent(s) {
			err := m.stopDomain(ctx, j, v, true)
			if err == nil {
				m.haStopWaiting(v.ID)
			}
			return err
		}
		j.progress(50, "recording Vm "+v.Name+" stopped: server "+s.Name+" is "+s.Status)
		if err := m.setVMState(ctx, v.ID, "", VMStopped); err != nil {
			return err
		}
		m.haStopWaiting(v.ID)
		m.place.capacity.forget(s.ID)
		desc := fmt.Sprintf("Vm %s recorded Stopped without reaching its server %s (%s): user %s stated that the server is off (stop Vm force=Yes)",
			v.Name, s.Name, s.Status, actor.User)
		m.log.Warn(desc, "vm", v.ID, "server", s.ID, "user", actor.User)
		m.event(ctx, "Warning", "VmStoppedOnDeadServer", "Vm", v.ID, v.Name, v.PoolID, desc)
		return nil
	})
}

// refuseWhileRecorded refuses to forget silent server s while VMs are
// recorded on it: naming them, and how to record them stopped.
func refuseWhileRecorded(s store.Server, verb string, vms []string) error {
	if len(vms) == 0 {
		return nil
	}
	shown := vms
	if len(shown) > 10 {
		shown = append(shown[:10:10], fmt.Sprintf("and %d more", len(vms)-10))
	}
	return errorf(KindInvalidState,
		"Server %s is %s but %d VMs are still recorded on it (%s); %s needs none: once the server is off, record them stopped with stop Vm force=Yes (or let them be restarted elsewhere)",
		s.Name, s.Status, len(vms), strings.Join(shown, ", "), verb)
}

// removeSilentServer takes silent server s out of pool p in the records
// only (remove Server force=Yes): its agent is told nothing, and still
// believes it is a member; addServerToPool makes it leave that pool when it
// is added to one again. The other members learn the new member list, and
// the master moves when s was it.
func (m *Manager) removeSilentServer(ctx context.Context, s store.Server, p store.ServerPool) (Server, error) {
	names, err := m.vmsOn(ctx, s.ID)
	if err != nil {
		return Server{}, err
	}
	if err := refuseWhileRecorded(s, "remove Server force=Yes", names); err != nil {
		return Server{}, err
	}
	if err := m.leavePoolRecords(ctx, s, p); err != nil {
		return Server{}, err
	}
	actor := actorFrom(ctx)
	desc := fmt.Sprintf("Server %s (%s) was removed from ServerPool %s by user %s without reaching its agent (remove Server force=Yes): "+
		"should the machine come back, it still believes it is a member of the pool; discover it again and add it to a pool, or delete it",
		s.Name, s.Status, p.Name, actor.User)
	m.log.Warn(desc, "server", s.ID, "pool", p.ID, "user", actor.User)
	m.event(ctx, "Warning", "ServerRemovedWithoutAgent", "Server", s.ID, s.Name, p.ID, desc)
	m.updateMemberIPs(ctx, p.ID)
	return m.Server(ctx, Ref{ID: s.ID})
}

// leavePoolRecords records that s is in no pool, handing p's master role
// to another member when s had it (with its event).
func (m *Manager) leavePoolRecords(ctx context.Context, s store.Server, p store.ServerPool) error {
	var master store.Server
	err := m.st.Write(ctx, func(q *store.Queries) error {
		if err := q.SetServerPool(ctx, s.ID, ""); err != nil {
			return err
		}
		s.IsMaster = false
		if err := q.UpdateServerSettings(ctx, s); err != nil {
			return err
		}
		rest, err := q.ServersInPool(ctx, p.ID)
		if err != nil {
			return err
		}
		for _, o := range rest {
			if o.IsMaster {
				return nil // s was not the master
			}
		}
		var found bool
		if master, found = chooseMaster(rest, ""); !found {
			return nil // s was the last member
		}
		return q.SetPoolMaster(ctx, p.ID, master.ID)
	})
	if err != nil {
		return &Error{Kind: KindInternal, Msg: "record pool membership", Cause: err}
	}
	if master.ID != "" {
		m.masterMoved(ctx, p, s.Name, "it left the pool", master)
	}
	return nil
}

// chooseMaster picks the member of a pool that becomes its master in place
// of except: a Running one first (not in maintenance mode before one that
// is), then, when none runs, any other, so that a pool with members always
// has a master; by name among equals (members come sorted by name). found
// is false when there is no other member.
func chooseMaster(members []store.Server, except string) (master store.Server, found bool) {
	rank := func(s store.Server) int {
		switch {
		case s.Status == ServerRunning && !s.Maintenance:
			return 0
		case s.Status == ServerRunning:
			return 1
		}
		return 2
	}
	for _, s := range members {
		if s.ID == except {
			continue
		}
		if !found || rank(s) < rank(master) {
			master, found = s, true
		}
	}
	return master, found
}

// masterMoved records the event of a pool's master moving from old (for
// why) to master. The manager keeps the master in its records: the agents
// keep the part create_server_pool or join_server_pool gave them, since
// nothing the manager asks of a pool goes through its master.
func (m *Manager) masterMoved(ctx context.Context, p store.ServerPool, old, why string, master store.Server) {
	desc := fmt.Sprintf("the master of ServerPool %s moved from %s (%s) to %s", p.Name, old, why, master.Name)
	m.log.Warn(desc, "pool", p.ID, "master", master.ID)
	m.event(ctx, "Warning", "ServerPoolMasterChanged", "ServerPool", p.ID, p.Name, p.ID, desc)
}

// moveLostMasters makes a Running member the master of each pool whose
// master does not answer (isSilent: Unreachable after heartbeatMisses
// missed heartbeats, or Stopped). A pool with no Running member keeps its
// master until one answers. A pool whose lock a job holds (a server being
// added or removed) is left for the next round. servers are every server
// as the heartbeat round left them.
func (m *Manager) moveLostMasters(ctx context.Context, servers []store.Server) {
	for _, s := range servers {
		if s.IsMaster && s.PoolID != "" && isSilent(s) {
			m.moveLostMaster(ctx, s.PoolID)
		}
	}
}

// moveLostMaster moves the master of pool poolID to a Running member when
// the master is silent, under the pool's lock.
func (m *Manager) moveLostMaster(ctx context.Context, poolID string) {
	unlock, err := m.tryLock(ctx, "pool:"+poolID)
	if err != nil {
		return
	}
	defer unlock()
	p, err := m.st.Read().ServerPool(ctx, poolID)
	if err != nil {
		return // deleted meanwhile
	}
	members, err := m.st.Read().ServersInPool(ctx, poolID)
	if err != nil {
		m.log.Warn("master failover: read pool members", "pool", p.Name, "err", err)
		return
	}
	var old store.Server
	for _, s := range members {
		if s.IsMaster {
			old = s
		}
	}
	if old.ID == "" || !isSilent(old) {
		return
	}
	master, found := chooseMaster(members, old.ID)
	if !found || master.Status != ServerRunning {
		return
	}
	err = m.st.Write(ctx, func(q *store.Queries) error {
		if err := asLeader(ctx, q); err != nil {
			return err
		}
		return q.SetPoolMaster(ctx, poolID, master.ID)
	})
	if err != nil {
		m.log.Error("master failover: record the new master", "pool", p.Name, "err", err)
		return
	}
	m.masterMoved(ctx, p, old.Name, "it is "+old.Status, master)
}

// leaveStalePool makes the agent behind c leave the pool it still
// believes it is in, when the manager records server s in none: a server
// removed from its pool or deleted while it did not answer (force=Yes),
// back again. Without this, its join (or creation) of a pool would be
// refused, or leave it in the old one. An agent in no pool is left alone.
func (m *Manager) leaveStalePool(ctx context.Context, s store.Server, c *agentclient.Client) error {
	info, err := c.DiscoverServerPool(ctx)
	if err != nil {
		return agentError("ask server "+s.Name+" which pool it is in", s.Name, err)
	}
	if info.PoolUUID == "" {
		return nil
	}
	m.log.Warn("server still believed it was in a pool the manager had taken it out of; it leaves that pool first",
		"server", s.Name, "stale_pool", info.PoolUUID, "alias", info.Alias)
	if err := c.LeaveServerPool(ctx, info.PoolUUID); err != nil {
		if f, ok := agentapi.AsFault(err); ok && f.Code == agentapi.FaultNotFound {
			return nil // it left meanwhile
		}
		return agentError(fmt.Sprintf("server %s still believes it is in pool %q (it was removed from it while it did not answer), and could not leave it", s.Name, info.Alias), s.Name, err)
	}
	return nil
}
