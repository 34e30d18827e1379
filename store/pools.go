package store

import (
	"context"
	"time"
)

// ServerPool is a set of servers that share storage and run VMs together.
type ServerPool struct {
	ID          string
	Name        string
	Description string
	StartPolicy string
	CreatedAt   time.Time
	HA          PoolHA
}

// PoolHA is a pool's high availability: whether it is on, the repository
// where its agents keep their leases, and the lease timing.
type PoolHA struct {
	Enabled      bool
	RepositoryID string // "" when none was named
	Renew        time.Duration
	Fence        time.Duration
	Margin       time.Duration
}

const poolColumns = `id, name, description, start_policy, created_at, ha_enabled, ha_repository_id, ha_renew_ms, ha_fence_ms, ha_margin_ms`

func scanPool(row scanner) (ServerPool, error) {
	var p ServerPool
	var created, renew, fence, margin int64
	err := row.Scan(&p.ID, &p.Name, &p.Description, &p.StartPolicy, &created,
		&p.HA.Enabled, &p.HA.RepositoryID, &renew, &fence, &margin)
	p.CreatedAt = fromUnix(created)
	p.HA.Renew, p.HA.Fence, p.HA.Margin = time.Duration(renew)*time.Millisecond, time.Duration(fence)*time.Millisecond, time.Duration(margin)*time.Millisecond
	return p, err
}

// InsertServerPool adds p.
func (q *Queries) InsertServerPool(ctx context.Context, p ServerPool) error {
	return q.exec(ctx,
		`INSERT INTO server_pools (id, name, description, start_policy, created_at) VALUES ($1, $2, $3, $4, $5)`,
		p.ID, p.Name, p.Description, defaultString(p.StartPolicy, "BEST_SERVER"), unix(p.CreatedAt))
}

// ServerPool returns the pool with id, or ErrNotFound.
func (q *Queries) ServerPool(ctx context.Context, id string) (ServerPool, error) {
	return queryOne(ctx, q.db, scanPool, `SELECT `+poolColumns+` FROM server_pools WHERE id = $1`, id)
}

// ServerPools returns every pool, by name then id.
func (q *Queries) ServerPools(ctx context.Context) ([]ServerPool, error) {
	return queryAll(ctx, q.db, scanPool, `SELECT `+poolColumns+` FROM server_pools ORDER BY name, id`)
}

// ServerPoolsByName returns the pools called name (names need not be unique).
func (q *Queries) ServerPoolsByName(ctx context.Context, name string) ([]ServerPool, error) {
	return queryAll(ctx, q.db, scanPool, `SELECT `+poolColumns+` FROM server_pools WHERE name = $1 ORDER BY id`, name)
}

// UpdateServerPool writes a pool's name, description and start policy.
func (q *Queries) UpdateServerPool(ctx context.Context, p ServerPool) error {
	return q.execOne(ctx,
		`UPDATE server_pools SET name = $1, description = $2, start_policy = $3 WHERE id = $4`,
		p.Name, p.Description, p.StartPolicy, p.ID)
}

// DeleteServerPool removes an empty pool.
func (q *Queries) DeleteServerPool(ctx context.Context, id string) error {
	return q.execOne(ctx, `DELETE FROM server_pools WHERE id = $1`, id)
}

// UpdateServerPoolHA writes a pool's high-availability settings.
func (q *Queries) UpdateServerPoolHA(ctx context.Context, id string, ha PoolHA) error {
	return q.execOne(ctx,
		`UPDATE server_pools SET ha_enabled = $1, ha_repository_id = $2, ha_renew_ms = $3, ha_fence_ms = $4, ha_margin_ms = $5 WHERE id = $6`,
		ha.Enabled, ha.RepositoryID, ha.Renew.Milliseconds(), ha.Fence.Milliseconds(), ha.Margin.Milliseconds(), id)
}
