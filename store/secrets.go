package store

import (
	"context"
	"fmt"
	"time"
)

// Secret returns the sealed value stored under name (the sealer's bytes in
// standard base64), or ErrNotFound. The store never sees a secret in
// clear: the backend seals and opens them.
func (q *Queries) Secret(ctx context.Context, name string) (string, error) {
	return queryOne(ctx, q.db, scanString, `SELECT sealed FROM secrets WHERE name = $1`, name)
}

// AddSecret stores sealed under name unless a value is there already, and
// reports whether it stored it. A secret is written once and never
// replaced: managers starting together on one database each offer theirs,
// and all of them then read the one that was stored first.
func (q *Queries) AddSecret(ctx context.Context, name, sealed string, at time.Time) (bool, error) {
	res, err := q.db.ExecContext(ctx,
		`INSERT INTO secrets (name, sealed, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`,
		name, sealed, unix(at))
	if err != nil {
		return false, translate(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("rows affected: %w", err)
	}
	return n == 1, nil
}
