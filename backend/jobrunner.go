package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"xenmanager/backend/metrics"
	"xenmanager/store"
)

// jobRunner runs operations as jobs: it records each job, takes its object
// locks, runs it detached from its caller and keeps the jobs in flight (with
// their progress) until they end.
type jobRunner struct {
	st    *store.Store
	log   *slog.Logger
	locks *lockTable
	// failed records what a failed job leaves besides its row (an event).
	failed func(ctx context.Context, id, poolID, summary, errText string)
	// metrics records each job's duration; nil records nothing.
	metrics *metrics.Manager
	// member is the manager's member id, recorded with each job so that
	// the leader ends a job whose manager died, and only such a job;
	// membership says whether the leader may take this manager for dead
	// (a job's step checks it before its agent call).
	member     string
	membership *memberState
	// shared is set when other managers may run on the store (PostgreSQL):
	// then a job's progress reaches the store every second and its abort
	// may be asked through another manager (watchShared).
	shared bool

	mu      sync.Mutex // guards running, watching and the progress of each runningJob
	running map[string]*runningJob
	// watching is set while the watcher of a shared store runs: from the
	// first job in flight until none is.
	watching bool
}

func newJobRunner(st *store.Store, log *slog.Logger, locks *lockTable,
	failed func(ctx context.Context, id, poolID, summary, errText string), mx *metrics.Manager, member string, ms *memberState) *jobRunner {
	return &jobRunner{st: st, log: log, locks: locks, failed: failed, metrics: mx, member: member, membership: ms,
		shared: st.Shared(), running: map[string]*runningJob{}}
}

// jobRun is what a job's operation gets: its id and a way to report
// progress.
type jobRun struct {
	r      *jobRunner
	id     string
	abort  context.Context // done when the job is aborted
	mu     sync.Mutex      // guards lastAt
	lastAt time.Time
	// vmAtEnd, set by the op before anything else, has the VM's state
	// recorded with the job's end (Manager.recordVMState): one write, not
	// two, for a caller that does not read the VM before the end (a
	// multi-object action's terse VM jobs). endVM is that state, set by
	// the op, read by the runner once the op has returned.
	vmAtEnd bool
	endVM   *vmState
	// afterEnd runs once the job's end is written: the placement claims
	// of a VM whose state is recorded with it.
	afterEnd []func()
	// plan is what was decided for the job before it began (its row holds
	// plan's step), for the op to take (takePlan); nil when nothing was.
	plan *jobPlan
	// vmAtLock is a VM job's VM as the job's intent read it, its lock
	// taken (store.InsertVMJobAndLock): on a shared store, when the lock
	// was free at once; nil otherwise. The op acts on it without a read
	// of its own (Manager.vmUnderLock).
	vmAtLock *store.VMAtLock
}

// jobPlan is an agent call decided before its job began, so that the
// job's row records the step with the intent, in one write: a start's
// placement, made before the job so that the start's first call waits
// for one commit, not two (the intent's, then the step's). The op takes
// it when what the plan was made from still holds under the job's locks,
// else the plan is dropped and the op decides again (recording its own
// step). Used by the job's goroutine only.
type jobPlan struct {
	step    string   // the recorded step (a jobStep's JSON)
	read    vmRead   // the VM the plan was made from
	cands   []choice // placement's servers, best first; the first claimed
	release func()   // the claim's release; nil once taken or dropped
}

// drop releases what nobody took of p; p may be nil.
func (p *jobPlan) drop() {
	if p != nil && p.release != nil {
		p.release()
		p.release = nil
	}
}

// takePlan hands the op the plan made before the job, once: nil when
// there was none or it was taken or dropped already.
func (j *jobRun) takePlan() *jobPlan {
	p := j.plan
	j.plan = nil
	if p == nil || p.release == nil {
		return nil
	}
	return p
}

// vmState is a VM's placement and status, to record (Manager.recordVMState).
type vmState struct {
	id, serverID, status string
}

// check returns an error when the job has been aborted; operations call it
// between agent calls, which themselves are never cut off half-way.
func (j *jobRun) check() error {
	if j.abort.Err() != nil {
		return errorf(KindConflict, "job %s was aborted", j.id)
	}
	return nil
}

// progress records how far the job is (0..100) with a short message. It
// lives in memory while the job runs (show Job reads it there): writing it
// to the store at every step would cost a write per step of every job of a
// batch. A job that lasts is written down every few seconds, so that a
// crash leaves a recent figure. On a shared store the watcher writes the
// progress of every job that moved once a second, in one transaction, so
// that the other managers' show Job and progress bars follow it.
func (j *jobRun) progress(pct int, msg string) {
	j.r.mu.Lock()
	rj := j.r.running[j.id]
	if rj != nil {
		rj.progress, rj.message = pct, msg
		rj.dirty = j.r.shared
	}
	j.r.mu.Unlock()
	if j.r.shared {
		return
	}
	j.mu.Lock()
	if j.lastAt.IsZero() {
		// The first report: the clock starts now. (The zero time is long
		// ago: without this every job wrote its first step, one more
		// write per job of a batch.)
		j.lastAt = time.Now()
	}
	if time.Since(j.lastAt) < persistProgressEvery {
		j.mu.Unlock()
		return
	}
	j.lastAt = time.Now()
	j.mu.Unlock()
	ctx := context.Background()
	if err := j.r.st.Write(ctx, func(q *store.Queries) error { return q.SetJobProgress(ctx, j.id, pct, msg) }); err != nil {
		j.r.log.Warn("record job progress", "job", j.id, "err", err)
	}
}

// persistProgressEvery is how often a long job's progress reaches the
// store when no other manager reads it (SQLite).
const persistProgressEvery = 5 * time.Second

// sharedEvery is how often, on a shared store, the runner writes its
// jobs' progress down and reads whether another manager asked to abort
// one of them (watchShared).
const sharedEvery = time.Second

// runningJob is a job in flight in this process.
type runningJob struct {
	summary string
	cancel  context.CancelFunc
	done    chan struct{}
	// progress, message, dirty and abortAsked are guarded by jobRunner.mu.
	progress int
	message  string
	// dirty is set on a shared store when progress or message changed
	// since the watcher last wrote them down.
	dirty bool
	// abortAsked is set when abort Job cancels the job: show Job says so
	// until the job ends.
	abortAsked bool
}

// run runs op as a job: the row is written first (the intent), then the
// locks on objects are taken (waiting at most until ctx ends or lockWait
// passes, then failing with the holder's name), then op runs detached from
// ctx, so that a client going away never leaves an operation half-done.
// run waits for op and returns its result; if ctx ends first it returns
// an error of KindStillRunning naming the job, which goes on. o says
// whether to wait at all (Async) and whom to tell the job's id (Observe).
// operation names what the job does in words from the code, never an
// object's name ("start Vm", where summary is "start Vm web1"): the label
// of its duration in the metrics. vm, when set, is the job's one object,
// a VM, which a shared store reads with the intent when it takes the lock
// (jobRun.vmAtLock).
func (r *jobRunner) run(ctx context.Context, o RunOptions, actor Actor, poolID, operation, summary string, objects []string, pre *jobPlan, vm string, op func(ctx context.Context, j *jobRun) (any, error)) (any, error) {
	id := NewID(TypeJob)
	objs := append([]string(nil), objects...)
	sort.Strings(objs)
	row := store.Job{ID: id, Summary: summary, User: actor.User, Objects: strings.Join(objs, " "), Status: JobRunning,
		PoolID: poolID, CreatedAt: time.Now(), ManagerID: r.member}
	if pre != nil {
		row.Step = pre.step
	}
	h := holder{jobID: id, summary: summary, since: row.CreatedAt}
	// On a shared store a job whose objects are free in this process now
	// takes them, and records its row and its locks in the store in one
	// write (one statement on PostgreSQL, where every statement of every
	// job is a round trip on the one writer connection). When another
	// manager's job holds one, or the process locks are taken, the job
	// records its row and then waits for its locks as lockAll does.
	var prelocked func()
	if r.shared && len(objs) > 0 {
		prelocked = r.locks.tryLockAll(objs, h)
	}
	var werr error
	var vmAtLock *store.VMAtLock
	if prelocked != nil {
		var held *store.ObjectLock
		if vm != "" {
			held, vmAtLock, werr = r.st.InsertVMJobAndLock(ctx, row, objs, vm)
		} else {
			held, werr = r.st.InsertJobAndLock(ctx, row, objs)
		}
		if werr != nil || held != nil {
			prelocked()
			prelocked = nil
		}
	} else {
		werr = r.st.InsertJob(ctx, row)
	}
	if werr != nil {
		pre.drop()
		return nil, &Error{Kind: KindInternal, Msg: "record job", Cause: werr}
	}
	lockAll := func(ctx context.Context) (func(), error) {
		if prelocked != nil {
			return prelocked, nil
		}
		h.since = time.Now()
		return r.locks.lockAll(ctx, objs, h)
	}
	if o.Observe != nil {
		o.Observe(id)
	}
	rj := &runningJob{summary: summary, done: make(chan struct{})}
	jctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	rj.cancel = cancel
	r.mu.Lock()
	r.running[id] = rj
	r.mu.Unlock()
	r.watchShared()
	jr := &jobRun{r: r, id: id, abort: jctx, plan: pre, vmAtLock: vmAtLock}
	var value any
	var opErr error
	// finish records the job's end and sets opErr, the job's error: err,
	// or the failure to record the VM state the op left for the end.
	finish := func(val any, err error, aborted bool) {
		opErr = r.end(id, poolID, summary, val, err, aborted, jr.endVM)
		for _, f := range jr.afterEnd {
			f()
		}
		jr.plan.drop() // what the op did not take of it
		r.metrics.JobDone(operation, r.statusOf(opErr, aborted), time.Since(row.CreatedAt))
		r.mu.Lock()
		delete(r.running, id)
		r.mu.Unlock()
		cancel()
		close(rj.done)
	}

	// Locks are waited for on the caller's context (the command layer gives
	// it commandTimeout), or, for an asynchronous caller who is not waiting,
	// on the job's own.
	lockCtx := ctx
	async := o.Async
	if async {
		lockCtx = jctx
	}
	run := func() {
		unlock, err := lockAll(lockCtx)
		if err != nil {
			finish(nil, err, jctx.Err() != nil)
			return
		}
		defer unlock()
		value, opErr = op(context.WithoutCancel(jctx), jr)
		finish(value, opErr, opErr != nil && jctx.Err() != nil)
	}
	if async {
		go run()
		return nil, &Error{Kind: KindStillRunning, JobID: id, Msg: fmt.Sprintf("job %s (%s) started", id, summary)}
	}
	// Synchronous: take the locks here, so that a lock that cannot be had
	// fails the command, then run detached and wait. The wait ends with the
	// caller's context or an abort, whichever comes first.
	waitCtx, stopWait := context.WithCancel(ctx)
	stopAbort := context.AfterFunc(jctx, stopWait) // an abort ends the wait (no goroutine per job for it)
	unlock, err := lockAll(waitCtx)
	stopAbort()
	stopWait()
	if err != nil {
		aborted := jctx.Err() != nil
		if aborted {
			err = errorf(KindConflict, "job %s was aborted while it waited for its locks", id)
		}
		finish(nil, err, aborted)
		return nil, err
	}
	go func() {
		defer unlock()
		value, opErr = op(context.WithoutCancel(jctx), jr)
		finish(value, opErr, opErr != nil && jctx.Err() != nil)
	}()
	select {
	case <-rj.done:
		return value, opErr
	case <-ctx.Done():
		return nil, &Error{Kind: KindStillRunning, JobID: id,
			Msg: fmt.Sprintf("job %s (%s) is still running; follow it with show Job id=%s or wait Job id=%s", id, summary, id, id)}
	}
}

// end records a job's outcome, and what a failure leaves besides, and
// returns the job's error: err, or, when vm (the VM state the op left for
// the end, jobRun.vmAtEnd) cannot be recorded, that failure, with which the
// job then ends as it did when the op recorded it.
func (r *jobRunner) end(id, poolID, summary string, value any, err error, aborted bool, vm *vmState) error {
	ctx := context.Background()
	// outcome is what the job's row records of err and value.
	outcome := func() (status, result, errText string) {
		status = r.statusOf(err, aborted)
		if s, ok := value.(fmt.Stringer); ok && value != nil {
			result = s.String()
		}
		if err != nil {
			errText = Message(err)
		}
		return status, result, errText
	}
	leaderEnded := false
	record := func(vm *vmState) error {
		leaderEnded = false
		status, result, errText := outcome()
		switch {
		case vm != nil:
			// Ended by the leader (not running): the VM's state stays
			// recorded, as when the op wrote it before the end.
			running, err := r.st.SetVMStateAndEndJob(ctx, vm.id, vm.serverID, vm.status, id, status, result, errText, time.Now())
			leaderEnded = err == nil && !running
			return err
		case !r.shared:
			return r.st.Write(ctx, func(q *store.Queries) error {
				return q.EndJob(ctx, id, status, result, errText, time.Now()) // one manager: no object lock recorded
			})
		}
		return r.st.EndJobAndUnlock(ctx, id, status, result, errText, time.Now()) // before the process lock goes (the caller's)
	}
	werr := record(vm)
	if vm != nil && werr != nil {
		// Nothing of it was written: the job fails for want of the VM's
		// state, as it did when the op wrote it.
		err, value = &Error{Kind: KindInternal, Msg: "record Vm state", Cause: werr}, nil
		werr = record(nil)
	}
	if leaderEnded {
		werr = store.ErrNotFound
	}
	status, _, errText := outcome()
	switch {
	case errors.Is(werr, store.ErrNotFound):
		// The leader ended it, taking this manager for dead (it was cut
		// off, or stopped, for longer than the member timeout): the
		// leader's end stands, with the VM as the agents showed it then.
		r.log.Warn("the job was ended by the leader while this manager seemed dead; its outcome here is not recorded",
			"job", id, "status", status, "error", errText)
		return err
	case werr != nil:
		r.log.Error("record job outcome", "job", id, "err", werr)
	}
	if status == JobFailure {
		r.failed(ctx, id, poolID, summary, errText)
	}
	return err
}

// statusOf is the status a job ends in: JobSuccess without err,
// JobAborted when it failed because it was aborted, else JobFailure.
func (r *jobRunner) statusOf(err error, aborted bool) string {
	switch {
	case err == nil:
		return JobSuccess
	case aborted:
		return JobAborted
	}
	return JobFailure
}

// find returns the job in flight with that id.
func (r *jobRunner) find(id string) (*runningJob, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rj, ok := r.running[id]
	return rj, ok
}

// live is the job of row r with the in-memory progress of a job running
// here overlaid, and that an abort was asked (here, or through another
// manager: the row says so).
func (r *jobRunner) live(row store.Job) Job {
	j := jobView(row)
	if j.Status != JobRunning {
		return j
	}
	asked := row.AbortRequested
	r.mu.Lock()
	if rj, ok := r.running[j.ID]; ok {
		j.Progress, j.Message = rj.progress, rj.message
		asked = asked || rj.abortAsked
	}
	r.mu.Unlock()
	if asked {
		j.Message = strings.TrimPrefix(j.Message+"; abort asked", "; ")
	}
	return j
}

// askAbort cancels a running job and returns the step it was at then: its
// progress and message.
func (r *jobRunner) askAbort(rj *runningJob) (progress int, message string) {
	r.mu.Lock()
	rj.abortAsked = true
	progress, message = rj.progress, rj.message
	r.mu.Unlock()
	rj.cancel()
	return progress, message
}

// count returns how many jobs are in flight.
func (r *jobRunner) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.running)
}

// ended counts how many of the jobs are no longer in flight here. On a
// shared store a job not in flight here may run on another manager: the
// ids of those are returned for the caller to read their rows.
func (r *jobRunner) ended(ids []string) (n int, elsewhere []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		if _, running := r.running[id]; running {
			continue
		}
		if r.shared {
			elsewhere = append(elsewhere, id)
		} else {
			n++
		}
	}
	return n, elsewhere
}

// watchShared starts the watcher of a shared store unless it runs, or
// the store is not shared. The watcher runs while jobs are in flight here
// and, every sharedEvery, writes down the progress of those that moved
// (one transaction for all) and reads which of them another manager asked
// to abort (one query for all: the flags of AbortJob on a manager that
// does not run the job), and aborts those as a local abort does. It
// stops when no job is in flight, so that an idle manager costs the
// database nothing.
func (r *jobRunner) watchShared() {
	if !r.shared {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.watching {
		return
	}
	r.watching = true
	go r.watch()
}

// watch is the watcher's loop (watchShared).
func (r *jobRunner) watch() {
	tick := time.NewTicker(sharedEvery)
	defer tick.Stop()
	ctx := context.Background()
	for range tick.C {
		var out []store.JobProgress
		r.mu.Lock()
		if len(r.running) == 0 {
			r.watching = false
			r.mu.Unlock()
			return
		}
		for id, rj := range r.running {
			if rj.dirty {
				out = append(out, store.JobProgress{ID: id, Progress: rj.progress, Message: rj.message})
				rj.dirty = false
			}
		}
		r.mu.Unlock()
		if len(out) > 0 {
			// A job that ended meanwhile keeps what its end wrote.
			err := r.st.Write(ctx, func(q *store.Queries) error { return q.SetJobsProgress(ctx, out) })
			if err != nil {
				r.log.Warn("record the progress of jobs", "jobs", len(out), "err", err)
			}
		}
		ids, err := r.st.Read().AbortRequestedJobs(ctx, r.member)
		if err != nil {
			r.log.Warn("read the aborts other managers asked", "err", err)
			continue
		}
		for _, id := range ids {
			r.mu.Lock()
			rj, ok := r.running[id]
			asked := ok && rj.abortAsked
			r.mu.Unlock()
			if ok && !asked {
				r.log.Info("abort asked through another manager", "job", id)
				r.askAbort(rj)
			}
		}
	}
}
