package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
	"xenmanager/store"
)

// Server statuses beyond Running.
const (
	ServerRestarting = "Restarting"
	ServerStopped    = "Stopped"
)

// EditServerRequest holds the settings to change; nil fields stay.
type EditServerRequest struct {
	Name        *string
	Maintenance *bool
	Roles       *string // "xen,utility", "xen", "utility"
}

// EditServer renames a server, puts it in or out of maintenance mode
// (nothing new is placed on a server in maintenance), or changes its roles
// (update_server_roles on the agent).
func (m *Manager) EditServer(ctx context.Context, ref Ref, req EditServerRequest) (Server, error) {
	s, err := m.findServer(ctx, ref)
	if err != nil {
		return Server{}, err
	}
	if err := m.authorize(ctx, PermManage); err != nil {
		return Server{}, err
	}
	return jobValue[Server](m.job(ctx, actorFrom(ctx), s.PoolID, "edit Server "+s.Name, []string{s.ID}, func(ctx context.Context, j *jobRun) (any, error) {
		cur, err := m.st.Read().Server(ctx, s.ID)
		if err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "read server", Cause: err}
		}
		if req.Name != nil {
			if err := ValidateName("Server", *req.Name); err != nil {
				return nil, err
			}
			cur.Name = *req.Name
		}
		if req.Maintenance != nil {
			cur.Maintenance = *req.Maintenance
		}
		if req.Roles != nil && *req.Roles != cur.Roles {
			c, err := m.clients.get(cur)
			if err != nil {
				return nil, err
			}
			if err := c.UpdateServerRoles(ctx, *req.Roles); err != nil {
				return nil, agentError("edit Server "+cur.Name, cur.Name, err)
			}
			cur.Roles = *req.Roles
		}
		if err := m.st.Write(ctx, func(q *store.Queries) error { return q.UpdateServerSettings(ctx, cur) }); err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "record server settings", Cause: err}
		}
		return m.Server(ctx, Ref{ID: s.ID})
	}))
}

// vmsOn returns the names of the VMs placed on server id (running, paused).
func (m *Manager) vmsOn(ctx context.Context, id string) ([]string, error) {
	vms, err := m.st.Read().VMsOnServer(ctx, id)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read VMs", Cause: err}
	}
	names := make([]string, len(vms))
	for i, v := range vms {
		names[i] = v.Name
	}
	return names, nil
}

// Transitional server statuses: placement skips them.
const (
	ServerLeaving  = "Leaving"
	ServerStopping = "Stopping"
)

// fence takes a server out of placement (status) before a job checks that
// no VM runs there, so that no start can land on it in between; restore
// puts the status back when the job stops short.
func (m *Manager) fence(ctx context.Context, s store.Server, status string) (restore func(), err error) {
	reserved, err := m.place.exclude(s.ID, func() error { return m.setServerStatus(ctx, s.ID, status) })
	if reserved {
		return nil, errorf(KindConflict, "Server %s is receiving a VM right now; try again when it has started", s.Name)
	}
	if err != nil {
		return nil, err
	}
	return func() {
		if err := m.setServerStatus(context.WithoutCancel(ctx), s.ID, s.Status); err != nil {
			m.log.Error("could not restore a server's status", "server", s.Name, "err", err)
		}
	}, nil
}

func refuseWhileVMs(s store.Server, verb string, names []string) error {
	if len(names) == 0 {
		return nil
	}
	shown := names
	if len(shown) > 10 {
		shown = append(shown[:10:10], fmt.Sprintf("and %d more", len(names)-10))
	}
	return errorf(KindInvalidState, "Server %s runs %d VMs (%s); %s needs none: stop or migrate them first", s.Name, len(names), strings.Join(shown, ", "), verb)
}

// RemoveServerFromPool takes a server out of its pool (leave_server_pool),
// refused while VMs run there. If it was the master, another member becomes
// master in the manager's records.
func (m *Manager) RemoveServerFromPool(ctx context.Context, server, pool Ref) (Server, error) {
	s, err := m.findServer(ctx, server)
	if err != nil {
		return Server{}, err
	}
	p, err := m.findPool(ctx, pool)
	if err != nil {
		return Server{}, err
	}
	if err := m.authorize(ctx, PermManage); err != nil {
		return Server{}, err
	}
	return jobValue[Server](m.job(ctx, actorFrom(ctx), p.ID, fmt.Sprintf("remove Server %s from ServerPool %s", s.Name, p.Name),
		[]string{"pool:" + p.ID, s.ID}, func(ctx context.Context, j *jobRun) (any, error) {
			cur, err := m.st.Read().Server(ctx, s.ID)
			if err != nil {
				return nil, &Error{Kind: KindInternal, Msg: "read server", Cause: err}
			}
			if cur.PoolID != p.ID {
				return nil, errorf(KindInvalidState, "Server %s is not in ServerPool %s", cur.Name, p.Name)
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
			c, err := m.clients.get(cur)
			if err != nil {
				return nil, err
			}
			if err := c.LeaveServerPool(ctx, p.ID); err != nil {
				return nil, agentError("remove Server "+cur.Name+" from ServerPool "+p.Name, cur.Name, err)
			}
			// Unmount the pool's repositories there (the files stay).
			repos, _ := m.st.Read().RepositoriesInPool(ctx, p.ID)
			for _, r := range repos {
				if err := c.DeleteRepository(ctx, r.ID, false); err != nil {
					m.log.Warn("could not unmount repository from the leaving server", "server", cur.Name, "repository", r.Name, "err", err)
				}
			}
			wasMaster := cur.IsMaster
			cur.IsMaster = false
			err = m.st.Write(ctx, func(q *store.Queries) error {
				if err := q.SetServerPool(ctx, cur.ID, ""); err != nil {
					return err
				}
				if err := q.UpdateServerSettings(ctx, cur); err != nil {
					return err
				}
				if !wasMaster {
					return nil
				}
				rest, err := q.ServersInPool(ctx, p.ID)
				if err != nil || len(rest) == 0 {
					return err
				}
				rest[0].IsMaster = true
				return q.UpdateServerSettings(ctx, rest[0])
			})
			if err != nil {
				return nil, &Error{Kind: KindInternal, Msg: "record pool membership", Cause: err}
			}
			m.updateMemberIPs(ctx, p.ID)
			return m.Server(ctx, Ref{ID: cur.ID})
		}))
}

// RestartServer reboots a server through its agent (sys_reboot), refused
// while VMs run there, and waits until the agent answers again; the server
// is then rediscovered (its hardware read again) and Running.
func (m *Manager) RestartServer(ctx context.Context, ref Ref) (Server, error) {
	return m.powerServer(ctx, ref, "restart")
}

// StopServer powers a server off through its agent (sys_shutdown), refused
// while VMs run there. It is Stopped until discovered again.
func (m *Manager) StopServer(ctx context.Context, ref Ref) (Server, error) {
	return m.powerServer(ctx, ref, "stop")
}

// restartWait bounds how long a restart waits for the agent to come back.
const restartWait = 10 * time.Minute

func (m *Manager) powerServer(ctx context.Context, ref Ref, verb string) (Server, error) {
	s, err := m.findServer(ctx, ref)
	if err != nil {
		return Server{}, err
	}
	if err := m.authorize(ctx, PermManage); err != nil {
		return Server{}, err
	}
	return jobValue[Server](m.job(ctx, actorFrom(ctx), s.PoolID, verb+" Server "+s.Name, []string{s.ID}, func(ctx context.Context, j *jobRun) (any, error) {
		cur, err := m.st.Read().Server(ctx, s.ID)
		if err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "read server", Cause: err}
		}
		if cur.Status != ServerRunning {
			return nil, errorf(KindInvalidState, "Server %s is %s; %s needs Running", cur.Name, cur.Status, verb)
		}
		restore, err := m.fence(ctx, cur, ServerStopping)
		if err != nil {
			return nil, err
		}
		names, err := m.vmsOn(ctx, cur.ID)
		if err == nil {
			err = refuseWhileVMs(cur, verb, names)
		}
		if err != nil {
			restore()
			return nil, err
		}
		c, err := m.clients.get(cur)
		if err != nil {
			return nil, err
		}
		if verb == "stop" {
			// A host that powers off may go before its answer does.
			if err := c.SysShutdown(ctx); err != nil && !errors.Is(err, agentclient.ErrUnreachable) {
				restore()
				return nil, agentError("stop Server "+cur.Name, cur.Name, err)
			}
			if err := m.setServerStatus(ctx, cur.ID, ServerStopped); err != nil {
				return nil, err
			}
			return m.Server(ctx, Ref{ID: cur.ID})
		}
		if err := c.SysReboot(ctx); err != nil {
			restore()
			return nil, agentError("restart Server "+cur.Name, cur.Name, err)
		}
		if err := m.setServerStatus(ctx, cur.ID, ServerRestarting); err != nil {
			return nil, err
		}
		j.progress(30, "waiting for "+cur.Name+" to come back")
		// A server that does not come back is Unreachable: the heartbeats
		// watch it and bring it back to Running when it answers.
		if err := m.awaitAgent(j.abort, cur); err != nil {
			m.setServerStatus(ctx, cur.ID, ServerUnreachable)
			return nil, err
		}
		j.progress(80, "rediscovering "+cur.Name)
		if err := m.refreshHardware(ctx, cur); err != nil {
			m.setServerStatus(ctx, cur.ID, ServerUnreachable)
			return nil, err
		}
		if err := m.setServerStatus(ctx, cur.ID, ServerRunning); err != nil {
			return nil, err
		}
		m.event(ctx, "Info", "ServerRestarted", "Server", cur.ID, cur.Name, cur.PoolID, "server "+cur.Name+" restarted and was rediscovered")
		return m.Server(ctx, Ref{ID: cur.ID})
	}))
}

// awaitAgent polls the agent until it answers (it first stops answering
// while the host reboots), at most restartWait.
func (m *Manager) awaitAgent(ctx context.Context, s store.Server) error {
	c, err := m.clients.get(s)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(restartWait)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := c.Echo(pctx, "are you back")
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return errorf(KindAgentUnreachable, "Server %s did not come back within %s of its restart", s.Name, restartWait)
		}
		select {
		case <-ctx.Done():
			return errorf(KindAgentUnreachable, "gave up waiting for Server %s to come back", s.Name)
		case <-tick.C:
		}
	}
}

// refreshHardware reads the server's hardware again after a restart.
func (m *Manager) refreshHardware(ctx context.Context, s store.Server) error {
	c, err := m.clients.get(s)
	if err != nil {
		return err
	}
	hw, err := c.DiscoverHardware(ctx)
	if err != nil {
		return agentError("rediscover Server "+s.Name, s.Name, err)
	}
	s.CPUSockets, s.CoresPerSocket, s.ThreadsPerCore = hw.CPUSockets, hw.CoresPerSocket, hw.ThreadsPerCore
	s.TotalMemoryMiB, s.Dom0MemoryMiB, s.CPUKHz = hw.TotalMemoryMiB, hw.Dom0MemoryMiB, hw.CPUKHz
	s.Status = ServerRunning
	err = m.st.Write(ctx, func(q *store.Queries) error { _, err := q.UpsertServer(ctx, s); return err })
	if err != nil {
		return &Error{Kind: KindInternal, Msg: "record server hardware", Cause: err}
	}
	return nil
}

func (m *Manager) setServerStatus(ctx context.Context, id, status string) error {
	if err := m.st.Write(ctx, func(q *store.Queries) error { return q.SetServerStatus(ctx, id, status) }); err != nil {
		return &Error{Kind: KindInternal, Msg: "record server status", Cause: err}
	}
	return nil
}

// DeleteServer forgets a server that is in no pool, releasing its ownership.
// An agent that does not answer is forgotten all the same (a dead server
// must be removable), and the log says so.
func (m *Manager) DeleteServer(ctx context.Context, ref Ref) (Server, error) {
	s, err := m.findServer(ctx, ref)
	if err != nil {
		return Server{}, err
	}
	if err := m.authorize(ctx, PermManage); err != nil {
		return Server{}, err
	}
	view, err := m.Server(ctx, Ref{ID: s.ID})
	if err != nil {
		return Server{}, err
	}
	return jobValue[Server](m.job(ctx, actorFrom(ctx), "", "delete Server "+s.Name, []string{s.ID}, func(ctx context.Context, j *jobRun) (any, error) {
		cur, err := m.st.Read().Server(ctx, s.ID)
		if err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "read server", Cause: err}
		}
		if cur.PoolID != "" {
			p, _ := m.st.Read().ServerPool(ctx, cur.PoolID)
			return nil, errorf(KindConflict, "Server %s is in use by ServerPool %s; remove it from the pool first", cur.Name, p.Name)
		}
		if c, err := m.clients.get(cur); err == nil {
			if err := c.ReleaseOwnership(ctx, m.uuid); err != nil {
				m.log.Warn("release_ownership failed; forgetting the server anyway", "server", cur.Name, "err", err)
			}
		}
		if err := m.st.Write(ctx, func(q *store.Queries) error { return q.DeleteServer(ctx, cur.ID) }); err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "delete server record", Cause: err}
		}
		m.clients.forget(cur.ID)
		return view, nil
	}))
}

// DeleteServerPool deletes an empty pool; one with servers or repositories
// fails naming them.
func (m *Manager) DeleteServerPool(ctx context.Context, ref Ref) (ServerPool, error) {
	p, err := m.findPool(ctx, ref)
	if err != nil {
		return ServerPool{}, err
	}
	if err := m.authorize(ctx, PermManage); err != nil {
		return ServerPool{}, err
	}
	return jobValue[ServerPool](m.job(ctx, actorFrom(ctx), p.ID, "delete ServerPool "+p.Name, []string{"pool:" + p.ID}, func(ctx context.Context, j *jobRun) (any, error) {
		view, err := m.ServerPool(ctx, Ref{ID: p.ID})
		if err != nil {
			return nil, err
		}
		if len(view.Servers) > 0 {
			return nil, errorf(KindConflict, "ServerPool %s is in use by %d servers (%s); remove them first", p.Name, len(view.Servers), namesOf(view.Servers))
		}
		if n, _ := m.st.Read().CountWhere(ctx, "networks.pool_id", p.ID); n > 0 {
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

// DeleteRepository forgets a repository without VMs: every server of its
// pool unmounts it (delete_repository without erase: the files stay).
func (m *Manager) DeleteRepository(ctx context.Context, ref Ref) (Repository, error) {
	r, err := m.findRepository(ctx, ref)
	if err != nil {
		return Repository{}, err
	}
	if err := m.authorize(ctx, PermManage); err != nil {
		return Repository{}, err
	}
	return jobValue[Repository](m.job(ctx, actorFrom(ctx), r.PoolID, "delete Repository "+r.Name, []string{"pool:" + r.PoolID}, func(ctx context.Context, j *jobRun) (any, error) {
		view, err := m.Repository(ctx, Ref{ID: r.ID})
		if err != nil {
			return nil, err
		}
		// Check and delete the record in one transaction, so that a VM or disk
		// created meanwhile either lands before (and the delete is refused) or
		// fails on the missing repository; only then unmount it.
		err = m.st.Write(ctx, func(q *store.Queries) error {
			if n, err := q.CountWhere(ctx, "virtual_disks.repo_id", r.ID); err != nil || n > 0 {
				if err != nil {
					return err
				}
				return errorf(KindConflict, "Repository %s is in use by %d VirtualDisks; delete them first (list VirtualDisk repository=%s)", r.Name, n, r.Name)
			}
			if n, err := q.CountWhere(ctx, "virtual_cdroms.repo_id", r.ID); err != nil || n > 0 {
				if err != nil {
					return err
				}
				return errorf(KindConflict, "Repository %s is in use by %d VirtualCdroms; delete them first (list VirtualCdrom repository=%s)", r.Name, n, r.Name)
			}
			n, err := q.Count(ctx, "vms", "repo_id", r.ID)
			if err != nil {
				return err
			}
			if n > 0 {
				vms, _ := m.ListVMs(ctx, Filter{Repository: Ref{ID: r.ID}})
				names := make([]NamedRef, len(vms))
				for i, v := range vms {
					names[i] = NamedRef{v.ID, v.Name}
				}
				return errorf(KindConflict, "Repository %s is in use by %d VMs (%s); delete or move them first", r.Name, n, namesOf(names))
			}
			return q.DeleteRepository(ctx, r.ID)
		})
		if err != nil {
			if KindOf(err) != KindInternal {
				return nil, err
			}
			return nil, &Error{Kind: KindInternal, Msg: "delete repository record", Cause: err}
		}
		servers, _ := m.st.Read().ServersInPool(ctx, r.PoolID)
		for _, s := range servers {
			c, err := m.clients.get(s)
			if err != nil {
				continue
			}
			if err := c.DeleteRepository(ctx, r.ID, false); err != nil {
				if f, ok := agentapi.AsFault(err); !ok || f.Code != agentapi.FaultNotFound {
					m.log.Warn("a server did not unmount the deleted repository", "repository", r.Name, "server", s.Name, "err", err)
				}
			}
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
