package backend

import (
	"context"
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
	// the leader ends a job whose manager died, and only such a job.
	member string

	mu      sync.Mutex // guards running and the progress of each runningJob
	running map[string]*runningJob
}

func newJobRunner(st *store.Store, log *slog.Logger, locks *lockTable,
	failed func(ctx context.Context, id, poolID, summary, errText string), mx *metrics.Manager, member string) *jobRunner {
	return &jobRunner{st: st, log: log, locks: locks, failed: failed, metrics: mx, member: member, running: map[string]*runningJob{}}
}

// jobRun is what a job's operation gets: its id and a way to report
// progress.
type jobRun struct {
	r      *jobRunner
	id     string
	abort  context.Context // done when the job is aborted
	mu     sync.Mutex      // guards lastAt
	lastAt time.Time
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
// crash leaves a recent figure.
func (j *jobRun) progress(pct int, msg string) {
	j.r.mu.Lock()
	rj := j.r.running[j.id]
	if rj != nil {
		rj.progress, rj.message = pct, msg
	}
	j.r.mu.Unlock()
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

// persistProgressEvery is how often a long job's progress reaches the store.
const persistProgressEvery = 5 * time.Second

// runningJob is a job in flight in this process.
type runningJob struct {
	summary string
	cancel  context.CancelFunc
	done    chan struct{}
	// progress, message and abortAsked are guarded by jobRunner.mu.
	progress int
	message  string
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
// of its duration in the metrics.
func (r *jobRunner) run(ctx context.Context, o RunOptions, actor Actor, poolID, operation, summary string, objects []string, op func(ctx context.Context, j *jobRun) (any, error)) (any, error) {
	id := NewID(TypeJob)
	objs := append([]string(nil), objects...)
	sort.Strings(objs)
	row := store.Job{ID: id, Summary: summary, User: actor.User, Objects: strings.Join(objs, " "), Status: JobRunning,
		PoolID: poolID, CreatedAt: time.Now(), ManagerID: r.member}
	if err := r.st.Write(ctx, func(q *store.Queries) error { return q.InsertJob(ctx, row) }); err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "record job", Cause: err}
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
	finish := func(value any, err error, aborted bool) {
		r.end(id, poolID, summary, value, err, aborted)
		r.metrics.JobDone(operation, r.statusOf(err, aborted), time.Since(row.CreatedAt))
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
	var value any
	var opErr error
	run := func() {
		unlock, err := r.locks.lockAll(lockCtx, objs, holder{jobID: id, summary: summary, since: time.Now()})
		if err != nil {
			finish(nil, err, jctx.Err() != nil)
			opErr = err
			return
		}
		defer unlock()
		value, opErr = op(context.WithoutCancel(jctx), &jobRun{r: r, id: id, abort: jctx})
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
	unlock, err := r.locks.lockAll(waitCtx, objs, holder{jobID: id, summary: summary, since: time.Now()})
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
		value, opErr = op(context.WithoutCancel(jctx), &jobRun{r: r, id: id, abort: jctx})
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

// end records a job's outcome, and what a failure leaves besides.
func (r *jobRunner) end(id, poolID, summary string, value any, err error, aborted bool) {
	ctx := context.Background()
	status, result, errText := r.statusOf(err, aborted), "", ""
	if s, ok := value.(fmt.Stringer); ok && value != nil {
		result = s.String()
	}
	if err != nil {
		errText = Message(err)
	}
	werr := r.st.Write(ctx, func(q *store.Queries) error {
		if err := q.EndJob(ctx, id, status, result, errText, time.Now()); err != nil {
			return err
		}
		if r.locks.shared == nil {
			return nil // one manager: no object lock recorded
		}
		return q.UnlockJobObjects(ctx, id) // before the process lock goes (the caller's)
	})
	if werr != nil {
		r.log.Error("record job outcome", "job", id, "err", werr)
	}
	if status == JobFailure {
		r.failed(ctx, id, poolID, summary, errText)
	}
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

// live overlays the in-memory progress of a running job, and that an
// abort was asked.
func (r *jobRunner) live(j Job) Job {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rj, ok := r.running[j.ID]; ok && j.Status == JobRunning {
		j.Progress, j.Message = rj.progress, rj.message
		if rj.abortAsked {
			j.Message = strings.TrimPrefix(j.Message+"; abort asked", "; ")
		}
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

// ended counts how many of the jobs are no longer in flight.
func (r *jobRunner) ended(ids []string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, id := range ids {
		if _, running := r.running[id]; !running {
			n++
		}
	}
	return n
}
