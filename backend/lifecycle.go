package backend

import (
	"context"
	"errors"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
	"xenmanager/store"
)

// VM statuses beyond Running and Stopped.
const (
	VMSuspended = "Suspended"
	VMPaused    = "Paused"
	// VMUnknown is shown, never stored, for a VM placed on a server that
	// is Unreachable: what runs there cannot be known until it answers,
	// when the VM shows its recorded status again.
	VMUnknown = "Unknown"
)

// shownVMStatus is the status a VM shows: its recorded status, or Unknown
// while the server it is placed on (whose status is serverStatus, "" for
// none) is Unreachable.
func shownVMStatus(recorded, serverStatus string) string {
	if serverStatus == ServerUnreachable {
		return VMUnknown
	}
	return recorded
}

// setVMState records a VM's placement and status.
func (m *Manager) setVMState(ctx context.Context, id, serverID, status string) error {
	if err := m.st.Write(ctx, func(q *store.Queries) error { return q.SetVMState(ctx, id, serverID, status) }); err != nil {
		return &Error{Kind: KindInternal, Msg: "record Vm state", Cause: err}
	}
	return nil
}

// recordVMState records a VM's placement and status for job j: at once,
// or, when j records it with its end (jobRun.vmAtEnd), in the end's write.
func (m *Manager) recordVMState(ctx context.Context, j *jobRun, id, serverID, status string) error {
	if j != nil && j.vmAtEnd {
		j.endVM = &vmState{id: id, serverID: serverID, status: status}
		return nil
	}
	return m.setVMState(ctx, id, serverID, status)
}

// serverOf returns the server a placed VM is on, with its client.
func (m *Manager) serverOf(ctx context.Context, v store.VM) (store.Server, *agentclient.Client, error) {
	s, err := m.st.Read().Server(ctx, v.ServerID)
	if err != nil {
		return store.Server{}, nil, &Error{Kind: KindInternal, Msg: "read the VM's server", Cause: err}
	}
	c, err := m.clients.get(s)
	return s, c, err
}

// StartVM starts a stopped VM where its start policy places it.
func (m *Manager) StartVM(ctx context.Context, ref Ref) (VM, error) {
	return m.vmJob(ctx, ref, "start", PermVMLifecycle, func(ctx context.Context, j *jobRun, v store.VM) error {
		return m.placeAndRun(ctx, j, v, "start", func(c *agentclient.Client) error { return c.StartVM(ctx, v.RepoID, v.ID) })
	})
}

// ResumeVM brings a suspended VM back, on the server placement picks (the
// saved state lives in the shared repository).
func (m *Manager) ResumeVM(ctx context.Context, ref Ref) (VM, error) {
	return m.vmJob(ctx, ref, "resume", PermVMLifecycle, func(ctx context.Context, j *jobRun, v store.VM) error {
		return m.placeAndRun(ctx, j, v, "resume", func(c *agentclient.Client) error { return c.RestoreVM(ctx, v.RepoID, v.ID, false) })
	})
}

// placeAndRun tries the placement candidates in order with run (start_vm or
// restore_vm) and records the VM Running on the first that takes it. It is
// how anything starts a VM where placement decides (start, resume, an HA
// restart): each candidate is claimed before it is tried (rank's first,
// reserve's others), so every rule of placement, anti-affinity among them,
// holds without the caller checking any.
func (m *Manager) placeAndRun(ctx context.Context, j *jobRun, v store.VM, verb string, run func(*agentclient.Client) error) error {
	return m.placeAndRunAvoiding(ctx, j, v, "", verb, run)
}

// placeCalls are the agent calls of placeAndRun's verbs, recorded as the
// job's step before each call.
var placeCalls = map[string]string{"start": stepStart, "resume": stepRestore}

// placeAndRunAvoiding is placeAndRun that leaves server avoid out when
// another server can take the VM, and uses it only when none can (an HA
// restart prefers the servers that did not just fence themselves).
func (m *Manager) placeAndRunAvoiding(ctx context.Context, j *jobRun, v store.VM, avoid, verb string, run func(*agentclient.Client) error) error {
	j.progress(10, "placing")
	// planned: the first candidate's step is recorded with the job's row
	// (planStart), placed before the job from the VM as it still is.
	var cands []choice
	var release func()
	var err error
	planned := false
	if p := j.takePlan(); p != nil {
		if verb != "start" || avoid != "" || p.read.vm != v {
			p.drop()
		} else {
			cands, release, planned = p.cands, p.release, true
		}
	}
	if !planned {
		cands, release, err = m.place.rank(ctx, v, avoid, 0)
		if err != nil && avoid != "" {
			cands, release, err = m.place.rank(ctx, v, "", 0)
		}
		if err != nil {
			return err
		}
	}
	releases := []func(){release}
	defer func() {
		for _, release := range releases {
			release()
		}
	}()
	var lastErr error
	for k, cand := range cands {
		if err := j.check(); err != nil {
			return err
		}
		if k > 0 { // rank claimed the first candidate only
			release, err := m.place.reserve(ctx, v, *cand.server)
			if err != nil {
				lastErr = err
				continue
			}
			releases = append(releases, release)
		}
		j.progress(50, verb+" on "+cand.server.Name)
		if k > 0 || !planned {
			if err := j.step(ctx, jobStep{Call: placeCalls[verb], VM: v.ID, Server: cand.server.ID}); err != nil {
				return err
			}
		} else if err := j.r.membership.checkAlive(); err != nil {
			return err // as j.step checks after its write
		}
		err := run(cand.client)
		if err != nil && errors.Is(err, agentclient.ErrUnreachable) {
			// The call may have succeeded with its answer lost: ask before
			// deciding, or the VM could end up running twice.
			if running, known := m.domainRunning(ctx, cand.client, v); known && running {
				m.log.Warn(verb+" answer lost but the domain runs; recording it", "vm", v.Name, "server", cand.server.Name)
				err = nil
			}
		}
		if err == nil {
			m.log.Info("vm "+verb, "vm", v.Name, "server", cand.server.Name)
			if j.vmAtEnd {
				// The claims hold until the job's end records the VM
				// there: anti-affinity counts it there meanwhile. Its
				// memory stays counted by the claim's reservation until
				// then, and by the capacity from then on: counted by both
				// at once, a batch's later starts found servers full.
				held := releases
				releases = nil
				j.afterEnd = append(j.afterEnd, func() {
					m.place.capacity.adjust(cand.server.ID, -v.MemoryMiB)
					for _, release := range held {
						release()
					}
				})
			} else {
				m.place.capacity.adjust(cand.server.ID, -v.MemoryMiB)
			}
			return m.recordVMState(ctx, j, v.ID, cand.server.ID, VMRunning)
		}
		lastErr = agentError(verb+" Vm "+v.Name, cand.server.Name, err)
		if f, ok := agentapi.AsFault(err); ok && f.Code == agentapi.FaultInsufficientResources {
			m.place.capacity.forget(cand.server.ID)
			continue // the server filled up since we asked; try the next
		}
		return lastErr
	}
	return lastErr
}

// StopVM shuts a running VM down cleanly.
func (m *Manager) StopVM(ctx context.Context, ref Ref) (VM, error) {
	return m.vmJob(ctx, ref, "stop", PermVMLifecycle, func(ctx context.Context, j *jobRun, v store.VM) error {
		return m.stopDomain(ctx, j, v, false)
	})
}

// KillVM destroys a running or paused VM's domain at once.
func (m *Manager) KillVM(ctx context.Context, ref Ref) (VM, error) {
	return m.vmJob(ctx, ref, "kill", PermVMLifecycle, func(ctx context.Context, j *jobRun, v store.VM) error {
		return m.stopDomain(ctx, j, v, true)
	})
}

func (m *Manager) stopDomain(ctx context.Context, j *jobRun, v store.VM, force bool) error {
	verb := "stop"
	if force {
		verb = "kill"
	}
	s, c, err := m.serverOf(ctx, v)
	if err != nil {
		return err
	}
	j.progress(50, verb+" on "+s.Name)
	if err := j.step(ctx, jobStep{Call: stepStop, VM: v.ID, Server: s.ID}); err != nil {
		return err
	}
	err = c.StopVM(ctx, v.RepoID, v.ID, force)
	if err != nil && errors.Is(err, agentclient.ErrUnreachable) {
		if running, known := m.domainRunning(ctx, c, v); known && !running {
			m.log.Warn(verb+" answer lost but the domain is gone; recording it", "vm", v.Name, "server", s.Name)
			err = nil
		}
	}
	if err != nil {
		f, ok := agentapi.AsFault(err)
		if !ok || f.Code != agentapi.FaultNotFound {
			return agentError(verb+" Vm "+v.Name, s.Name, err)
		}
		// The domain is already gone (it shut itself down): record that.
		m.log.Warn("vm was not running on its server; recording it stopped", "vm", v.Name, "server", s.Name)
	}
	m.place.capacity.adjust(s.ID, v.MemoryMiB)
	return m.recordVMState(ctx, j, v.ID, "", VMStopped)
}

// RestartVM reboots a running VM in place.
func (m *Manager) RestartVM(ctx context.Context, ref Ref) (VM, error) {
	return m.vmJob(ctx, ref, "restart", PermVMLifecycle, func(ctx context.Context, j *jobRun, v store.VM) error {
		s, c, err := m.serverOf(ctx, v)
		if err != nil {
			return err
		}
		if err := c.RebootVM(ctx, v.RepoID, v.ID, 0); err != nil {
			return agentError("restart Vm "+v.Name, s.Name, err)
		}
		return nil
	})
}

// PauseVM freezes a running VM in memory.
func (m *Manager) PauseVM(ctx context.Context, ref Ref) (VM, error) {
	return m.vmJob(ctx, ref, "pause", PermVMLifecycle, func(ctx context.Context, j *jobRun, v store.VM) error {
		s, c, err := m.serverOf(ctx, v)
		if err != nil {
			return err
		}
		if err := j.step(ctx, jobStep{Call: stepPause, VM: v.ID, Server: s.ID}); err != nil {
			return err
		}
		if err := c.PauseVM(ctx, v.RepoID, v.ID); err != nil {
			return agentError("pause Vm "+v.Name, s.Name, err)
		}
		return m.setVMState(ctx, v.ID, v.ServerID, VMPaused)
	})
}

// UnpauseVM lets a paused VM run again.
func (m *Manager) UnpauseVM(ctx context.Context, ref Ref) (VM, error) {
	return m.vmJob(ctx, ref, "unpause", PermVMLifecycle, func(ctx context.Context, j *jobRun, v store.VM) error {
		s, c, err := m.serverOf(ctx, v)
		if err != nil {
			return err
		}
		if err := j.step(ctx, jobStep{Call: stepUnpause, VM: v.ID, Server: s.ID}); err != nil {
			return err
		}
		if err := c.UnpauseVM(ctx, v.RepoID, v.ID); err != nil {
			return agentError("unpause Vm "+v.Name, s.Name, err)
		}
		return m.setVMState(ctx, v.ID, v.ServerID, VMRunning)
	})
}

// SuspendVM saves a running VM's memory to the repository and frees the
// server's memory.
func (m *Manager) SuspendVM(ctx context.Context, ref Ref) (VM, error) {
	return m.vmJob(ctx, ref, "suspend", PermVMLifecycle, func(ctx context.Context, j *jobRun, v store.VM) error {
		s, c, err := m.serverOf(ctx, v)
		if err != nil {
			return err
		}
		j.progress(20, "saving memory on "+s.Name)
		if err := c.SaveVM(ctx, v.RepoID, v.ID, false); err != nil {
			return agentError("suspend Vm "+v.Name, s.Name, err)
		}
		m.place.capacity.adjust(s.ID, v.MemoryMiB)
		return m.setVMState(ctx, v.ID, "", VMSuspended)
	})
}

// DeleteVM removes a stopped VM's files from the repository and its record.
func (m *Manager) DeleteVM(ctx context.Context, ref Ref) (VM, error) {
	return m.vmJob(ctx, ref, "delete", PermVMLifecycle, func(ctx context.Context, j *jobRun, v store.VM) error {
		srv, c, err := m.poolServer(ctx, v.PoolID)
		if errors.Is(err, errNoServer) {
			return errorf(KindInvalidState, "the VM's pool has no running server to delete its files through")
		}
		if err != nil {
			return err
		}
		if err := c.DeleteVM(ctx, v.RepoID, v.ID); err != nil {
			f, ok := agentapi.AsFault(err)
			if !ok || f.Code != agentapi.FaultNotFound {
				return agentError("delete Vm "+v.Name, srv.Name, err)
			}
			m.log.Warn("vm files were already gone", "vm", v.Name)
		}
		if err := m.st.Write(ctx, func(q *store.Queries) error { return q.DeleteVM(ctx, v.ID) }); err != nil {
			return &Error{Kind: KindInternal, Msg: "delete Vm record", Cause: err}
		}
		m.log.Info("vm deleted", "vm", v.Name, "id", v.ID)
		return nil
	})
}

// domainRunning asks the server whether the VM's domain is live there
// (domainLive), for when a call's answer was lost. known is false when the
// server does not answer this either.
func (m *Manager) domainRunning(ctx context.Context, c *agentclient.Client, v store.VM) (running, known bool) {
	state, known := m.domainState(ctx, c, v)
	return domainLive(state), known
}

// domainState asks the server for the state of the VM's domain there, ""
// when it has none; known is false when the server does not answer.
func (m *Manager) domainState(ctx context.Context, c *agentclient.Client, v store.VM) (state string, known bool) {
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.timeout)
	defer cancel()
	d, err := c.ListVM(qctx, v.RepoID, v.ID)
	if err == nil {
		return d.State, true
	}
	if f, ok := agentapi.AsFault(err); ok && f.Code == agentapi.FaultNotFound {
		return "", true
	}
	return "", false
}

// domainLive reports whether a domain in state runs a guest (running,
// blocked or paused): a crashed domain kept for inspection, or one
// suspended to its save file, does not.
func domainLive(state string) bool {
	switch state {
	case agentapi.StateRunning, agentapi.StateBlocked, agentapi.StatePaused:
		return true
	}
	return false
}
