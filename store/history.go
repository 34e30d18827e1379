package store

import (
	"context"
	"time"
)

// AppendHistory adds a line to the user's history and keeps only the newest
// keep lines.
func (q *Queries) AppendHistory(ctx context.Context, user, line string, keep int) error {
	if err := q.exec(ctx, `INSERT INTO history (user_name, line, created_at) VALUES ($1, $2, $3)`,
		user, line, time.Now().Unix()); err != nil {
		return err
	}
	return q.exec(ctx, `
		DELETE FROM history WHERE user_name = $1 AND seq <= (
			SELECT seq FROM history WHERE user_name = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2)`, user, keep)
}

// History returns the user's newest lines, oldest first, at most limit.
func (q *Queries) History(ctx context.Context, user string, limit int) ([]string, error) {
	return queryAll(ctx, q.db, scanString, `SELECT line FROM (SELECT seq, line FROM history WHERE user_name = $1 ORDER BY seq DESC LIMIT $2) AS newest ORDER BY seq`, user, limit)
}
