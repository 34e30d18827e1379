package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// JobIDOf returns the job id an error of KindStillRunning carries, or "".
func JobIDOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.JobID
	}
	return ""
}

// seesJob reports whether the actor may see a job: their own, or one in
// a pool they see (administrators see all).
func seesJob(sc scope, a Actor, r store.Job) bool {
	return sc.all || r.User == a.User || (r.PoolID != "" && sc.pools[r.PoolID])
}

// Jobs lists the newest jobs the actor may see (at most limit).
func (m *Manager) Jobs(ctx context.Context, limit int) ([]Job, error) {
	l, err := m.StreamJobs(ctx, limit)
	return collected(ctx, l, err)
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
	return m.jobs.live(r), nil
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
// A job running in this process is waited for in memory. On a shared store
// (PostgreSQL) a job another manager runs is waited for by reading its row
// every jobPollEvery: polling was chosen over LISTEN/NOTIFY because it
// needs no database connection per waiter and works the same on both
// engines; its cost is five reads a second per waiter, and it sees the end
// at most jobPollEvery late. On SQLite no other manager runs jobs: a
// Running job not in flight here is returned as it is, as before.
func (m *Manager) WaitJob(ctx context.Context, id string) (Job, error) {
	j, err := m.Job(ctx, id)
	if err != nil {
		return Job{}, err
	}
	m.observe(id)
	if rj, ok := m.jobs.find(id); ok {
		select {
		case <-rj.done:
		case <-ctx.Done():
			return Job{}, &Error{Kind: KindStillRunning, JobID: id, Msg: fmt.Sprintf("job %s (%s) is still running", id, rj.summary)}
		}
	} else if j.Status == JobRunning && m.jobs.shared {
		if err := m.awaitJobRow(ctx, id); err != nil {
			if ctx.Err() != nil {
				return Job{}, &Error{Kind: KindStillRunning, JobID: id, Msg: fmt.Sprintf("job %s (%s) is still running", id, j.Summary)}
			}
			return Job{}, err
		}
	}
	return m.Job(context.WithoutCancel(ctx), id)
}

// jobPollEvery is how often a wait for a job another manager runs reads
// its row (WaitJob).
const jobPollEvery = 200 * time.Millisecond

// awaitJobRow reads the row of job id every jobPollEvery until the job is
// no longer Running or ctx ends (ctx.Err()).
func (m *Manager) awaitJobRow(ctx context.Context, id string) error {
	tick := time.NewTicker(jobPollEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		r, err := m.st.Read().Job(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &Error{Kind: KindInternal, Msg: "read job", Cause: err}
		}
		if r.Status != JobRunning {
			return nil
		}
	}
}

// observe tells the caller's observer (RunOptions.Observe) of a job it
// waits for without having started it, so that its progress is drawn.
func (m *Manager) observe(id string) {
	if m.opts.Observe != nil {
		m.opts.Observe(id)
	}
}

// AbortJob stops a running job between agent calls (a call in flight is
// carried to its end, so that its outcome is known and recorded) and
// returns it Aborted. A job past its last abortable point (its remaining
// steps are one agent call and recording it) is carried to its end: then
// nothing was aborted, and AbortJob fails with KindConflict saying at
// which step the job was and how it ended. A job that outlasts the wait
// fails it with KindStillRunning: the abort stays asked. On a shared store
// the abort of a job another manager runs is recorded in its row
// (abort_requested), which that manager reads every second and aborts the
// job as a local abort does; the end is waited for as WaitJob does.
func (m *Manager) AbortJob(ctx context.Context, id string) (Job, error) {
	if _, err := m.Job(ctx, id); err != nil {
		return Job{}, err
	}
	if err := m.authorize(ctx, PermVMLifecycle); err != nil {
		return Job{}, err
	}
	rj, ok := m.jobs.find(id)
	if !ok {
		return m.abortElsewhere(ctx, id)
	}
	m.observe(id)
	progress, message := m.jobs.askAbort(rj)
	select {
	case <-rj.done:
	case <-ctx.Done():
		return Job{}, abortStillRunning(id, rj.summary, progress, message)
	}
	return m.abortOutcome(ctx, id, progress, message)
}

// abortElsewhere is AbortJob of a job not in flight here: on a shared
// store, one another manager runs, whose row gets the request; otherwise
// (or once it has ended) KindInvalidState.
func (m *Manager) abortElsewhere(ctx context.Context, id string) (Job, error) {
	notRunning := func() (Job, error) {
		j, err := m.Job(ctx, id)
		if err != nil {
			return Job{}, err
		}
		return Job{}, errorf(KindInvalidState, "Job %s is %s; abort needs Running", id, j.Status)
	}
	if !m.jobs.shared {
		return notRunning()
	}
	// The step the job is at, as its manager last wrote it (at most
	// sharedEvery old).
	r, err := m.st.Read().Job(ctx, id)
	if err != nil {
		return Job{}, &Error{Kind: KindInternal, Msg: "read job", Cause: err}
	}
	if r.Status != JobRunning {
		return notRunning()
	}
	err = m.st.Write(ctx, func(q *store.Queries) error { return q.RequestJobAbort(ctx, id) })
	if errors.Is(err, store.ErrNotFound) {
		return notRunning() // it ended meanwhile
	}
	if err != nil {
		return Job{}, &Error{Kind: KindInternal, Msg: "record the abort of job", Cause: err}
	}
	m.observe(id)
	if err := m.awaitJobRow(ctx, id); err != nil {
		if ctx.Err() != nil {
			return Job{}, abortStillRunning(id, r.Summary, r.Progress, r.Message)
		}
		return Job{}, err
	}
	return m.abortOutcome(ctx, id, r.Progress, r.Message)
}

// abortStillRunning is the error of an abort whose job outlasted the wait.
func abortStillRunning(id, summary string, progress int, message string) error {
	return &Error{Kind: KindStillRunning, JobID: id,
		Msg: fmt.Sprintf("job %s (%s): abort asked at step %s and the job is still running; it stops at its next abortable point, if it has one: follow it with show Job id=%s", id, summary, stepOf(progress, message), id)}
}

// abortOutcome returns the ended job an abort was asked of: Aborted, or
// KindConflict when it ran to its end from the step it was at.
func (m *Manager) abortOutcome(ctx context.Context, id string, progress int, message string) (Job, error) {
	j, err := m.Job(context.WithoutCancel(ctx), id)
	if err != nil {
		return Job{}, err
	}
	if j.Status == JobAborted {
		return j, nil
	}
	// A job that fails once the abort is asked ends Aborted (jobRunner.run):
	// here it ran to its end.
	return j, errorf(KindConflict, "job %s (%s) was not aborted: at step %s it had no abortable point left, and it ran to its end: %s",
		id, j.Summary, stepOf(progress, message), j.Status)
}

// stepOf names the step a job was at: its message and progress.
func stepOf(progress int, message string) string {
	if message == "" {
		return fmt.Sprintf("%d%%", progress)
	}
	return fmt.Sprintf("%q (%d%%)", message, progress)
}

// JobsEnded counts how many of the jobs have ended: the progress of a
// multi-object action. Jobs in flight here are counted in memory; on a
// shared store the others, which may run on another manager, are read
// from their rows in one query.
func (m *Manager) JobsEnded(ctx context.Context, ids []string) (int, error) {
	n, elsewhere := m.jobs.ended(ids)
	if len(elsewhere) == 0 {
		return n, nil
	}
	e, err := m.st.Read().JobsEnded(ctx, elsewhere)
	if err != nil {
		return 0, &Error{Kind: KindInternal, Msg: "read jobs", Cause: err}
	}
	return n + e, nil
}

// job runs op as a job of the actor (jobRunner.run), as m's options say.
// operation is what it does without naming an object ("start Vm"), the
// label of its metrics; summary says it with the names ("start Vm web1").
func (m *Manager) job(ctx context.Context, actor Actor, poolID, operation, summary string, objects []string, op func(ctx context.Context, j *jobRun) (any, error)) (any, error) {
	return m.jobs.run(ctx, m.opts, actor, poolID, operation, summary, objects, nil, "", op)
}

// vmJobRun is job of VM vm, its one object, with a plan made before it
// (jobPlan, or nil): the plan's step is recorded with the job's row, and
// the op may take the rest (or drop it); on a shared store the VM is read
// with the job's intent (jobRun.vmAtLock).
func (m *Manager) vmJobRun(ctx context.Context, actor Actor, poolID, operation, summary, vm string, pre *jobPlan, op func(ctx context.Context, j *jobRun) (any, error)) (any, error) {
	return m.jobs.run(ctx, m.opts, actor, poolID, operation, summary, []string{vm}, pre, vm, op)
}

// jobFailed records the event of a failed job.
func (m *Manager) jobFailed(ctx context.Context, id, poolID, summary, errText string) {
	m.event(ctx, "Error", "JobFailed", "Job", id, summary, poolID, fmt.Sprintf("job %s failed: %s", summary, errText))
}

// jobValue unpacks a job's result as T.
func jobValue[T any](v any, err error) (T, error) {
	var zero T
	if err != nil {
		return zero, err
	}
	return v.(T), nil
}
