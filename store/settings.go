package store

import "context"

// ManagerSettings are the manager's policy settings, one row.
type ManagerSettings struct {
	// ImportAllowedNetworks is a comma-separated list of networks in CIDR
	// form ("" for none), as the backend checked it.
	ImportAllowedNetworks string
	// EvacuationParallelism is how many VMs entering maintenance mode
	// migrates off a server at once (1 to 64).
	EvacuationParallelism int
	// CloneParallelismPerServer and CloneParallelismPerRepository bound
	// the copies of clones that run at once on one server and into one
	// repository (1 to 64).
	CloneParallelismPerServer, CloneParallelismPerRepository int
	// PasswordCacheSeconds is how long a verified password is remembered
	// so that the same user's next login with it skips bcrypt (0 to
	// 86400; 0 remembers none).
	PasswordCacheSeconds int
}

func scanManagerSettings(row scanner) (ManagerSettings, error) {
	var s ManagerSettings
	err := row.Scan(&s.ImportAllowedNetworks, &s.EvacuationParallelism, &s.CloneParallelismPerServer, &s.CloneParallelismPerRepository, &s.PasswordCacheSeconds)
	return s, err
}

// ManagerSettings returns the manager's settings.
func (q *Queries) ManagerSettings(ctx context.Context) (ManagerSettings, error) {
	return queryOne(ctx, q.db, scanManagerSettings,
		`SELECT import_allowed_networks, evacuation_parallelism, clone_parallelism_per_server, clone_parallelism_per_repository,
		password_cache_seconds FROM manager_settings WHERE id = 1`)
}

// UpdateManagerSettings writes the manager's settings.
func (q *Queries) UpdateManagerSettings(ctx context.Context, s ManagerSettings) error {
	return q.execOne(ctx, `UPDATE manager_settings SET import_allowed_networks = $1, evacuation_parallelism = $2,
		clone_parallelism_per_server = $3, clone_parallelism_per_repository = $4, password_cache_seconds = $5 WHERE id = 1`,
		s.ImportAllowedNetworks, s.EvacuationParallelism, s.CloneParallelismPerServer, s.CloneParallelismPerRepository, s.PasswordCacheSeconds)
}
