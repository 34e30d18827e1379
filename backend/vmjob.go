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
	val, err := m.vmJobRun(ctx, actorFrom(ctx), v.PoolID, verb+" Vm", verb+" Vm "+v.Name, v.ID, pre, func(jctx context.Context, j *jobRun) (any, error) {
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
// when the row read under the lock (with the job's intent, or by a read
// of its own when the job waited for its lock) is as the plan saw it. A
// plan made from a VM that has changed since is dropped, for the op to
// decide again.
func (m *Manager) vmUnderLock(ctx context.Context, j *jobRun, v jobVM) (store.VM, error) {
	p, read := j.plan, v.read
	if p != nil {
		read = &p.read
	}
	if read != nil && !m.st.Shared() && read.current(m.st) {
		return read.vm, nil
	}
	var cur store.VM
	var err error
	if at := j.vmAtLock; at != nil {
		cur = at.VM
		if !at.Found {
			err = store.ErrNotFound
		}
	} else {
		cur, err = m.st.Read().VM(ctx, v.ID)
	}
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
		r := m.vmReadBefore(jv.ID)
		read = &r
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
	mu  sync.Mutex // guards vms, chunks and chunkOf
	vms map[string]jobVM
	// The VMs' whole rows are read a chunk at a time, when the first job
	// of a chunk asks (foundChunk): the first jobs wait for a read of
	// foundChunkSize rows, not of all of them. chunkOf is the chunk of
	// each VM, by id.
	chunks  []*foundChunk
	chunkOf map[string]*foundChunk
}

// foundChunk is foundChunkSize of the VMs a multi-object action selected,
// whose rows are read together (Manager.readChunk) when the first of
// them is asked for.
type foundChunk struct {
	once sync.Once
	ids  []string
	rows map[string]*vmRead // set by once; nil when the read did not count
}

// foundChunkSize is how many rows a multi-object action reads at once
// for its jobs: about the jobs it starts together (multiParallel in
// package commands), so that the first of them wait for one short read.
const foundChunkSize = 100

// maxFoundRead bounds the VMs whose rows an action reads for its jobs:
// the rows of a larger one would be held, all at once, for nothing a job
// cannot read itself.
const maxFoundRead = 10_000

// chunk splits the VMs found into chunks, in their order; f.mu must be
// held.
func (f *FoundVMs) chunk(vms []jobVM) {
	if len(vms) > maxFoundRead {
		return
	}
	if f.chunkOf == nil {
		f.chunkOf = map[string]*foundChunk{}
	}
	for len(vms) > 0 {
		n := min(len(vms), foundChunkSize)
		c := &foundChunk{ids: make([]string, n)}
		for i, v := range vms[:n] {
			c.ids[i] = v.ID
			f.chunkOf[v.ID] = c
		}
		f.chunks, vms = append(f.chunks, c), vms[n:]
	}
}

// jobVM is what vmJob needs of a VM before its job starts: the job's
// summary and pool, the lock's key. Everything else it reads again under
// the lock, unless read (a multi-object action's VMs, read together).
type jobVM struct {
	ID, Name, PoolID string
	read             *vmRead // the whole row, when the action read it
}

// vmRead is a VM as read, with the generations taken before the read: the
// VM's own (Store.VMGeneration, which a change of its state or settings
// moves) and the names' (Store.VMNamesGeneration, which a VM deleted or
// renamed moves, not the VM's own). On SQLite the row is current while
// both are unchanged.
type vmRead struct {
	vm         store.VM
	gen, names int64
}

// vmReadBefore returns the generations of VM id taken before a read of
// it, for the read to be kept with (vmRead).
func (m *Manager) vmReadBefore(id string) vmRead {
	return vmRead{names: m.st.VMNamesGeneration(), gen: m.st.VMGeneration(id)}
}

// current reports whether r is still the VM's row: no write has touched
// the row, nor deleted or renamed any VM, since before r was read.
func (r *vmRead) current(st *store.Store) bool {
	return st.VMGeneration(r.vm.ID) == r.gen && st.VMNamesGeneration() == r.names
}

// NewFoundVMs returns an empty FoundVMs for one multi-object action.
func NewFoundVMs() *FoundVMs { return &FoundVMs{vms: map[string]jobVM{}} }

// readChunk reads the whole rows of VMs ids for their jobs (jobVM.read):
// a start places from its row, and on SQLite a job whose VM has not
// changed since takes it for its read under the lock. A row counts only
// when its VM did not change while it was read (its generations the same
// before and after the read; the other VMs of the chunk may change, as
// those of the action's earlier jobs do while it runs); otherwise (or
// when the read fails) that VM's job reads it itself, as without them.
func (m *Manager) readChunk(ctx context.Context, ids []string) map[string]*vmRead {
	before := m.vmReadsBefore(ids)
	rows, err := m.st.Read().VMsByIDs(ctx, ids)
	if err != nil {
		return nil
	}
	return m.keepCurrent(before, rows)
}

// vmReadsBefore is vmReadBefore of each of ids, by id.
func (m *Manager) vmReadsBefore(ids []string) map[string]vmRead {
	before := make(map[string]vmRead, len(ids))
	for _, id := range ids {
		before[id] = m.vmReadBefore(id)
	}
	return before
}

// keepCurrent returns, by id, the rows read of VMs whose generations are
// still those taken before the read (before).
func (m *Manager) keepCurrent(before map[string]vmRead, rows []store.VM) map[string]*vmRead {
	byID := make(map[string]*vmRead, len(rows))
	for _, v := range rows {
		r, ok := before[v.ID]
		if !ok {
			continue
		}
		r.vm = v
		if r.current(m.st) {
			byID[v.ID] = &r
		}
	}
	return byID
}

// vmForJob returns what vmJob needs of the VM ref names: from what FindVMs
// found for the action when it can, else read.
func (m *Manager) vmForJob(ctx context.Context, ref Ref) (jobVM, error) {
	if f := m.opts.Found; f != nil && ref.ID != "" {
		f.mu.Lock()
		v, found := f.vms[ref.ID]
		delete(f.vms, ref.ID)
		c := f.chunkOf[ref.ID]
		f.mu.Unlock()
		if found {
			if c != nil {
				c.once.Do(func() { c.rows = m.readChunk(ctx, c.ids) })
				v.read = c.rows[v.ID]
			}
			return v, nil
		}
	}
	v, err := m.findVM(ctx, ref)
	if err != nil {
		return jobVM{}, err
	}
	return jobVM{ID: v.ID, Name: v.Name, PoolID: v.PoolID}, nil
}
