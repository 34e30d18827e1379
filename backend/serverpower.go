package backend

import (
	"context"
	"errors"
	"time"

	"xenmanager/backend/agentclient"
	"xenmanager/store"
)

// Server statuses beyond Running.
const (
	ServerRestarting = "Restarting"
	ServerStopped    = "Stopped"
)

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
	return jobValue[Server](m.job(ctx, actorFrom(ctx), s.PoolID, verb+" Server", verb+" Server "+s.Name, []string{s.ID}, func(ctx context.Context, j *jobRun) (any, error) {
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
