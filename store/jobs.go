package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Job is one change the manager carries out, recorded before its first
// agent call.
type Job struct {
	ID        string
	Summary   string
	User      string
	Objects   string // space-separated ids the job locks
	PoolID    string // the pool it acts in; "" for manager-wide jobs
	Status    string
	Progress  int
	Message   string
	Result    string
	Error     string
	CreatedAt time.Time
	EndedAt   time.Time // zero while running
	// ManagerID is the member (Member.ID) that runs the job; "" for the
	// jobs recorded before jobs named their manager.
	ManagerID string
	// AbortRequested is set when abort Job reached another manager than
	// the one running the job (RequestJobAbort); the running manager reads
	// it (AbortRequestedJobs) and aborts the job.
	AbortRequested bool
	// Step is the agent call the job made last, recorded before it
	// (SetJobStep, or with the job's row when the call was decided before
	// the job began): what the leader finishes or undoes when the job's
	// manager dies. The backend gives it its form; "" before any.
	Step string
}

const jobColumns = `id, summary, user_name, objects, status, progress, message, result, error, created_at, COALESCE(ended_at, 0), pool_id, manager_id, abort_requested, step`

func scanJob(row scanner) (Job, error) {
	var j Job
	var created, ended, abort int64
	err := row.Scan(&j.ID, &j.Summary, &j.User, &j.Objects, &j.Status, &j.Progress, &j.Message, &j.Result, &j.Error, &created, &ended, &j.PoolID, &j.ManagerID, &abort, &j.Step)
	j.AbortRequested = abort != 0
	j.CreatedAt = fromUnixMilli(created)
	if ended != 0 {
		j.EndedAt = fromUnixMilli(ended)
	}
	return j, err
}

// InsertJob records a job before it does anything: its intent, with the
// step it is at when it was decided before the job began (Job.Step).
func (q *Queries) InsertJob(ctx context.Context, j Job) error {
	return insertJobDecl(j).run(ctx, q)
}

// InsertJob is Queries.InsertJob in a write of its own: a declared write.
func (s *Store) InsertJob(ctx context.Context, j Job) error {
	d := insertJobDecl(j)
	return s.writeDeclared(ctx, func(q *Queries) error { return d.run(ctx, q) }, d)
}

// insertJobDecl is InsertJob, on either engine.
func insertJobDecl(j Job) *declared {
	return &declared{query: `
		INSERT INTO jobs (id, summary, user_name, objects, status, progress, message, created_at, pool_id, manager_id, step)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		args: []any{j.ID, j.Summary, j.User, j.Objects, j.Status, j.Progress, j.Message, j.CreatedAt.UnixMilli(), j.PoolID, j.ManagerID, j.Step}}
}

// SetJobProgress records how far a running job is.
func (q *Queries) SetJobProgress(ctx context.Context, id string, progress int, message string) error {
	return q.execOne(ctx, `UPDATE jobs SET progress = $1, message = $2 WHERE id = $3 AND status = 'Running'`,
		progress, message, id)
}

// JobProgress is how far a running job is (SetJobsProgress).
type JobProgress struct {
	ID       string
	Progress int
	Message  string
}

// SetJobsProgress records how far each job of ps is, on PostgreSQL in one
// statement: one round trip for every job a manager runs, which on a shared
// store it writes down every second. A job that is no longer Running keeps
// what its end wrote.
func (q *Queries) SetJobsProgress(ctx context.Context, ps []JobProgress) error {
	if q.engine != PostgreSQL {
		for _, p := range ps {
			if err := q.SetJobProgress(ctx, p.ID, p.Progress, p.Message); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		return nil
	}
	ids, progress, messages := make([]string, len(ps)), make([]int64, len(ps)), make([]string, len(ps))
	for i, p := range ps {
		ids[i], progress[i], messages[i] = p.ID, int64(p.Progress), p.Message
	}
	return q.exec(ctx, `
		UPDATE jobs SET progress = p.progress, message = p.message
		FROM unnest(CAST($1 AS TEXT[]), CAST($2 AS BIGINT[]), CAST($3 AS TEXT[])) AS p(id, progress, message)
		WHERE jobs.id = p.id AND jobs.status = 'Running'`, ids, progress, messages)
}

// SetJobStep records the step a running job is at, before it takes it.
func (q *Queries) SetJobStep(ctx context.Context, id, step string) error {
	return setJobStepDecl(id, step).run(ctx, q)
}

// EndJob records the outcome of job id if it is still Running; a job that
// has ended meanwhile (the leader ended it when its manager seemed dead) is
// left as it ended: ErrNotFound.
func (q *Queries) EndJob(ctx context.Context, id, status, result, errText string, ended time.Time) error {
	return q.execOne(ctx, `
		UPDATE jobs SET status = $1, result = $2, error = $3, ended_at = $4,
			progress = CASE WHEN $1 = 'Success' THEN 100 ELSE progress END
		WHERE id = $5 AND status = 'Running'`, status, result, errText, ended.UnixMilli(), id)
}

// Job returns the job with id, or ErrNotFound.
func (q *Queries) Job(ctx context.Context, id string) (Job, error) {
	return queryOne(ctx, q.db, scanJob, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, id)
}

// Jobs returns the newest jobs first, at most limit.
func (q *Queries) Jobs(ctx context.Context, limit int) ([]Job, error) {
	return queryAll(ctx, q.db, scanJob, `SELECT `+jobColumns+` FROM jobs ORDER BY created_at DESC, id LIMIT $1`, limit)
}

// RequestJobAbort records that abort Job was asked of a Running job that
// another manager runs: that manager polls the flag (AbortRequestedJobs).
// A job that is not Running (it ended meanwhile) is ErrNotFound.
func (q *Queries) RequestJobAbort(ctx context.Context, id string) error {
	return q.execOne(ctx, `UPDATE jobs SET abort_requested = 1 WHERE id = $1 AND status = 'Running'`, id)
}

// AbortRequestedJobs returns the ids of member's Running jobs whose abort
// was asked through another manager (RequestJobAbort): one query for all
// of a manager's jobs, which it runs every second while it runs jobs.
func (q *Queries) AbortRequestedJobs(ctx context.Context, member string) ([]string, error) {
	return queryAll(ctx, q.db, scanString,
		`SELECT id FROM jobs WHERE status = 'Running' AND manager_id = $1 AND abort_requested = 1 ORDER BY id`, member)
}

// JobsEnded counts how many of the jobs with ids have ended (are no
// longer Running), in one query per jobsEndedChunk ids (both engines bound
// the parameters of a statement); ids not recorded are not counted.
func (q *Queries) JobsEnded(ctx context.Context, ids []string) (int, error) {
	total := 0
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), jobsEndedChunk)]
		ids = ids[len(chunk):]
		var b strings.Builder
		args := make([]any, len(chunk))
		for i, id := range chunk {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "$%d", i+1)
			args[i] = id
		}
		var n int
		err := q.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM jobs WHERE status <> 'Running' AND id IN (`+b.String()+`)`, args...).Scan(&n)
		if err != nil {
			return 0, translate(err)
		}
		total += n
	}
	return total, nil
}

// jobsEndedChunk is how many ids one query of JobsEnded names.
const jobsEndedChunk = 500
