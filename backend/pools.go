package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
	"xenmanager/store"
)

// CreateServerPool records a new, empty pool. Names need not be unique
// (docs/command-language.md); a duplicate name is allowed and later reads by name say so.
func (m *Manager) CreateServerPool(ctx context.Context, name, description string) (ServerPool, error) {
	name, err := ValidateName("ServerPool", name)
	if err != nil {
		return ServerPool{}, err
	}
	if err := m.authorize(ctx, PermManage); err != nil {
		return ServerPool{}, err
	}
	p := store.ServerPool{ID: NewID(TypeServerPool), Name: name, Description: description, CreatedAt: time.Now()}
	if err := m.st.Write(ctx, func(q *store.Queries) error { return q.InsertServerPool(ctx, p) }); err != nil {
		return ServerPool{}, &Error{Kind: KindInternal, Msg: "record server pool", Cause: err}
	}
	return m.ServerPool(ctx, Ref{ID: p.ID})
}

func (m *Manager) findPool(ctx context.Context, ref Ref) (store.ServerPool, error) {
	return resolve(ctx, m, m.poolKind(), ref)
}

// ServerPools lists the pools that pass f (name).
func (m *Manager) ServerPools(ctx context.Context, f Filter) ([]ServerPool, error) {
	c, inv, err := m.listing(ctx, f)
	if err != nil {
		return nil, err
	}
	return viewsOf(inv.poolList, func(p store.ServerPool) bool { return c.match(p.ID, p.Name, "", "", p.ID, "") },
		func(p store.ServerPool) (ServerPool, error) { return m.poolView(ctx, inv, p) })
}

// ServerPool returns the pool ref names.
func (m *Manager) ServerPool(ctx context.Context, ref Ref) (ServerPool, error) {
	return show(ctx, m, m.poolKind(), ref, func(inv *inventory, p store.ServerPool) (ServerPool, error) { return m.poolView(ctx, inv, p) })
}

func (m *Manager) poolView(ctx context.Context, inv *inventory, p store.ServerPool) (ServerPool, error) {
	v := ServerPool{ID: p.ID, Name: p.Name, Description: p.Description, StartPolicy: p.StartPolicy, CreatedAt: p.CreatedAt,
		HA: PoolHAView{Enabled: p.HA.Enabled, Renew: p.HA.Renew, Fence: p.HA.Fence, Margin: p.HA.Margin}}
	for _, s := range inv.serverList {
		if s.PoolID == p.ID {
			v.Servers = append(v.Servers, NamedRef{s.ID, s.Name})
			if s.IsMaster {
				v.Master = NamedRef{s.ID, s.Name}
			}
		}
	}
	for _, r := range inv.repoList {
		if r.PoolID == p.ID {
			v.Repositories = append(v.Repositories, NamedRef{r.ID, r.Name})
		}
		if r.ID == p.HA.RepositoryID {
			v.HA.Repository = NamedRef{r.ID, r.Name}
		}
	}
	n, err := m.st.Read().Count(ctx, "vms", "pool_id", p.ID)
	if err != nil {
		return ServerPool{}, &Error{Kind: KindInternal, Msg: "count VMs", Cause: err}
	}
	v.VMs = n
	return v, nil
}

// PoolEdit is what edit ServerPool changes; nil fields stay.
type PoolEdit struct {
	Name, Description, StartPolicy *string
	HA                             HAChange
}

// EditServerPool changes a pool's name, description, start policy or high
// availability. A change of high availability is a job on the pool, since
// every server of the pool is told (applyPoolHA) before it is recorded.
func (m *Manager) EditServerPool(ctx context.Context, ref Ref, e PoolEdit) (ServerPool, error) {
	p, err := findFor(ctx, m, m.poolKind(), ref, PermManage)
	if err != nil {
		return ServerPool{}, err
	}
	if e.Name != nil {
		if p.Name, err = ValidateName("ServerPool", *e.Name); err != nil {
			return ServerPool{}, err
		}
	}
	if e.Description != nil {
		p.Description = *e.Description
	}
	if e.StartPolicy != nil {
		if *e.StartPolicy != PolicyBestServer && *e.StartPolicy != PolicyCurrentServer {
			return ServerPool{}, errorf(KindInvalidArgument, "a pool's startPolicy is BEST_SERVER or CURRENT_SERVER, not %s", *e.StartPolicy)
		}
		p.StartPolicy = *e.StartPolicy
	}
	if e.HA.empty() {
		if err := m.st.Write(ctx, func(q *store.Queries) error { return q.UpdateServerPool(ctx, p) }); err != nil {
			return ServerPool{}, &Error{Kind: KindInternal, Msg: "record pool", Cause: err}
		}
		return m.ServerPool(ctx, Ref{ID: p.ID})
	}
	return jobValue[ServerPool](m.job(ctx, actorFrom(ctx), p.ID, "edit ServerPool", "edit ServerPool "+p.Name, []string{"pool:" + p.ID},
		func(ctx context.Context, j *jobRun) (any, error) {
			cur, err := m.st.Read().ServerPool(ctx, p.ID)
			if err != nil {
				return nil, &Error{Kind: KindInternal, Msg: "read pool", Cause: err}
			}
			ha, err := m.haSettings(ctx, cur, e.HA)
			if err != nil {
				return nil, err
			}
			j.progress(30, "telling the pool's servers")
			if err := m.applyPoolHA(ctx, cur, ha); err != nil {
				return nil, err
			}
			err = m.st.Write(ctx, func(q *store.Queries) error {
				if err := q.UpdateServerPool(ctx, p); err != nil {
					return err
				}
				return q.UpdateServerPoolHA(ctx, p.ID, ha)
			})
			if err != nil {
				return nil, &Error{Kind: KindInternal, Msg: "record pool", Cause: err}
			}
			if ha.Enabled != cur.HA.Enabled {
				word := "off"
				if ha.Enabled {
					word = "on"
				}
				m.event(ctx, "Info", "PoolHighAvailability", "ServerPool", p.ID, p.Name, p.ID,
					fmt.Sprintf("high availability of ServerPool %s is %s (lease renewal %s, fence timeout %s, restart margin %s)", p.Name, word, ha.Renew, ha.Fence, ha.Margin))
			}
			return m.ServerPool(ctx, Ref{ID: p.ID})
		}))
}

// AddServerToPool makes server a member of pool: the first server of a
// pool becomes its master (create_server_pool), the others join
// (join_server_pool); every member learns the members' addresses
// (set_pool_member_ip_list) and the new one the pool's repositories
// (add_repository). Then the store records it. A server that still
// believes it is in a pool (taken out of it while it did not answer) leaves
// that pool first (leaveStalePool).
func (m *Manager) AddServerToPool(ctx context.Context, server, pool Ref) (Server, error) {
	s, p, err := m.serverAndPool(ctx, server, pool)
	if err != nil {
		return Server{}, err
	}
	// The pool lock keeps a concurrent create Repository from missing this
	// server (it lists the pool's servers under the same lock).
	return jobValue[Server](m.job(ctx, actorFrom(ctx), p.ID, "add Server", fmt.Sprintf("add Server %s to ServerPool %s", s.Name, p.Name),
		[]string{"pool:" + p.ID, s.ID}, func(ctx context.Context, j *jobRun) (any, error) {
			return m.addServerToPool(ctx, s.ID, p)
		}))
}

// serverAndPool resolves the server and the pool of add and remove Server
// to and from ServerPool, each as it would be alone, and then checks that
// the actor may manage them.
func (m *Manager) serverAndPool(ctx context.Context, server, pool Ref) (store.Server, store.ServerPool, error) {
	s, err := m.findServer(ctx, server)
	if err != nil {
		return store.Server{}, store.ServerPool{}, err
	}
	p, err := findFor(ctx, m, m.poolKind(), pool, PermManage)
	if err != nil {
		return store.Server{}, store.ServerPool{}, err
	}
	return s, p, nil
}

func (m *Manager) addServerToPool(ctx context.Context, serverID string, p store.ServerPool) (Server, error) {
	s, err := m.st.Read().Server(ctx, serverID)
	if err != nil {
		return Server{}, &Error{Kind: KindInternal, Msg: "read server", Cause: err}
	}
	if s.PoolID == p.ID {
		return Server{}, errorf(KindConflict, "Server %s is already in ServerPool %s", s.Name, p.Name)
	}
	if s.PoolID != "" {
		other, err := optional(m.st.Read().ServerPool(ctx, s.PoolID))
		if err != nil {
			return Server{}, err
		}
		return Server{}, errorf(KindConflict, "Server %s is in ServerPool %s; remove it from there first", s.Name, other.Name)
	}
	members, err := m.st.Read().ServersInPool(ctx, p.ID)
	if err != nil {
		return Server{}, &Error{Kind: KindInternal, Msg: "read servers", Cause: err}
	}
	if err := sameHypervisor(s, p, members); err != nil {
		return Server{}, err
	}
	repos, err := m.st.Read().RepositoriesInPool(ctx, p.ID)
	if err != nil {
		return Server{}, &Error{Kind: KindInternal, Msg: "read repositories", Cause: err}
	}
	c, err := m.clients.get(s)
	if err != nil {
		return Server{}, err
	}
	if err := m.leaveStalePool(ctx, s, c); err != nil {
		return Server{}, err
	}
	what := fmt.Sprintf("add Server %s to ServerPool %s", s.Name, p.Name)
	params := agentapi.PoolParams{Alias: p.Name, PoolUUID: p.ID, Num: int64(len(members) + 1), Name: s.Name,
		Host: s.Address, Roles: s.Roles}
	master := len(members) == 0
	if master {
		err = c.CreateServerPool(ctx, params)
	} else {
		err = c.JoinServerPool(ctx, params)
	}
	if err != nil {
		return Server{}, agentError(what, s.Name, err)
	}
	for _, r := range repos {
		if err := c.AddRepository(ctx, r.FSLocation, r.MountPoint); err != nil {
			if lerr := c.LeaveServerPool(context.WithoutCancel(ctx), p.ID); lerr != nil {
				m.log.Error("could not undo the pool join", "server", s.Name, "err", lerr)
			}
			return Server{}, agentError(fmt.Sprintf("%s (repository %s)", what, r.Name), s.Name, err)
		}
	}
	if err := m.haJoin(ctx, p, s); err != nil {
		if lerr := c.LeaveServerPool(context.WithoutCancel(ctx), p.ID); lerr != nil {
			m.log.Error("could not undo the pool join", "server", s.Name, "err", lerr)
		}
		return Server{}, err
	}
	s.PoolID, s.IsMaster = p.ID, master
	err = m.st.Write(ctx, func(q *store.Queries) error {
		if err := q.SetServerPool(ctx, s.ID, p.ID); err != nil {
			return err
		}
		return q.UpdateServerSettings(ctx, s)
	})
	if err != nil {
		return Server{}, &Error{Kind: KindInternal, Msg: "record pool membership", Cause: err}
	}
	m.updateMemberIPs(ctx, p.ID)
	return m.Server(ctx, Ref{ID: s.ID})
}

// sameHypervisor refuses server s for pool p when p's members run another
// hypervisor type: a VM of the pool must be able to start on, and migrate
// to, any of its servers, and a domain cannot move between hypervisors (nor
// a simulated guest onto a real host). An empty pool takes any type.
func sameHypervisor(s store.Server, p store.ServerPool, members []store.Server) error {
	var others []NamedRef
	theirs := ""
	for _, o := range members {
		if o.HypervisorType == s.HypervisorType {
			continue
		}
		if theirs == "" {
			theirs = o.HypervisorType
		}
		others = append(others, NamedRef{o.ID, o.Name})
	}
	if len(others) == 0 {
		return nil
	}
	return errorf(KindInvalidArgument,
		"Server %s runs hypervisor %s but ServerPool %s has servers running %s (%s); a pool keeps servers of one hypervisor type, so that its VMs can run and migrate on any of them: add %s to a pool of %s servers or to an empty one",
		s.Name, s.HypervisorType, p.Name, theirs, namesOf(others), s.Name, s.HypervisorType)
}

// updateMemberIPs tells every member of the pool the members' addresses
// (only these may send migrations); a member that does not answer is logged
// and told at the next change.
func (m *Manager) updateMemberIPs(ctx context.Context, poolID string) {
	members, err := m.st.Read().ServersInPool(ctx, poolID)
	if err != nil {
		m.log.Error("read pool members", "pool", poolID, "err", err)
		return
	}
	ips := make([]string, 0, len(members))
	for _, s := range members {
		ips = append(ips, s.Address)
	}
	for _, s := range members {
		c, err := m.clients.get(s)
		if err == nil {
			err = c.SetPoolMemberIPList(ctx, ips)
		}
		if err != nil {
			m.log.Warn("set_pool_member_ip_list failed", "server", s.Name, "err", err)
		}
	}
}

// RemoveServerFromPool takes a server out of its pool (leave_server_pool),
// refused while VMs run there. If it was the master, another member becomes
// master in the manager's records (chooseMaster), and an event says so.
//
// With force, a server the manager records as not answering (isSilent) is
// taken out in the records only, its agent told nothing
// (removeSilentServer), once no VM is recorded on it; force on a server
// that answers is the ordinary removal.
func (m *Manager) RemoveServerFromPool(ctx context.Context, server, pool Ref, force bool) (Server, error) {
	s, p, err := m.serverAndPool(ctx, server, pool)
	if err != nil {
		return Server{}, err
	}
	return jobValue[Server](m.job(ctx, actorFrom(ctx), p.ID, "remove Server", fmt.Sprintf("remove Server %s from ServerPool %s", s.Name, p.Name),
		[]string{"pool:" + p.ID, s.ID}, func(ctx context.Context, j *jobRun) (any, error) {
			cur, err := m.st.Read().Server(ctx, s.ID)
			if err != nil {
				return nil, &Error{Kind: KindInternal, Msg: "read server", Cause: err}
			}
			if cur.PoolID != p.ID {
				return nil, errorf(KindInvalidState, "Server %s is not in ServerPool %s", cur.Name, p.Name)
			}
			if force && isSilent(cur) {
				return m.removeSilentServer(ctx, cur, p)
			}
			restore, err := m.fence(ctx, cur, ServerLeaving)
			if err != nil {
				return nil, err
			}
			defer restore() // the server stays discovered, in no pool, as it was
			names, err := m.vmsOn(ctx, cur.ID)
			if err != nil {
				return nil, err
			}
			if err := refuseWhileVMs(cur, "remove from ServerPool", names); err != nil {
				return nil, err
			}
			// Read the repositories to unmount before the server leaves, so that
			// a failing store stops the job before the agent changes anything
			// (the pool lock keeps the list as it is until the job ends).
			repos, err := m.st.Read().RepositoriesInPool(ctx, p.ID)
			if err != nil {
				return nil, &Error{Kind: KindInternal, Msg: "read repositories", Cause: err}
			}
			c, err := m.clients.get(cur)
			if err != nil {
				return nil, err
			}
			if p.HA.Enabled {
				m.haDisable(ctx, cur)
			}
			if err := c.LeaveServerPool(ctx, p.ID); err != nil {
				what := "remove Server " + cur.Name + " from ServerPool " + p.Name
				if errors.Is(err, agentclient.ErrUnreachable) {
					what += " (if the server is dead, wait until it is Unreachable and add force=Yes)"
				}
				return nil, agentError(what, cur.Name, err)
			}
			// Unmount the pool's repositories there (the files stay).
			for _, r := range repos {
				if err := c.DeleteRepository(ctx, r.ID, false); err != nil {
					m.log.Warn("could not unmount repository from the leaving server", "server", cur.Name, "repository", r.Name, "err", err)
				}
			}
			if err := m.leavePoolRecords(ctx, cur, p); err != nil {
				return nil, err
			}
			m.updateMemberIPs(ctx, p.ID)
			return m.Server(ctx, Ref{ID: cur.ID})
		}))
}

// DeleteServerPool deletes an empty pool; one with servers or repositories
// fails naming them.
func (m *Manager) DeleteServerPool(ctx context.Context, ref Ref) (ServerPool, error) {
	p, err := findFor(ctx, m, m.poolKind(), ref, PermManage)
	if err != nil {
		return ServerPool{}, err
	}
	return jobValue[ServerPool](m.job(ctx, actorFrom(ctx), p.ID, "delete ServerPool", "delete ServerPool "+p.Name, []string{"pool:" + p.ID}, func(ctx context.Context, j *jobRun) (any, error) {
		view, err := m.ServerPool(ctx, Ref{ID: p.ID})
		if err != nil {
			return nil, err
		}
		if len(view.Servers) > 0 {
			return nil, errorf(KindConflict, "ServerPool %s is in use by %d servers (%s); remove them first", p.Name, len(view.Servers), namesOf(view.Servers))
		}
		n, err := counted(m.st.Read().CountWhere(ctx, "networks.pool_id", p.ID))
		if err != nil {
			return nil, err
		}
		if n > 0 {
			return nil, errorf(KindConflict, "ServerPool %s is in use by %d Networks; delete them first", p.Name, n)
		}
		if len(view.Repositories) > 0 {
			return nil, errorf(KindConflict, "ServerPool %s is in use by %d repositories (%s); delete them first", p.Name, len(view.Repositories), namesOf(view.Repositories))
		}
		if err := m.st.Write(ctx, func(q *store.Queries) error { return q.DeleteServerPool(ctx, p.ID) }); err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "delete pool record", Cause: err}
		}
		return view, nil
	}))
}

func namesOf(refs []NamedRef) string {
	names := make([]string, 0, len(refs))
	for i, r := range refs {
		if i == 10 {
			names = append(names, fmt.Sprintf("and %d more", len(refs)-10))
			break
		}
		names = append(names, r.Name)
	}
	return strings.Join(names, ", ")
}

// PoolRefresh is the outcome of refreshing one server of a pool.
type PoolRefresh struct {
	Server NamedRef
	Result Refreshed
	Err    error
}

// RefreshServerPool refreshes every server of a pool at once (see
// RefreshServer), one job per server; it fails when any did, after all
// have been tried.
func (m *Manager) RefreshServerPool(ctx context.Context, ref Ref) ([]PoolRefresh, error) {
	p, err := findFor(ctx, m, m.poolKind(), ref, PermVMLifecycle)
	if err != nil {
		return nil, err
	}
	servers, err := m.st.Read().ServersInPool(ctx, p.ID)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read servers", Cause: err}
	}
	if len(servers) == 0 {
		return nil, errorf(KindInvalidState, "ServerPool %s has no servers to refresh", p.Name)
	}
	out := make([]PoolRefresh, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		out[i].Server = NamedRef{s.ID, s.Name}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].Result, out[i].Err = m.RefreshServer(ctx, Ref{ID: s.ID})
		}()
	}
	wg.Wait()
	var failed []string
	for _, r := range out {
		if r.Err != nil {
			failed = append(failed, r.Server.Name)
		}
	}
	if len(failed) > 0 {
		return out, errorf(KindAgentFault, "refresh ServerPool %s: %d of %d servers failed (%s)", p.Name, len(failed), len(out), strings.Join(failed, ", "))
	}
	return out, nil
}
