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
			out = append(out, m.jobs.live(jobView(r)))
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
	return m.jobs.live(jobView(r)), nil
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
	rj, ok := m.jobs.find(id)
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
// carried to its end, so that its outcome is known and recorded) and
// returns it Aborted. A job past its last abortable point (its remaining
// steps are one agent call and recording it) is carried to its end: then
// nothing was aborted, and AbortJob fails with KindConflict saying at
// which step the job was and how it ended. A job that outlasts the wait
// fails it with KindStillRunning: the abort stays asked.
func (m *Manager) AbortJob(ctx context.Context, id string) (Job, error) {
	if _, err := m.Job(ctx, id); err != nil {
		return Job{}, err
	}
	if err := m.authorize(ctx, PermVMLifecycle); err != nil {
		return Job{}, err
	}
	rj, ok := m.jobs.find(id)
	if !ok {
		j, err := m.Job(ctx, id)
		if err != nil {
			return Job{}, err
		}
		return Job{}, errorf(KindInvalidState, "Job %s is %s; abort needs Running", id, j.Status)
	}
	progress, message := m.jobs.askAbort(rj)
	select {
	case <-rj.done:
	case <-ctx.Done():
		return Job{}, &Error{Kind: KindStillRunning, JobID: id,
			Msg: fmt.Sprintf("job %s (%s): abort asked at step %s and the job is still running; it stops at its next abortable point, if it has one: follow it with show Job id=%s", id, rj.summary, stepOf(progress, message), id)}
	}
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

// JobsEnded counts how many of the jobs have ended, in one read: the
// progress of a multi-object action.
func (m *Manager) JobsEnded(ctx context.Context, ids []string) (int, error) {
	return m.jobs.ended(ids), nil
}

// job runs op as a job of the actor (jobRunner.run), as m's options say.
// operation is what it does without naming an object ("start Vm"), the
// label of its metrics; summary says it with the names ("start Vm web1").
func (m *Manager) job(ctx context.Context, actor Actor, poolID, operation, summary string, objects []string, op func(ctx context.Context, j *jobRun) (any, error)) (any, error) {
	return m.jobs.run(ctx, m.opts, actor, poolID, operation, summary, objects, op)
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
