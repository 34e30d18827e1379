package backend

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
	"xenmanager/store"
)

// jobStep is the agent call a job is about to make on a VM, recorded in the
// job's row before the call (jobRun.step): when the job's manager dies, the
// leader asks the agents named here how far the call got, and finishes or
// undoes the job by what they say (settleOrphan). Only the calls that put a
// VM somewhere or take it away have a step; the docs list, per verb, what
// recovery does (docs/architecture.md, "Jobs whose manager died").
type jobStep struct {
	// Call is the agent method: one of the step calls below.
	Call string `json:"call"`
	// VM is the VM the call moves; for a clone's copy, the id the copy
	// (a VM or a template) is being made under.
	VM string `json:"vm"`
	// Server is the server called (for migrate_vm, the source).
	Server string `json:"server"`
	// To is migrate_vm's destination.
	To string `json:"to,omitempty"`
	// A clone's copy: what it has made so far on Server, for the leader to
	// remove unless the copy was recorded. Repo is the repository of the
	// copy's vm.cfg, Template says the copy is a template, Config that its
	// vm.cfg may have been written, Disks the disk images it made.
	Repo     string     `json:"repo,omitempty"`
	Template bool       `json:"template,omitempty"`
	Config   bool       `json:"config,omitempty"`
	Disks    []stepDisk `json:"disks,omitempty"`
}

// stepDisk is a disk image a clone's copy made: VirtualDisks/<ID>.img of
// repository Repo.
type stepDisk struct {
	Repo string `json:"repo"`
	ID   string `json:"id"`
}

// The calls a job records a step for.
const (
	stepStart   = agentapi.MethodStartVM
	stepRestore = agentapi.MethodRestoreVM
	stepStop    = agentapi.MethodStopVM
	stepMigrate = agentapi.MethodMigrateVM
	stepPause   = agentapi.MethodPauseVM
	stepUnpause = agentapi.MethodUnpauseVM
	// A clone's copy: copy_file of a disk, then the vm.cfg.
	stepCopy           = agentapi.MethodCopyFile
	stepCreateVM       = agentapi.MethodCreateVM
	stepCreateTemplate = agentapi.MethodCreateTemplate
)

// step records s as the step job j is at, before it makes the call: a job
// whose step cannot be recorded, or that has ended meanwhile (the leader
// took this manager for dead), does not make it; nor does one whose
// manager may now be taken for dead (memberState.checkAlive).
func (j *jobRun) step(ctx context.Context, s jobStep) error {
	b, err := json.Marshal(s)
	if err != nil {
		return &Error{Kind: KindInternal, Msg: "encode job step", Cause: err}
	}
	ctx = context.WithoutCancel(ctx)
	err = j.r.st.SetJobStep(ctx, j.id, string(b))
	if errors.Is(err, store.ErrNotFound) {
		return errorf(KindConflict, "job %s was ended by the leader while this manager seemed dead: it makes no further agent call", j.id)
	}
	if err != nil {
		return &Error{Kind: KindInternal, Msg: "record job step", Cause: err}
	}
	return j.r.membership.checkAlive()
}

// orphanOutcome is how the leader ends a job whose manager died: its
// status, result or error, and the VM's state to record with it (none when
// vm is "") and the servers whose free memory that changes.
type orphanOutcome struct {
	status, result, errText string
	vm, server, vmStatus    string
	touched                 []string
}

// settleOrphan asks the agents how far the recorded step of job got and
// returns how to end it; who names the dead manager ("manager X (host, pid
// N) stopped"). A job with no step, a step this version does not know, a
// VM gone from the store or a server that does not answer ends Failure,
// the VM left as recorded for the reconciliation that follows to settle.
// It makes no write: the caller ends the job and records the VM in one
// transaction, if the job is still Running then.
func (m *Manager) settleOrphan(ctx context.Context, job store.Job, who string) orphanOutcome {
	const tail = "; the leader ended the job and reconciled the VMs with the agents"
	fail := func(why string) orphanOutcome {
		return orphanOutcome{status: JobFailure, errText: who + " while the job ran" + why + tail}
	}
	if job.Step == "" {
		return fail("")
	}
	var s jobStep
	if err := json.Unmarshal([]byte(job.Step), &s); err != nil || s.VM == "" || s.Server == "" {
		return fail(" (its step is unreadable)")
	}
	switch s.Call {
	case stepCopy, stepCreateVM, stepCreateTemplate:
		return m.settleOrphanCopy(ctx, s, who)
	}
	v, err := m.st.Read().VM(ctx, s.VM)
	if err != nil {
		return fail(" (" + s.Call + " of a VM that is no longer recorded)")
	}
	src, srcState, srcKnown := m.stepServerState(ctx, s.Server, v)
	at := fmt.Sprintf(" (%s sent to server %s)", s.Call, src)
	if !srcKnown {
		return fail(at + "; server " + src + " does not answer, so the VM stays as recorded until it does")
	}
	touched := []string{s.Server, v.ServerID}
	if s.To != "" {
		touched = append(touched, s.To)
	}
	done := func(vmStatus, server, what string) orphanOutcome {
		return orphanOutcome{status: JobSuccess, vm: v.ID, server: server, vmStatus: vmStatus, touched: touched,
			result: "finished by the leader: " + who + " while the job ran" + at + "; " + what}
	}
	undone := func(vmStatus, server, what string) orphanOutcome {
		o := fail(at + "; " + what)
		o.vm, o.server, o.vmStatus, o.touched = v.ID, server, vmStatus, touched
		return o
	}
	switch s.Call {
	case stepStart, stepRestore:
		if domainLive(srcState) {
			return done(VMRunning, s.Server, "Vm "+v.Name+" runs there")
		}
		// The VM stays as it was before the call: Stopped for a start,
		// recorded on its fenced server for an HA restart, which the HA
		// round then tries again (recording it Stopped would end that).
		return fail(at + "; Vm " + v.Name + " does not run there: it stays as recorded before the start")
	case stepStop:
		if !domainLive(srcState) {
			return done(VMStopped, "", "Vm "+v.Name+" no longer runs there: it is Stopped")
		}
		return undone(VMRunning, s.Server, "Vm "+v.Name+" still runs there")
	case stepPause, stepUnpause:
		want, wantStatus, other := agentapi.StatePaused, VMPaused, VMRunning
		if s.Call == stepUnpause {
			want, wantStatus, other = agentapi.StateRunning, VMRunning, VMPaused
		}
		switch {
		case srcState == want:
			return done(wantStatus, s.Server, "Vm "+v.Name+" is "+wantStatus+" there")
		case domainLive(srcState):
			return undone(other, s.Server, "Vm "+v.Name+" is still "+other+" there")
		}
		return undone(VMStopped, "", "Vm "+v.Name+" no longer runs there: it is Stopped")
	case stepMigrate:
		dst, dstState, dstKnown := m.stepServerState(ctx, s.To, v)
		at = fmt.Sprintf(" (%s sent to server %s, to server %s)", s.Call, src, dst)
		onSrc, onDst := domainLive(srcState), dstKnown && domainLive(dstState)
		if !onDst && dstKnown {
			m.cleanupMigrationTarget(ctx, s.To, v)
		}
		switch {
		case !dstKnown:
			return fail(at + "; server " + dst + " does not answer, so the VM stays as recorded until it does")
		case onDst && onSrc:
			return fail(at + "; Vm " + v.Name + " has a domain on both servers: stop one of them")
		case onDst:
			return done(VMRunning, s.To, "Vm "+v.Name+" runs on "+dst)
		case onSrc:
			return undone(VMRunning, s.Server, "Vm "+v.Name+" still runs on "+src)
		}
		return fail(at + "; Vm " + v.Name + " runs on neither server: it stays as recorded, for the reconciliation (or, with high availability, the HA round) to settle")
	}
	return fail(at + " (a step this version does not know)")
}

// stepServerState returns the name of server id (the id itself when it is
// no longer recorded) and the state of VM v's domain there ("" for none);
// known is false when the server does not answer or is gone.
func (m *Manager) stepServerState(ctx context.Context, id string, v store.VM) (name, state string, known bool) {
	s, c, err := m.serverByID(ctx, id)
	if err != nil {
		return cmp.Or(s.Name, id), "", false
	}
	state, known = m.domainState(ctx, c, v)
	return s.Name, state, known
}

// serverByID is the server recorded as id and its agent's client; the
// server (as read) comes with a client's error.
func (m *Manager) serverByID(ctx context.Context, id string) (store.Server, *agentclient.Client, error) {
	s, err := m.st.Read().Server(ctx, id)
	if err != nil {
		return store.Server{}, nil, err
	}
	c, err := m.clients.get(s)
	return s, c, err
}

// cleanupMigrationTarget undoes a setup_migration_target on server id
// that no migration used, best effort: the target would otherwise wait for
// an incoming migration until its own timeout.
func (m *Manager) cleanupMigrationTarget(ctx context.Context, id string, v store.VM) {
	s, c, err := m.serverByID(ctx, id)
	if err != nil {
		return
	}
	if err := c.CleanupMigrationTarget(context.WithoutCancel(ctx), v.RepoID, v.ID); err != nil {
		if f, ok := agentapi.AsFault(err); !ok || f.Code != agentapi.FaultNotFound {
			m.log.Warn("cleanup_migration_target after a dead manager's migration", "vm", v.Name, "server", s.Name, "err", err)
		}
	}
}

// settleOrphanCopy ends the job of a clone's copy whose manager died: a
// copy recorded (the manager died after its write, before the job's end)
// is finished; any other is undone, its vm.cfg and disk images removed
// from the server it was made on, as the copy itself removes them when it
// fails (a NotFound is a file already gone). A call of the copy still in
// flight at the agent stopped when the dead manager's connection closed,
// leaving nothing.
func (m *Manager) settleOrphanCopy(ctx context.Context, s jobStep, who string) orphanOutcome {
	const tail = "; the leader ended the job"
	what := "Vm"
	recorded := func() bool { _, err := m.st.Read().VM(ctx, s.VM); return err == nil }
	if s.Template {
		what = "VmTemplate"
		recorded = func() bool { _, err := m.st.Read().VMTemplate(ctx, s.VM); return err == nil }
	}
	srv, c, err := m.serverByID(ctx, s.Server)
	name := cmp.Or(srv.Name, s.Server)
	at := fmt.Sprintf(" (%s of the copy %s %s on server %s)", s.Call, what, s.VM, name)
	if recorded() {
		return orphanOutcome{status: JobSuccess, result: "finished by the leader: " + who + " while the job ran" + at + "; the copy is recorded" + tail}
	}
	var left []string
	bg := context.WithoutCancel(ctx)
	if s.Config {
		rerr := err
		if rerr == nil && s.Template {
			rerr = notFoundIsGone(c.DeleteTemplate(bg, s.Repo, s.VM))
		} else if rerr == nil {
			rerr = notFoundIsGone(c.DeleteVM(bg, s.Repo, s.VM))
		}
		if rerr != nil {
			left = append(left, fmt.Sprintf("the vm.cfg of %s in repository %s", s.VM, s.Repo))
		}
	}
	for _, d := range s.Disks {
		derr := err
		if derr == nil {
			derr = notFoundIsGone(c.DeleteVirtualDisk(bg, d.Repo, d.ID))
		}
		if derr != nil {
			left = append(left, fmt.Sprintf("VirtualDisks/%s.img of repository %s", d.ID, d.Repo))
		}
	}
	o := orphanOutcome{status: JobFailure, errText: who + " while the job ran" + at + "; the leader removed what the copy had made" + tail}
	if len(left) > 0 {
		m.log.Error("the leader could not remove what a dead manager's copy made", "copy", s.VM, "server", name, "left", strings.Join(left, "; "))
		o.errText = who + " while the job ran" + at + "; server " + name + " did not remove what the copy had made, left to delete by hand: " +
			strings.Join(left, "; ") + tail
	}
	return o
}
