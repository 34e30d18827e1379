package backend

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"

	"xenmanager/store"
)

// vmStates says in which states each operation is allowed (Oracle VM's
// state table); anything else fails naming the state.
var vmStates = map[string][]string{
	"start":   {VMStopped},
	"stop":    {VMRunning},
	"kill":    {VMRunning, VMPaused},
	"restart": {VMRunning},
	"pause":   {VMRunning},
	"unpause": {VMPaused},
	"suspend": {VMRunning},
	"resume":  {VMSuspended},
	"delete":  {VMStopped},
	"edit":    {VMRunning, VMStopped},
	"migrate": {VMRunning, VMStopped},
	"clone":   {VMStopped},

	// force stop is stop Vm force=Yes (ForceStopVM).
	"force stop": {VMRunning, VMPaused},
}

// VMStatesFor returns the states in which verb may act on a VM, or nil when
// the verb is not a VM operation (every VM is then fair game).
func VMStatesFor(verb string) []string { return vmStates[verb] }

func needState(v store.VM, verb string) error {
	want := vmStates[verb]
	for _, w := range want {
		if v.Status == w {
			return nil
		}
	}
	return errorf(KindInvalidState, "Vm %s is %s; %s needs %s", v.Name, v.Status, verb, joinOr(want))
}

// actsOnUnknown are the verbs that act on a VM whose server is
// Unreachable: stop Vm force=Yes, with which the operator states that the
// server is off.
var actsOnUnknown = map[string]bool{"force stop": true}

// needServerKnown refuses verb on a VM whose server is Unreachable (the VM
// shows Unknown), but for actsOnUnknown: whatever the server does with its
// domain cannot be seen, so neither starting it elsewhere nor stopping it
// there can be trusted.
func (m *Manager) needServerKnown(ctx context.Context, v store.VM, verb string) error {
	if v.ServerID == "" || actsOnUnknown[verb] {
		return nil
	}
	s, err := m.st.Read().Server(ctx, v.ServerID)
	if err != nil {
		return &Error{Kind: KindInternal, Msg: "read the VM's server", Cause: err}
	}
	if shownVMStatus(v.Status, s.Status) != VMUnknown {
		return nil
	}
	return errorf(KindInvalidState,
		"Vm %s is %s: its server %s is unreachable, so whether it still runs there cannot be known, and %s cannot act on it; "+
			"wait until the server answers again, or, once the server is known to be off, record the VM stopped with stop Vm name=%s force=Yes",
		v.Name, VMUnknown, s.Name, verb, v.Name)
}

func joinOr(s []string) string {
	switch len(s) {
	case 0:
		return "nothing"
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// vmJob runs op on the VM ref names as a job that locks the VM: the VM is
// read again under the lock and its state checked for verb, so that the
// state checked is the state acted on. It returns the VM as op left it
// (or, for delete, as it was).
func (m *Manager) vmJob(ctx context.Context, ref Ref, verb string, perm Permission,
	op func(ctx context.Context, j *jobRun, v store.VM) error) (VM, error) {
	v, err := m.vmForJob(ctx, ref)
	if err != nil {
		return VM{}, err
	}
	if err := m.authorize(ctx, perm); err != nil {
		return VM{}, err
	}
	var pre *jobPlan
	if verb == "start" {
		pre = m.planStart(ctx, v)
	}
	val, err := m.plannedJob(ctx, actorFrom(ctx), v.PoolID, verb+" Vm", verb+" Vm "+v.Name, []string{v.ID}, pre, func(jctx context.Context, j *jobRun) (any, error) {
		// A terse result reads nothing after op: the VM's new state is
		// recorded with the job's end, in one write.
		j.vmAtEnd = m.opts.Terse
		cur, err := m.vmUnderLock(jctx, j, v)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errorf(KindNotFound, "Vm %s was deleted meanwhile", v.Name)
		}
		if err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "read Vm", Cause: err}
		}
		if err := m.needServerKnown(jctx, cur, verb); err != nil {
			return nil, err
		}
		if err := needState(cur, verb); err != nil {
			return nil, err
		}
		if err := j.check(); err != nil {
			return nil, err
		}
		var before VM
		if verb == "delete" { // afterwards there is nothing to show
			if before, err = m.VM(jctx, Ref{ID: v.ID}); err != nil {
				return nil, err
			}
		}
		if err := op(jctx, j, cur); err != nil {
			return nil, err
		}
		if verb == "delete" {
			return before, nil
		}
		if m.opts.Terse {
			return VM{ID: v.ID, Name: v.Name}, nil
		}
		return m.VM(jctx, Ref{ID: v.ID})
	})
	if err != nil {
		return VM{}, err
	}
	return val.(VM), nil
}

// vmUnderLock reads VM v again once job j holds its lock, so that the
// state checked is the state acted on. When the VM was read before the
// job (by the action, or for a plan) and that read is still current, it
// is the VM:
// on SQLite, where this manager alone writes, when the VM's generation
// is what it was before that read (no write has touched the row since);
// on PostgreSQL, where another manager's write is heard of only later,
// when a new read finds the row as the plan saw it. A plan made from a
// VM that has changed since is dropped, for the op to decide again.
func (m *Manager) vmUnderLock(ctx context.Context, j *jobRun, v jobVM) (store.VM, error) {
	p, read := j.plan, v.read
	if p != nil {
		read = &p.read
	}
	if read != nil && !m.st.Shared() && m.st.VMGeneration(v.ID) == read.gen {
		return read.vm, nil
	}
	cur, err := m.st.Read().VM(ctx, v.ID)
	if p != nil && (err != nil || cur != p.read.vm) {
		j.takePlan().drop()
	}
	return cur, err
}

// planStart places VM jv before its start's job begins (jobPlan), so that
// the job records its intent and its first step in one write. It returns
// nil, and the start places as any other job, when the VM (as the action
// read it, else read now) cannot be read
// or cannot start as it is (the job then fails as it does without a
// plan) or placement finds no server (the job then says why).
func (m *Manager) planStart(ctx context.Context, jv jobVM) *jobPlan {
	read := jv.read
	if read == nil {
		read = &vmRead{gen: m.st.VMGeneration(jv.ID)}
		var err error
		if read.vm, err = m.st.Read().VM(ctx, jv.ID); err != nil {
			return nil
		}
	}
	v := read.vm
	if needState(v, "start") != nil {
		return nil
	}
	cands, release, err := m.place.rank(ctx, v, "", 0)
	if err != nil {
		return nil
	}
	step, err := json.Marshal(jobStep{Call: stepStart, VM: v.ID, Server: cands[0].server.ID})
	if err != nil {
		release()
		return nil
	}
	return &jobPlan{step: string(step), read: *read, cands: cands, release: release}
}

// FoundVMs are the VMs FindVMs found for a multi-object action: what a
// VM's job needs of it before it starts (vmJob). With them in RunOptions,
// FindVMs keeps what it finds, and a VM job on one of those VMs by id takes
// it from there (once) instead of reading the VM before its job: a
// multi-object action reads its VMs once, not twice. Nothing is lost by it:
// every VM job reads its VM again under the VM's lock and checks its state
// there.
type FoundVMs struct {
	mu  sync.Mutex // guards vms
	vms map[string]jobVM
}

// jobVM is what vmJob needs of a VM before its job starts: the job's
// summary and pool, the lock's key. Everything else it reads again under
// the lock, unless read (a multi-object action's VMs, read together).
type jobVM struct {
	ID, Name, PoolID string
	read             *vmRead // the whole row, when the action read it
}

// vmRead is a VM as read, with its generation before the read
// (Store.VMGeneration): on SQLite the row is current while that is.
type vmRead struct {
	vm  store.VM
	gen int64
}

// NewFoundVMs returns an empty FoundVMs for one multi-object action.
func NewFoundVMs() *FoundVMs { return &FoundVMs{vms: map[string]jobVM{}} }

// vmForJob returns what vmJob needs of the VM ref names: from what FindVMs
// found for the action when it can, else read.
func (m *Manager) vmForJob(ctx context.Context, ref Ref) (jobVM, error) {
	if f := m.opts.Found; f != nil && ref.ID != "" {
		f.mu.Lock()
		v, found := f.vms[ref.ID]
		delete(f.vms, ref.ID)
		f.mu.Unlock()
		if found {
			return v, nil
		}
	}
	v, err := m.findVM(ctx, ref)
	if err != nil {
		return jobVM{}, err
	}
	return jobVM{ID: v.ID, Name: v.Name, PoolID: v.PoolID}, nil
}
