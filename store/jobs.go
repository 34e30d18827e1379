package store

import (
	"context"
	"time"
)

const jobColumns = `id, summary, user_name, objects, status, progress, message, result, error, created_at, COALESCE(ended_at, 0), pool_id`

func scanJob(row interface{ Scan(...any) error }) (Job, error) {
	var j Job
	var created, ended int64
	err := row.Scan(&j.ID, &j.Summary, &j.User, &j.Objects, &j.Status, &j.Progress, &j.Message, &j.Result, &j.Error, &created, &ended, &j.PoolID)
	j.CreatedAt = time.UnixMilli(created).UTC()
	if ended != 0 {
		j.EndedAt = time.UnixMilli(ended).UTC()
	}
	return j, translate(err)
}

// InsertJob records a job before it does anything: its intent.
func (q *Queries) InsertJob(ctx context.Context, j Job) error {
	_, err := q.db.ExecContext(ctx, `
		INSERT INTO jobs (id, summary, user_name, objects, status, progress, message, created_at, pool_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		j.ID, j.Summary, j.User, j.Objects, j.Status, j.Progress, j.Message, j.CreatedAt.UnixMilli(), j.PoolID)
	return translate(err)
}

// SetJobProgress records how far a running job is.
func (q *Queries) SetJobProgress(ctx context.Context, id string, progress int, message string) error {
	return expectOne(q.db.ExecContext(ctx, `UPDATE jobs SET progress = $1, message = $2 WHERE id = $3 AND status = 'Running'`,
		progress, message, id))
}

// EndJob records a job's outcome.
func (q *Queries) EndJob(ctx context.Context, id, status, result, errText string, ended time.Time) error {
	return expectOne(q.db.ExecContext(ctx, `
		UPDATE jobs SET status = $1, result = $2, error = $3, ended_at = $4,
			progress = CASE WHEN $1 = 'Success' THEN 100 ELSE progress END
		WHERE id = $5`, status, result, errText, ended.UnixMilli(), id))
}

// Job returns the job with id, or ErrNotFound.
func (q *Queries) Job(ctx context.Context, id string) (Job, error) {
	return scanJob(q.db.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, id))
}

// Jobs returns the newest jobs first, at most limit.
func (q *Queries) Jobs(ctx context.Context, limit int) ([]Job, error) {
	return queryAll(ctx, q.db, scanJob, `SELECT `+jobColumns+` FROM jobs ORDER BY created_at DESC, id LIMIT $1`, limit)
}

// RunningJobs returns the jobs not yet ended.
func (q *Queries) RunningJobs(ctx context.Context) ([]Job, error) {
	return queryAll(ctx, q.db, scanJob, `SELECT `+jobColumns+` FROM jobs WHERE status = 'Running' ORDER BY created_at`)
}

const eventColumns = `id, severity, kind, object_type, object_id, object_name, pool_id, description, acknowledged, created_at`

func scanEvent(row interface{ Scan(...any) error }) (Event, error) {
	var e Event
	var created int64
	err := row.Scan(&e.ID, &e.Severity, &e.Kind, &e.ObjectType, &e.ObjectID, &e.ObjectName, &e.PoolID, &e.Description,
		&e.Acknowledged, &created)
	e.CreatedAt = time.UnixMilli(created).UTC()
	return e, translate(err)
}

// InsertEvent records an event.
func (q *Queries) InsertEvent(ctx context.Context, e Event) error {
	_, err := q.db.ExecContext(ctx, `
		INSERT INTO events (id, severity, kind, object_type, object_id, object_name, pool_id, description, acknowledged, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		e.ID, e.Severity, e.Kind, e.ObjectType, e.ObjectID, e.ObjectName, e.PoolID, e.Description, e.Acknowledged,
		e.CreatedAt.UnixMilli())
	return translate(err)
}

// Events returns the newest events first, at most limit; unacknowledged
// only when unackedOnly.
func (q *Queries) Events(ctx context.Context, unackedOnly bool, limit int) ([]Event, error) {
	where := ""
	if unackedOnly {
		where = "WHERE acknowledged = 0 "
	}
	return queryAll(ctx, q.db, scanEvent, `SELECT `+eventColumns+` FROM events `+where+`ORDER BY created_at DESC, id LIMIT $1`, limit)
}

// Event returns the event with id, or ErrNotFound.
func (q *Queries) Event(ctx context.Context, id string) (Event, error) {
	return scanEvent(q.db.QueryRowContext(ctx, `SELECT `+eventColumns+` FROM events WHERE id = $1`, id))
}

// AckEvent marks an event acknowledged.
func (q *Queries) AckEvent(ctx context.Context, id string) error {
	return expectOne(q.db.ExecContext(ctx, `UPDATE events SET acknowledged = 1 WHERE id = $1`, id))
}

// InsertAudit appends a record to the audit log.
func (q *Queries) InsertAudit(ctx context.Context, a AuditRecord) error {
	_, err := q.db.ExecContext(ctx, `INSERT INTO audit_records (user_name, remote, command, result, created_at) VALUES ($1, $2, $3, $4, $5)`,
		a.User, a.Remote, a.Command, a.Result, a.CreatedAt.UnixMilli())
	return translate(err)
}

// AuditRecords returns the newest records first, at most limit.
func (q *Queries) AuditRecords(ctx context.Context, limit int) ([]AuditRecord, error) {
	return queryAll(ctx, q.db, func(row interface{ Scan(...any) error }) (AuditRecord, error) {
		var a AuditRecord
		var created int64
		err := row.Scan(&a.Seq, &a.User, &a.Remote, &a.Command, &a.Result, &created)
		a.CreatedAt = time.UnixMilli(created).UTC()
		return a, translate(err)
	}, `SELECT seq, user_name, remote, command, result, created_at FROM audit_records ORDER BY seq DESC LIMIT $1`, limit)
}
