package backend

import (
	"context"
	"fmt"

	"xenmanager/backend/agentclient"
	"xenmanager/store"
)

// A server can fence itself without ever looking dead to the manager: its
// storage fails for a little longer than the fence timeout, its agent
// destroys every domain, renews its lease once the storage works again and
// goes on answering its heartbeats. The HA round never takes such a server
// over (it takes over Unreachable ones), so the reconciliation that finds
// its domains gone asks the agent whether it fenced (haFencedSince) and,
// when it did, hands the server to the HA round as a fenced server that
// answers again (haServerFenced, then haReturned): its HA VMs are
// restarted, preferably elsewhere, the others recorded Stopped.

// haFenceLook is what a reconciliation of a server of an HA pool learnt of
// its agent's fences before it listed the server's domains.
type haFenceLook struct {
	pool  store.ServerPool
	prev  int64 // the fence count the previous reconciliation saw
	known bool  // this manager saw one since it started
}

// haLookAtFences is the HA part of a reconciliation of server s, before it
// lists the domains: when s is in a pool with high availability on, it
// asks the agent for its fence count (ha_status, which passes no gate and
// so fences nothing) and keeps it for the next reconciliation. The count
// is taken before the listing so that a fence it counts destroyed its
// domains before the listing; one that comes after is counted by the next
// reconciliation. ok is false for a server of no HA pool (whatever the
// failover remembered of it is dropped). An agent that does not answer
// fails it: the listing would not either.
func (m *Manager) haLookAtFences(ctx context.Context, s store.Server, c *agentclient.Client) (look haFenceLook, ok bool, err error) {
	if s.PoolID == "" {
		m.haForget(s.ID)
		return look, false, nil
	}
	p, err := m.st.Read().ServerPool(ctx, s.PoolID)
	if err != nil || !p.HA.Enabled {
		m.haForget(s.ID)
		return look, false, nil
	}
	st, err := c.HAStatus(ctx)
	if err != nil {
		return look, false, err
	}
	m.ha.mu.Lock()
	look.prev, look.known = m.ha.fences[s.ID]
	m.ha.fences[s.ID] = st.FencedCount
	m.ha.mu.Unlock()
	look.pool = p
	return look, true, nil
}

// haFencedSince reports whether the domains a reconciliation of server s
// found gone were destroyed by a fence of its agent: s is judged fenced
// already (its takeover is under way), or its agent is fenced now, or it
// counts fences other than those the previous reconciliation saw (an
// agent restarted since counts from 0 again). When this manager has not
// reconciled s before (it just started, or just took the lead), any fence
// of the agent counts: that errs on the side of restarting an HA VM whose
// domain is gone, as Oracle VM restarts an HA VM that stopped without the
// manager asking. When the agent cannot tell, it is not a fence.
func (m *Manager) haFencedSince(ctx context.Context, s store.Server, c *agentclient.Client, look haFenceLook) bool {
	if m.haJudgedFenced(s.ID) {
		return true
	}
	st, err := c.HAStatus(ctx)
	if err != nil {
		m.log.Warn("HA: a server whose domains are gone cannot say whether it fenced itself; its VMs are recorded Stopped", "server", s.Name, "err", err)
		return false
	}
	return st.Fenced || st.FencedCount > 0 && (!look.known || st.FencedCount != look.prev)
}

// haServerFenced judges server s of pool p fenced, though it answers: its
// agent fenced itself and destroyed every domain. The next HA round takes
// it over as a fenced server that answers again (haReturned): the VMs
// recorded there that it does not run are restarted (HA ones), found
// where their lease is, or recorded Stopped (VmStoppedByFence). A
// ServerFenced event is raised the first time.
func (m *Manager) haServerFenced(ctx context.Context, p store.ServerPool, s store.Server, why string) {
	m.ha.mu.Lock()
	first := !m.ha.fenced[s.ID]
	m.ha.fenced[s.ID] = true
	m.ha.mu.Unlock()
	if !first {
		return
	}
	desc := fmt.Sprintf("Server %s fenced itself (its agent could not renew its HA lease for the fence timeout %s and destroyed its domains) and answers again: %s; the VMs recorded there that it no longer runs are taken over: those with high availability are restarted, the others recorded Stopped",
		s.Name, p.HA.Fence, why)
	m.log.Warn(desc)
	m.event(ctx, "Warning", "ServerFenced", "Server", s.ID, s.Name, p.ID, desc)
}

// haAgentFenced is for the heartbeat, given an ha_fenced event of server
// s's agent (client c): the event proves the fence, so s is judged fenced
// at once (when its pool has high availability on) and the HA round that
// ends the heartbeat round takes it over, without waiting for a
// reconciliation to find its domains gone. The agent's fence count is
// taken as seen, so that a later reconciliation does not count this fence
// again once the takeover is done.
func (m *Manager) haAgentFenced(ctx context.Context, s store.Server, c *agentclient.Client, detail string) {
	if s.PoolID == "" {
		return
	}
	p, err := m.st.Read().ServerPool(ctx, s.PoolID)
	if err != nil || !p.HA.Enabled {
		return
	}
	m.haServerFenced(ctx, p, s, "its agent reported the fence ("+detail+")")
	if st, err := c.HAStatus(ctx); err == nil {
		m.ha.mu.Lock()
		m.ha.fences[s.ID] = st.FencedCount
		m.ha.mu.Unlock()
	}
}
