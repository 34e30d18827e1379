package host

import (
	"strings"
	"sync"
	"time"

	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agentapi"
)

// Bounds of the progress registry: finished operations stay visible for
// progressKeep, and at most maxFinished of them are kept.
const (
	progressKeep = 10 * time.Minute
	maxFinished  = 256
)

// progressRegistry holds the progress of long calls (save_vm, migrate_vm,
// non-sparse create_virtual_disk) for get_operation_progress, in flight and for a
// while after they end.
type progressRegistry struct {
	now func() time.Time      // the host's clock; set before the registry is shared
	mu  sync.Mutex            // guards ops and every op's fields
	ops map[string]*operation // by key, e.g. "save:vm1"
}

// operation is one long call's progress.
type operation struct {
	reg   *progressRegistry
	p     agentapi.Progress
	ended time.Time // zero while running
}

// Start registers a running operation under key, replacing an ended one.
func (r *progressRegistry) Start(key, phase string, total int64) hypervisor.Operation {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ops == nil {
		r.ops = map[string]*operation{}
	}
	r.pruneLocked(now)
	op := &operation{reg: r, p: agentapi.Progress{Key: key, Phase: phase, Total: total, State: agentapi.ProgressRunning}}
	r.ops[key] = op
	return op
}

// pruneLocked forgets operations ended more than progressKeep ago, and the
// oldest ended ones beyond maxFinished. r.mu must be held.
func (r *progressRegistry) pruneLocked(now time.Time) {
	var ended []*operation
	for k, op := range r.ops {
		switch {
		case op.ended.IsZero():
		case now.Sub(op.ended) > progressKeep:
			delete(r.ops, k)
		default:
			ended = append(ended, op)
		}
	}
	for len(ended) > maxFinished {
		oldest := 0
		for i, op := range ended {
			if op.ended.Before(ended[oldest].ended) {
				oldest = i
			}
		}
		delete(r.ops, ended[oldest].p.Key)
		ended = append(ended[:oldest], ended[oldest+1:]...)
	}
}

// clear forgets every operation (a host reboot).
func (r *progressRegistry) clear() {
	r.mu.Lock()
	r.ops = nil
	r.mu.Unlock()
}

// Set records how far the operation is.
func (op *operation) Set(phase string, done int64) {
	op.reg.mu.Lock()
	op.p.Phase, op.p.Done = phase, done
	op.reg.mu.Unlock()
}

// SetRound records the phase, how far it is and its total, for operations
// whose total changes with the phase (the rounds of a migration).
func (op *operation) SetRound(phase string, done, total int64) {
	op.reg.mu.Lock()
	op.p.Phase, op.p.Done, op.p.Total = phase, done, total
	op.reg.mu.Unlock()
}

// Finish ends the operation: done when err is nil, else failed with the
// error as its phase.
func (op *operation) Finish(err error) {
	now := op.reg.now()
	op.reg.mu.Lock()
	defer op.reg.mu.Unlock()
	op.ended = now
	if err != nil {
		op.p.State = agentapi.ProgressFailed
		op.p.Phase = "failed: " + err.Error()
		return
	}
	op.p.State = agentapi.ProgressDone
	op.p.Phase = "done"
	op.p.Done = op.p.Total
}

// OperationProgress answers get_operation_progress; NotFound for a key no
// operation had, or one that ended long ago.
func (h *Host) OperationProgress(key string) (agentapi.Progress, error) {
	r := &h.progress
	now := h.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(now)
	op, ok := r.ops[key]
	if !ok {
		return agentapi.Progress{}, agentapi.Errorf(agentapi.FaultNotFound,
			"no operation %q in flight or recently ended on this server (keys look like save:<vm_id>, migrate:<vm_id>, import:<id>, disk:<disk_id>)", key)
	}
	return op.p, nil
}

// RunningOperations counts the operations in flight whose keys start with
// prefix (agentapi.ProgressCopy: the copies under way), as get_operation_progress
// would show them running now; tests watch with it how many copies run at
// once.
func (h *Host) RunningOperations(prefix string) int {
	r := &h.progress
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for key, op := range r.ops {
		if op.p.State == agentapi.ProgressRunning && strings.HasPrefix(key, prefix) {
			n++
		}
	}
	return n
}
