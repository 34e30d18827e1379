package backend

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"xenmanager/store"
)

// Job statuses.
const (
	JobRunning = "Running"
	JobSuccess = "Success"
	JobFailure = "Failure"
	JobAborted = "Aborted"
)

// TypeJob is the id type code of jobs; TypeEvent of events.
const (
	TypeJob   ObjectType = "0009"
	TypeEvent ObjectType = "0011"
)

// Job is a job as the operator sees it.
type Job struct {
	ID, Summary, User string
	Objects           []string
	Status            string
	Progress          int
	Message           string
	Result            string
	Error             string
	CreatedAt         time.Time
	EndedAt           time.Time
}

type jobObserverKey struct{}

// WithJobObserver returns a context whose operations call observe with the
// id of each job they start, as soon as its row is written. The command
// layer uses it to answer at once in asynchronous mode, and to name the job
// when it stops waiting for it.
func WithJobObserver(ctx context.Context, observe func(jobID string)) context.Context {
	return context.WithValue(ctx, jobObserverKey{}, observe)
}

// jobRun is what a job's operation gets: its id and a way to report
// progress.
type jobRun struct {
	m      *Manager
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
	j.m.jobsMu.Lock()
	rj := j.m.running[j.id]
	if rj != nil {
		rj.progress, rj.message = pct, msg
	}
	j.m.jobsMu.Unlock()
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
	if err := j.m.st.Write(ctx, func(q *store.Queries) error { return q.SetJobProgress(ctx, j.id, pct, msg) }); err != nil {
		j.m.log.Warn("record job progress", "job", j.id, "err", err)
	}
}

// persistProgressEvery is how often a long job's progress reaches the store.
const persistProgressEvery = 5 * time.Second

// runningJob is a job in flight in this process.
type runningJob struct {
	summary string
	cancel  context.CancelFunc
	done    chan struct{}
	// progress and message are guarded by Manager.jobsMu.
	progress int
	message  string
}

// job runs op as a job: the row is written first (the intent), then the
// locks on objects are taken (waiting at most until ctx ends or lockWait
// passes, then failing with the holder's name), then op runs detached from
// ctx, so that a client going away never leaves an operation half-done.
// job waits for op and returns its result; if ctx ends first it returns
// an error of KindStillRunning naming the job, which goes on.
func (m *Manager) job(ctx context.Context, actor Actor, poolID, summary string, objects []string, op func(ctx context.Context, j *jobRun) (any, error)) (any, error) {
	id := NewID(TypeJob)
	objs := append([]string(nil), objects...)
	sort.Strings(objs)
	row := store.Job{ID: id, Summary: summary, User: actor.User, Objects: strings.Join(objs, " "), Status: JobRunning,
		PoolID: poolID, CreatedAt: time.Now()}
	if err := m.st.Write(ctx, func(q *store.Queries) error { return q.InsertJob(ctx, row) }); err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "record job", Cause: err}
	}
	if observe, ok := ctx.Value(jobObserverKey{}).(func(string)); ok {
		observe(id)
	}
	rj := &runningJob{summary: summary, done: make(chan struct{})}
	jctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	rj.cancel = cancel
	m.jobsMu.Lock()
	m.running[id] = rj
	m.jobsMu.Unlock()
	finish := func(value any, err error, aborted bool) {
		m.endJob(id, poolID, summary, value, err, aborted)
		m.jobsMu.Lock()
		delete(m.running, id)
		m.jobsMu.Unlock()
		cancel()
		close(rj.done)
	}

	// Locks are waited for on the caller's context (the command layer gives
	// it commandTimeout), or, for an asynchronous caller who is not waiting,
	// on the job's own.
	lockCtx := ctx
	async := IsAsync(ctx)
	if async {
		lockCtx = jctx
	}
	var value any
	var opErr error
	run := func() {
		unlock, err := m.lockAll(lockCtx, objs, holder{jobID: id, summary: summary, since: time.Now()})
		if err != nil {
			finish(nil, err, jctx.Err() != nil)
			opErr = err
			return
		}
		defer unlock()
		value, opErr = op(context.WithoutCancel(jctx), &jobRun{m: m, id: id, abort: jctx})
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
	unlock, err := m.lockAll(waitCtx, objs, holder{jobID: id, summary: summary, since: time.Now()})
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
		value, opErr = op(context.WithoutCancel(jctx), &jobRun{m: m, id: id, abort: jctx})
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

// lockAll takes the locks of keys (sorted, so that two jobs never wait for
// each other) and returns one func that releases them all.
func (m *Manager) lockAll(ctx context.Context, keys []string, h holder) (func(), error) {
	var unlocks []func()
	release := func() {
		for i := len(unlocks) - 1; i >= 0; i-- {
			unlocks[i]()
		}
	}
	for _, k := range keys {
		unlock, err := m.locks.lockFor(ctx, k, h)
		if err != nil {
			release()
			return nil, err
		}
		unlocks = append(unlocks, unlock)
	}
	return release, nil
}

type asyncKey struct{}

// WithAsync returns a context whose operations return as soon as their job
// is recorded (an error of KindStillRunning carrying the job id), leaving
// the job to run: "set commandMode=Asynchronous".
func WithAsync(ctx context.Context) context.Context { return context.WithValue(ctx, asyncKey{}, true) }

// IsAsync reports whether ctx asks for asynchronous operations.
func IsAsync(ctx context.Context) bool { v, _ := ctx.Value(asyncKey{}).(bool); return v }

// JobIDOf returns the job id an error of KindStillRunning carries, or "".
func JobIDOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.JobID
	}
	return ""
}

// endJob records a job's outcome, and an event when it failed.
func (m *Manager) endJob(id, poolID, summary string, value any, err error, aborted bool) {
	ctx := context.Background()
	status, result, errText := JobSuccess, "", ""
	if s, ok := value.(fmt.Stringer); ok && value != nil {
		result = s.String()
	}
	if err != nil {
		status, errText = JobFailure, Message(err)
		if aborted {
			status = JobAborted
		}
	}
	werr := m.st.Write(ctx, func(q *store.Queries) error { return q.EndJob(ctx, id, status, result, errText, time.Now()) })
	if werr != nil {
		m.log.Error("record job outcome", "job", id, "err", werr)
	}
	if status == JobFailure {
		m.event(ctx, "Error", "JobFailed", "Job", id, summary, poolID, fmt.Sprintf("job %s failed: %s", summary, errText))
	}
}

// seesJob reports whether the actor may see a job: their own, or one in
// a pool they see (administrators see all).
func seesJob(sc scope, a Actor, r store.Job) bool {
	return sc.all || r.User == a.User || (r.PoolID != "" && sc.pools[r.PoolID])
}

// Jobs lists the newest jobs the actor may see (at most limit).
func (m *Manager) Jobs(ctx context.Context, limit int) ([]Job, error) {
	sc, err := m.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := m.st.Read().Jobs(ctx, limit)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read jobs", Cause: err}
	}
	a := actorFrom(ctx)
	out := make([]Job, 0, len(rows))
	for _, r := range rows {
		if seesJob(sc, a, r) {
			out = append(out, m.liveJob(jobView(r)))
		}
	}
	return out, nil
}

// Job returns one job the actor may see.
func (m *Manager) Job(ctx context.Context, id string) (Job, error) {
	sc, err := m.scope(ctx)
	if err != nil {
		return Job{}, err
	}
	r, err := m.st.Read().Job(ctx, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && !seesJob(sc, actorFrom(ctx), r) {
		return Job{}, errorf(KindNotFound, "Job id=%s not found", id)
	}
	if err != nil {
		return Job{}, &Error{Kind: KindInternal, Msg: "read job", Cause: err}
	}
	return m.liveJob(jobView(r)), nil
}

// liveJob overlays the in-memory progress of a running job.
func (m *Manager) liveJob(j Job) Job {
	m.jobsMu.Lock()
	defer m.jobsMu.Unlock()
	if rj, ok := m.running[j.ID]; ok && j.Status == JobRunning {
		j.Progress, j.Message = rj.progress, rj.message
	}
	return j
}

func jobView(r store.Job) Job {
	var objs []string
	if r.Objects != "" {
		objs = strings.Fields(r.Objects)
	}
	return Job{ID: r.ID, Summary: r.Summary, User: r.User, Objects: objs, Status: r.Status, Progress: r.Progress,
		Message: r.Message, Result: r.Result, Error: r.Error, CreatedAt: r.CreatedAt, EndedAt: r.EndedAt}
}

// WaitJob waits until the job ends or ctx does, and returns it as it is then.
func (m *Manager) WaitJob(ctx context.Context, id string) (Job, error) {
	if _, err := m.Job(ctx, id); err != nil {
		return Job{}, err
	}
	m.jobsMu.Lock()
	rj, ok := m.running[id]
	m.jobsMu.Unlock()
	if ok {
		select {
		case <-rj.done:
		case <-ctx.Done():
			return Job{}, &Error{Kind: KindStillRunning, JobID: id, Msg: fmt.Sprintf("job %s (%s) is still running", id, rj.summary)}
		}
	}
	return m.Job(context.WithoutCancel(ctx), id)
}

// AbortJob stops a running job between agent calls (a call in flight is
// carried to its end, so that its outcome is known and recorded); the job
// ends Aborted, or Success if it had nothing left to do.
func (m *Manager) AbortJob(ctx context.Context, id string) (Job, error) {
	if _, err := m.Job(ctx, id); err != nil {
		return Job{}, err
	}
	if err := m.authorize(ctx, PermVMLifecycle); err != nil {
		return Job{}, err
	}
	m.jobsMu.Lock()
	rj, ok := m.running[id]
	m.jobsMu.Unlock()
	if !ok {
		j, err := m.Job(ctx, id)
		if err != nil {
			return Job{}, err
		}
		return Job{}, errorf(KindInvalidState, "Job %s is %s; abort needs Running", id, j.Status)
	}
	rj.cancel()
	select {
	case <-rj.done:
	case <-ctx.Done():
	}
	return m.Job(context.WithoutCancel(ctx), id)
}

// RecoverJobs ends the jobs a previous run of the manager left Running: their
// operations died with it. Reconcile then brings VM states in line with the
// agents.
func (m *Manager) RecoverJobs(ctx context.Context) (int, error) {
	rows, err := m.st.Read().RunningJobs(ctx)
	if err != nil {
		return 0, &Error{Kind: KindInternal, Msg: "read jobs", Cause: err}
	}
	for _, r := range rows {
		err := m.st.Write(ctx, func(q *store.Queries) error {
			return q.EndJob(ctx, r.ID, JobFailure, "", "the manager stopped while the job ran; the state was reconciled with the agents at the next start", time.Now())
		})
		if err != nil {
			return 0, &Error{Kind: KindInternal, Msg: "end job", Cause: err}
		}
	}
	return len(rows), nil
}

// JobsEnded counts how many of the jobs have ended, in one read: the
// progress of a multi-object action.
func (m *Manager) JobsEnded(ctx context.Context, ids []string) (int, error) {
	m.jobsMu.Lock()
	defer m.jobsMu.Unlock()
	ended := 0
	for _, id := range ids {
		if _, running := m.running[id]; !running {
			ended++
		}
	}
	return ended, nil
}
