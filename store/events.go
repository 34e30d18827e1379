package store

import (
	"context"
	"time"
)

// Event is something an operator should know about: a failed job, an agent
// fault, a change made outside the manager.
type Event struct {
	ID           string
	Severity     string
	Kind         string
	ObjectType   string
	ObjectID     string
	ObjectName   string
	PoolID       string
	Description  string
	Acknowledged bool
	CreatedAt    time.Time
}

const eventColumns = `id, severity, kind, object_type, object_id, object_name, pool_id, description, acknowledged, created_at`

func scanEvent(row scanner) (Event, error) {
	var e Event
	var created int64
	err := row.Scan(&e.ID, &e.Severity, &e.Kind, &e.ObjectType, &e.ObjectID, &e.ObjectName, &e.PoolID, &e.Description,
		&e.Acknowledged, &created)
	e.CreatedAt = fromUnixMilli(created)
	return e, err
}

// InsertEvent records an event.
func (q *Queries) InsertEvent(ctx context.Context, e Event) error {
	return q.exec(ctx, `
		INSERT INTO events (id, severity, kind, object_type, object_id, object_name, pool_id, description, acknowledged, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		e.ID, e.Severity, e.Kind, e.ObjectType, e.ObjectID, e.ObjectName, e.PoolID, e.Description, e.Acknowledged,
		e.CreatedAt.UnixMilli())
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
	return queryOne(ctx, q.db, scanEvent, `SELECT `+eventColumns+` FROM events WHERE id = $1`, id)
}

// AckEvent marks an event acknowledged.
func (q *Queries) AckEvent(ctx context.Context, id string) error {
	return q.execOne(ctx, `UPDATE events SET acknowledged = 1 WHERE id = $1`, id)
}
