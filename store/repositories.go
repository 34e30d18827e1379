package store

import (
	"context"
	"time"
)

// Repository is storage shared by the servers of a pool.
type Repository struct {
	ID         string
	Name       string
	PoolID     string
	FSLocation string
	MountPoint string
	CreatedAt  time.Time
}

const repoColumns = `id, name, pool_id, fs_location, mount_point, created_at`

func scanRepo(row scanner) (Repository, error) {
	var r Repository
	var created int64
	err := row.Scan(&r.ID, &r.Name, &r.PoolID, &r.FSLocation, &r.MountPoint, &created)
	r.CreatedAt = fromUnix(created)
	return r, err
}

// InsertRepository adds r.
func (q *Queries) InsertRepository(ctx context.Context, r Repository) error {
	return q.exec(ctx,
		`INSERT INTO repositories (`+repoColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		r.ID, r.Name, r.PoolID, r.FSLocation, r.MountPoint, unix(r.CreatedAt))
}

// Repository returns the repository with id, or ErrNotFound.
func (q *Queries) Repository(ctx context.Context, id string) (Repository, error) {
	return queryOne(ctx, q.db, scanRepo, `SELECT `+repoColumns+` FROM repositories WHERE id = $1`, id)
}

// Repositories returns every repository, by name then id.
func (q *Queries) Repositories(ctx context.Context) ([]Repository, error) {
	return queryAll(ctx, q.db, scanRepo, `SELECT `+repoColumns+` FROM repositories ORDER BY name, id`)
}

// RepositoriesByName returns the repositories called name.
func (q *Queries) RepositoriesByName(ctx context.Context, name string) ([]Repository, error) {
	return queryAll(ctx, q.db, scanRepo, `SELECT `+repoColumns+` FROM repositories WHERE name = $1 ORDER BY id`, name)
}

// RepositoriesInPool returns the repositories of pool poolID.
func (q *Queries) RepositoriesInPool(ctx context.Context, poolID string) ([]Repository, error) {
	return queryAll(ctx, q.db, scanRepo, `SELECT `+repoColumns+` FROM repositories WHERE pool_id = $1 ORDER BY name, id`, poolID)
}

// DeleteRepository removes a repository record.
func (q *Queries) DeleteRepository(ctx context.Context, id string) error {
	return q.execOne(ctx, `DELETE FROM repositories WHERE id = $1`, id)
}
