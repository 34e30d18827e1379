package store

import "context"

// GetMeta returns the value stored under key, or ErrNotFound.
func (q *Queries) GetMeta(ctx context.Context, key string) (string, error) {
	return queryOne(ctx, q.db, scanString, `SELECT value FROM meta WHERE key = $1`, key)
}

// SetMeta stores value under key, replacing what was there.
func (q *Queries) SetMeta(ctx context.Context, key, value string) error {
	return q.exec(ctx,
		`INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
}
