package store

import (
	"context"
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
}

const jobColumns = `id, summary, user_name, objects, status, progress, message, result, error, created_at, COALESCE(ended_at, 0), pool_id, manager_id`

func scanJob(row scanner) (Job, error) {
	var j Job
	var created, ended int64
	err := row.Scan(&j.ID, &j.Summary, &j.User, &j.Objects, &j.Status, &j.Progress, &j.Message, &j.Result, &j.Error, &created, &ended, &j.PoolID, &j.ManagerID)
	j.CreatedAt = fromUnixMilli(created)
	if ended != 0 {
		j.EndedAt = fromUnixMilli(ended)
	}
	return j, err
}

// InsertJob records a job before it does anything: its intent.
func (q *Queries) InsertJob(ctx context.Context, j Job) error {
	return q.exec(ctx, `
		INSERT INTO jobs (id, summary, user_name, objects, status, progress, message, created_at, pool_id, manager_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		j.ID, j.Summary, j.User, j.Objects, j.Status, j.Progress, j.Message, j.CreatedAt.UnixMilli(), j.PoolID, j.ManagerID)
}

// SetJobProgress records how far a running job is.
func (q *Queries) SetJobProgress(ctx context.Context, id string, progress int, message string) error {
	return q.execOne(ctx, `UPDATE jobs SET progress = $1, message = $2 WHERE id = $3 AND status = 'Running'`,
		progress, message, id)
}

// EndJob records a job's outcome.
func (q *Queries) EndJob(ctx context.Context, id, status, result, errText string, ended time.Time) error {
	return q.execOne(ctx, `
		UPDATE jobs SET status = $1, result = $2, error = $3, ended_at = $4,
			progress = CASE WHEN $1 = 'Success' THEN 100 ELSE progress END
		WHERE id = $5`, status, result, errText, ended.UnixMilli(), id)
}

// Job returns the job with id, or ErrNotFound.
func (q *Queries) Job(ctx context.Context, id string) (Job, error) {
	return queryOne(ctx, q.db, scanJob, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, id)
}

// Jobs returns the newest jobs first, at most limit.
func (q *Queries) Jobs(ctx context.Context, limit int) ([]Job, error) {
	return queryAll(ctx, q.db, scanJob, `SELECT `+jobColumns+` FROM jobs ORDER BY created_at DESC, id LIMIT $1`, limit)
}
