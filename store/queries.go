package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// dbtx is what both *sql.DB and *sql.Tx offer; Queries run on either.
type dbtx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Queries are the typed reads and writes of the store. Obtain them from Read
// (outside a transaction) or inside Write.
type Queries struct {
	db dbtx
	st *Store
	// serversDirty: this transaction wrote servers; the generation is
	// bumped again after the commit.
	serversDirty bool
}

// serversChanged bumps the servers' generation now and, through
// serversDirty, after the commit: a list read between the two is not kept.
func (q *Queries) serversChanged() {
	q.serversDirty = true
	if q.st != nil {
		q.st.serversGen.Add(1)
	}
}

func unix(t time.Time) int64 { return t.Unix() }

func defaultString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// GetMeta returns the value stored under key, or ErrNotFound.
func (q *Queries) GetMeta(ctx context.Context, key string) (string, error) {
	var v string
	err := q.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = $1`, key).Scan(&v)
	return v, translate(err)
}

// SetMeta stores value under key, replacing what was there.
func (q *Queries) SetMeta(ctx context.Context, key, value string) error {
	_, err := q.db.ExecContext(ctx,
		`INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return translate(err)
}

// CountUsers returns the number of users.
func (q *Queries) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := q.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n)
	return n, translate(err)
}

// InsertUser adds u; a taken name is ErrConflict.
func (q *Queries) InsertUser(ctx context.Context, u User) error {
	_, err := q.db.ExecContext(ctx,
		`INSERT INTO users (id, name, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5)`,
		u.ID, u.Name, u.PasswordHash, u.Role, unix(u.CreatedAt))
	return translate(err)
}

// UserByName returns the user called name, or ErrNotFound.
func (q *Queries) UserByName(ctx context.Context, name string) (User, error) {
	var u User
	var created int64
	err := q.db.QueryRowContext(ctx,
		`SELECT id, name, password_hash, role, created_at FROM users WHERE name = $1`, name).
		Scan(&u.ID, &u.Name, &u.PasswordHash, &u.Role, &created)
	u.CreatedAt = time.Unix(created, 0).UTC()
	return u, translate(err)
}

// InsertServerPool adds p.
func (q *Queries) InsertServerPool(ctx context.Context, p ServerPool) error {
	q.serversChanged() // placement caches pools with their servers
	_, err := q.db.ExecContext(ctx,
		`INSERT INTO server_pools (id, name, description, start_policy, created_at) VALUES ($1, $2, $3, $4, $5)`,
		p.ID, p.Name, p.Description, defaultString(p.StartPolicy, "BEST_SERVER"), unix(p.CreatedAt))
	return translate(err)
}

const poolColumns = `id, name, description, start_policy, created_at`

func scanPool(row interface{ Scan(...any) error }) (ServerPool, error) {
	var p ServerPool
	var created int64
	err := row.Scan(&p.ID, &p.Name, &p.Description, &p.StartPolicy, &created)
	p.CreatedAt = time.Unix(created, 0).UTC()
	return p, translate(err)
}

// ServerPool returns the pool with id, or ErrNotFound.
func (q *Queries) ServerPool(ctx context.Context, id string) (ServerPool, error) {
	return scanPool(q.db.QueryRowContext(ctx, `SELECT `+poolColumns+` FROM server_pools WHERE id = $1`, id))
}

// ServerPools returns every pool, by name then id.
func (q *Queries) ServerPools(ctx context.Context) ([]ServerPool, error) {
	return queryAll(ctx, q.db, scanPool, `SELECT `+poolColumns+` FROM server_pools ORDER BY name, id`)
}

// ServerPoolsByName returns the pools called name (names need not be unique).
func (q *Queries) ServerPoolsByName(ctx context.Context, name string) ([]ServerPool, error) {
	return queryAll(ctx, q.db, scanPool, `SELECT `+poolColumns+` FROM server_pools WHERE name = $1 ORDER BY id`, name)
}

const serverColumns = `id, name, unique_id, hostname, address, port, agent_password, cert_spki_sha256,
	COALESCE(pool_id, ''), ovm_version, agent_version, manufacturer, product, cpu_model, cpu_sockets,
	cores_per_socket, threads_per_core, cpu_khz, total_memory_mib, dom0_memory_mib, status, roles, is_master,
	maintenance_mode, created_at`

func scanServer(row interface{ Scan(...any) error }) (Server, error) {
	var s Server
	var created int64
	err := row.Scan(&s.ID, &s.Name, &s.UniqueID, &s.Hostname, &s.Address, &s.Port, &s.AgentPassword,
		&s.CertSPKISHA256, &s.PoolID, &s.OVMVersion, &s.AgentVersion, &s.Manufacturer, &s.Product,
		&s.CPUModel, &s.CPUSockets, &s.CoresPerSocket, &s.ThreadsPerCore, &s.CPUKHz, &s.TotalMemoryMiB,
		&s.Dom0MemoryMiB, &s.Status, &s.Roles, &s.IsMaster, &s.Maintenance, &created)
	s.CreatedAt = time.Unix(created, 0).UTC()
	return s, translate(err)
}

// UpsertServer inserts s, or, when a server with the same unique_id exists,
// updates its address, credentials, pin and hardware and keeps its id, name,
// pool and creation time. It returns the row as stored.
func (q *Queries) UpsertServer(ctx context.Context, s Server) (Server, error) {
	q.serversChanged()
	_, err := q.db.ExecContext(ctx, `
		INSERT INTO servers (id, name, unique_id, hostname, address, port, agent_password, cert_spki_sha256,
			pool_id, ovm_version, agent_version, manufacturer, product, cpu_model, cpu_sockets, cores_per_socket,
			threads_per_core, cpu_khz, total_memory_mib, dom0_memory_mib, status, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)
		ON CONFLICT (unique_id) DO UPDATE SET
			hostname = excluded.hostname, address = excluded.address, port = excluded.port,
			agent_password = excluded.agent_password, cert_spki_sha256 = excluded.cert_spki_sha256,
			ovm_version = excluded.ovm_version, agent_version = excluded.agent_version,
			manufacturer = excluded.manufacturer, product = excluded.product, cpu_model = excluded.cpu_model,
			cpu_sockets = excluded.cpu_sockets, cores_per_socket = excluded.cores_per_socket,
			threads_per_core = excluded.threads_per_core, cpu_khz = excluded.cpu_khz,
			total_memory_mib = excluded.total_memory_mib, dom0_memory_mib = excluded.dom0_memory_mib,
			status = excluded.status`,
		s.ID, s.Name, s.UniqueID, s.Hostname, s.Address, s.Port, s.AgentPassword, s.CertSPKISHA256,
		nullable(s.PoolID), s.OVMVersion, s.AgentVersion, s.Manufacturer, s.Product, s.CPUModel, s.CPUSockets,
		s.CoresPerSocket, s.ThreadsPerCore, s.CPUKHz, s.TotalMemoryMiB, s.Dom0MemoryMiB, s.Status, unix(s.CreatedAt))
	if err != nil {
		return Server{}, translate(err)
	}
	return scanServer(q.db.QueryRowContext(ctx, `SELECT `+serverColumns+` FROM servers WHERE unique_id = $1`, s.UniqueID))
}

// Server returns the server with id, or ErrNotFound.
func (q *Queries) Server(ctx context.Context, id string) (Server, error) {
	return scanServer(q.db.QueryRowContext(ctx, `SELECT `+serverColumns+` FROM servers WHERE id = $1`, id))
}

// Servers returns every server, by name then id.
func (q *Queries) Servers(ctx context.Context) ([]Server, error) {
	return queryAll(ctx, q.db, scanServer, `SELECT `+serverColumns+` FROM servers ORDER BY name, id`)
}

// ServersByName returns the servers called name.
func (q *Queries) ServersByName(ctx context.Context, name string) ([]Server, error) {
	return queryAll(ctx, q.db, scanServer, `SELECT `+serverColumns+` FROM servers WHERE name = $1 ORDER BY id`, name)
}

// ServersInPool returns the servers of pool id.
func (q *Queries) ServersInPool(ctx context.Context, poolID string) ([]Server, error) {
	return queryAll(ctx, q.db, scanServer, `SELECT `+serverColumns+` FROM servers WHERE pool_id = $1 ORDER BY name, id`, poolID)
}

// SetServerPool puts server id in pool poolID ("" for none).
func (q *Queries) SetServerPool(ctx context.Context, id, poolID string) error {
	q.serversChanged()
	return expectOne(q.db.ExecContext(ctx, `UPDATE servers SET pool_id = $1 WHERE id = $2`, nullable(poolID), id))
}

// SetServerStatus records the server's status.
func (q *Queries) SetServerStatus(ctx context.Context, id, status string) error {
	q.serversChanged()
	return expectOne(q.db.ExecContext(ctx, `UPDATE servers SET status = $1 WHERE id = $2`, status, id))
}

const repoColumns = `id, name, pool_id, fs_location, mount_point, created_at`

func scanRepo(row interface{ Scan(...any) error }) (Repository, error) {
	var r Repository
	var created int64
	err := row.Scan(&r.ID, &r.Name, &r.PoolID, &r.FSLocation, &r.MountPoint, &created)
	r.CreatedAt = time.Unix(created, 0).UTC()
	return r, translate(err)
}

// InsertRepository adds r.
func (q *Queries) InsertRepository(ctx context.Context, r Repository) error {
	_, err := q.db.ExecContext(ctx,
		`INSERT INTO repositories (id, name, pool_id, fs_location, mount_point, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		r.ID, r.Name, r.PoolID, r.FSLocation, r.MountPoint, unix(r.CreatedAt))
	return translate(err)
}

// Repository returns the repository with id, or ErrNotFound.
func (q *Queries) Repository(ctx context.Context, id string) (Repository, error) {
	return scanRepo(q.db.QueryRowContext(ctx, `SELECT `+repoColumns+` FROM repositories WHERE id = $1`, id))
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

const vmColumns = `id, name, pool_id, repo_id, COALESCE(server_id, ''), status, memory_mib, cpu_count, domain_type, description,
	cpu_count_limit, cpu_pinning, preferred_servers, high_availability, os_type, boot_order, start_policy, last_server_id, created_at`

func scanVM(row interface{ Scan(...any) error }) (VM, error) {
	var v VM
	var created int64
	err := row.Scan(&v.ID, &v.Name, &v.PoolID, &v.RepoID, &v.ServerID, &v.Status, &v.MemoryMiB, &v.CPUCount,
		&v.DomainType, &v.Description, &v.CPUCountLimit, &v.CPUPinning, &v.PreferredServers, &v.HA, &v.OSType,
		&v.BootOrder, &v.StartPolicy, &v.LastServerID, &created)
	v.CreatedAt = time.Unix(created, 0).UTC()
	return v, translate(err)
}

// InsertVM adds v.
func (q *Queries) InsertVM(ctx context.Context, v VM) error {
	_, err := q.db.ExecContext(ctx, `
		INSERT INTO vms (id, name, pool_id, repo_id, server_id, status, memory_mib, cpu_count, domain_type, description,
			cpu_count_limit, cpu_pinning, preferred_servers, high_availability, os_type, boot_order, start_policy, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
		v.ID, v.Name, v.PoolID, v.RepoID, nullable(v.ServerID), v.Status, v.MemoryMiB, v.CPUCount, v.DomainType,
		v.Description, v.CPUCountLimit, v.CPUPinning, v.PreferredServers, v.HA, defaultString(v.OSType, "Oracle Linux 9"),
		defaultString(v.BootOrder, "DISK"), defaultString(v.StartPolicy, "USE_POOL_POLICY"), unix(v.CreatedAt))
	return translate(err)
}

// VM returns the VM with id, or ErrNotFound.
func (q *Queries) VM(ctx context.Context, id string) (VM, error) {
	return scanVM(q.db.QueryRowContext(ctx, `SELECT `+vmColumns+` FROM vms WHERE id = $1`, id))
}

// VMs returns every VM, by name then id.
func (q *Queries) VMs(ctx context.Context) ([]VM, error) {
	return queryAll(ctx, q.db, scanVM, `SELECT `+vmColumns+` FROM vms ORDER BY name, id`)
}

// VMSummary is the part of a VM a listing shows. Reading it takes 8 of a
// VM's 19 columns: a listing of many VMs spends most of its time reading
// columns.
type VMSummary struct {
	ID, Name, PoolID, RepoID, ServerID, Status string
	MemoryMiB, CPUCount                        int64
}

func scanVMSummary(row interface{ Scan(...any) error }) (VMSummary, error) {
	var v VMSummary
	err := row.Scan(&v.ID, &v.Name, &v.PoolID, &v.RepoID, &v.ServerID, &v.Status, &v.MemoryMiB, &v.CPUCount)
	return v, translate(err)
}

// VMSummaries returns every VM's summary, by name then id.
func (q *Queries) VMSummaries(ctx context.Context) ([]VMSummary, error) {
	return queryAll(ctx, q.db, scanVMSummary,
		`SELECT id, name, pool_id, repo_id, COALESCE(server_id, ''), status, memory_mib, cpu_count FROM vms ORDER BY name, id`)
}

// VMsByName returns the VMs called name.
func (q *Queries) VMsByName(ctx context.Context, name string) ([]VM, error) {
	return queryAll(ctx, q.db, scanVM, `SELECT `+vmColumns+` FROM vms WHERE name = $1 ORDER BY id`, name)
}

// VMsOnServer returns the VMs placed on server id.
func (q *Queries) VMsOnServer(ctx context.Context, serverID string) ([]VM, error) {
	return queryAll(ctx, q.db, scanVM, `SELECT `+vmColumns+` FROM vms WHERE server_id = $1 ORDER BY name, id`, serverID)
}

// SetVMState records where the VM runs ("" for nowhere) and its status; the
// last server a VM ran on is kept for CURRENT_SERVER placement.
func (q *Queries) SetVMState(ctx context.Context, id, serverID, status string) error {
	return expectOne(q.db.ExecContext(ctx, `
		UPDATE vms SET server_id = $1, status = $2,
			last_server_id = CASE WHEN $1 IS NULL THEN last_server_id ELSE $1 END
		WHERE id = $3`, nullable(serverID), status, id))
}

// DeleteVM removes the VM row.
func (q *Queries) DeleteVM(ctx context.Context, id string) error {
	return expectOne(q.db.ExecContext(ctx, `DELETE FROM vms WHERE id = $1`, id))
}

// Count returns the number of rows of table (one of the store's own table
// names) where column equals value; callers use it to say what uses an
// object before deleting it.
func (q *Queries) Count(ctx context.Context, table, column, value string) (int, error) {
	switch table + "." + column {
	case "vms.repo_id", "vms.server_id", "vms.pool_id", "servers.pool_id", "repositories.pool_id":
	default:
		return 0, fmt.Errorf("count: %s.%s is not countable", table, column)
	}
	var n int
	err := q.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table+` WHERE `+column+` = $1`, value).Scan(&n)
	return n, translate(err)
}

func queryAll[T any](ctx context.Context, db dbtx, scan func(interface{ Scan(...any) error }) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, translate(rows.Err())
}

func expectOne(res sql.Result, err error) error {
	if err != nil {
		return translate(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// UserSetting returns the value of a user's setting, or ErrNotFound.
func (q *Queries) UserSetting(ctx context.Context, userName, key string) (string, error) {
	var v string
	err := q.db.QueryRowContext(ctx, `
		SELECT s.value FROM user_settings s JOIN users u ON u.id = s.user_id
		WHERE u.name = $1 AND s.key = $2`, userName, key).Scan(&v)
	return v, translate(err)
}

// SetUserSetting stores a user's setting, replacing what was there.
func (q *Queries) SetUserSetting(ctx context.Context, userName, key, value string) error {
	return expectOne(q.db.ExecContext(ctx, `
		INSERT INTO user_settings (user_id, key, value) SELECT id, $2, $3 FROM users WHERE name = $1
		ON CONFLICT (user_id, key) DO UPDATE SET value = excluded.value`, userName, key, value))
}

// NamesWithPrefix returns up to limit distinct names of objects in table
// (vms, servers, server_pools, repositories) starting with prefix, in order;
// statuses (VMs) and pools, when not nil, narrow them.
// It is a range scan on the name, so it stays fast on large tables that have
// an index on name.
func (q *Queries) NamesWithPrefix(ctx context.Context, table, prefix string, limit int, statuses, pools []string) ([]string, error) {
	// poolOf is the SQL of a row's pool, "" for tables outside pools.
	poolOf, ok := map[string]string{"vms": "pool_id", "servers": "pool_id", "repositories": "pool_id", "networks": "pool_id",
		"server_pools": "id", "tags": "",
		"virtual_disks":  "(SELECT r.pool_id FROM repositories r WHERE r.id = repo_id)",
		"virtual_cdroms": "(SELECT r.pool_id FROM repositories r WHERE r.id = repo_id)",
		"vnics":          "(SELECT v.pool_id FROM vms v WHERE v.id = vm_id)"}[table]
	if !ok {
		return nil, fmt.Errorf("names: %s is not a named table", table)
	}
	query := `SELECT DISTINCT name FROM ` + table + ` WHERE name >= $1 AND name < $2`
	args := []any{prefix, prefix + "\U0010FFFF", limit}
	if len(statuses) > 0 {
		// Only VMs carry a status among these tables.
		query += ` AND status IN (`
		for i, st := range statuses {
			if i > 0 {
				query += ", "
			}
			args = append(args, st)
			query += fmt.Sprintf("$%d", len(args))
		}
		query += `)`
	}
	if pools != nil && poolOf != "" {
		// Only objects of these pools (none when empty).
		query += ` AND ` + poolOf + ` IN (NULL`
		for _, p := range pools {
			args = append(args, p)
			query += fmt.Sprintf(", $%d", len(args))
		}
		query += `)`
	}
	return queryStrings(ctx, q.db, query+` ORDER BY name LIMIT $3`, args...)
}

// UpdateVM writes the editable settings of v (not its placement or state).
func (q *Queries) UpdateVM(ctx context.Context, v VM) error {
	return expectOne(q.db.ExecContext(ctx, `
		UPDATE vms SET name = $1, memory_mib = $2, cpu_count = $3, domain_type = $4, description = $5,
			cpu_count_limit = $6, cpu_pinning = $7, preferred_servers = $8, high_availability = $9, os_type = $10,
			boot_order = $11, start_policy = $12
		WHERE id = $13`,
		v.Name, v.MemoryMiB, v.CPUCount, v.DomainType, v.Description, v.CPUCountLimit, v.CPUPinning,
		v.PreferredServers, v.HA, v.OSType, v.BootOrder, v.StartPolicy, v.ID))
}

// UpdateServerSettings writes a server's name, roles, master flag and
// maintenance mode.
func (q *Queries) UpdateServerSettings(ctx context.Context, s Server) error {
	q.serversChanged()
	return expectOne(q.db.ExecContext(ctx,
		`UPDATE servers SET name = $1, roles = $2, is_master = $3, maintenance_mode = $4 WHERE id = $5`,
		s.Name, s.Roles, s.IsMaster, s.Maintenance, s.ID))
}

// UpdateServerPool writes a pool's name, description and start policy.
func (q *Queries) UpdateServerPool(ctx context.Context, p ServerPool) error {
	q.serversChanged() // placement caches pools with their servers
	return expectOne(q.db.ExecContext(ctx,
		`UPDATE server_pools SET name = $1, description = $2, start_policy = $3 WHERE id = $4`,
		p.Name, p.Description, p.StartPolicy, p.ID))
}

// DeleteServerPool removes an empty pool.
func (q *Queries) DeleteServerPool(ctx context.Context, id string) error {
	q.serversChanged()
	return expectOne(q.db.ExecContext(ctx, `DELETE FROM server_pools WHERE id = $1`, id))
}

// DeleteRepository removes a repository record.
func (q *Queries) DeleteRepository(ctx context.Context, id string) error {
	return expectOne(q.db.ExecContext(ctx, `DELETE FROM repositories WHERE id = $1`, id))
}

// DeleteServer removes a server record.
func (q *Queries) DeleteServer(ctx context.Context, id string) error {
	q.serversChanged()
	return expectOne(q.db.ExecContext(ctx, `DELETE FROM servers WHERE id = $1`, id))
}

// UserPoolIDs returns the ids of the pools the user belongs to.
func (q *Queries) UserPoolIDs(ctx context.Context, userName string) ([]string, error) {
	return queryStrings(ctx, q.db, `SELECT up.pool_id FROM user_pools up JOIN users u ON u.id = up.user_id WHERE u.name = $1`, userName)
}

const userColumns = `id, name, password_hash, role, created_at`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var created int64
	err := row.Scan(&u.ID, &u.Name, &u.PasswordHash, &u.Role, &created)
	u.CreatedAt = time.Unix(created, 0).UTC()
	return u, translate(err)
}

// Users returns every user by name.
func (q *Queries) Users(ctx context.Context) ([]User, error) {
	return queryAll(ctx, q.db, scanUser, `SELECT `+userColumns+` FROM users ORDER BY name`)
}

// UserByID returns the user with id, or ErrNotFound.
func (q *Queries) UserByID(ctx context.Context, id string) (User, error) {
	return scanUser(q.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
}

// UsersByName returns the users called name (at most one: names are unique).
func (q *Queries) UsersByName(ctx context.Context, name string) ([]User, error) {
	return queryAll(ctx, q.db, scanUser, `SELECT `+userColumns+` FROM users WHERE name = $1`, name)
}

// UpdateUser writes a user's role and password hash.
func (q *Queries) UpdateUser(ctx context.Context, u User) error {
	return expectOne(q.db.ExecContext(ctx, `UPDATE users SET role = $1, password_hash = $2 WHERE id = $3`, u.Role, u.PasswordHash, u.ID))
}

// DeleteUser removes a user (their pools and keys go with them).
func (q *Queries) DeleteUser(ctx context.Context, id string) error {
	return expectOne(q.db.ExecContext(ctx, `DELETE FROM users WHERE id = $1`, id))
}

// CountAdministrators returns how many users are administrators.
func (q *Queries) CountAdministrators(ctx context.Context) (int, error) {
	var n int
	err := q.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE role = 'Administrator'`).Scan(&n)
	return n, translate(err)
}

// AddUserPool makes the user a member of the pool.
func (q *Queries) AddUserPool(ctx context.Context, userID, poolID string) error {
	_, err := q.db.ExecContext(ctx, `INSERT INTO user_pools (user_id, pool_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, userID, poolID)
	return translate(err)
}

// RemoveUserPool takes the user out of the pool.
func (q *Queries) RemoveUserPool(ctx context.Context, userID, poolID string) error {
	return expectOne(q.db.ExecContext(ctx, `DELETE FROM user_pools WHERE user_id = $1 AND pool_id = $2`, userID, poolID))
}

const keyColumns = `k.id, k.user_id, u.name, k.name, k.public_key, k.fingerprint, k.created_at`

func scanKey(row interface{ Scan(...any) error }) (SSHKey, error) {
	var k SSHKey
	var created int64
	err := row.Scan(&k.ID, &k.UserID, &k.UserName, &k.Name, &k.PublicKey, &k.Fingerprint, &created)
	k.CreatedAt = time.Unix(created, 0).UTC()
	return k, translate(err)
}

// InsertSSHKey adds a key; a key already registered (same fingerprint) is
// ErrConflict.
func (q *Queries) InsertSSHKey(ctx context.Context, k SSHKey) error {
	_, err := q.db.ExecContext(ctx, `INSERT INTO ssh_keys (id, user_id, name, public_key, fingerprint, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		k.ID, k.UserID, k.Name, k.PublicKey, k.Fingerprint, unix(k.CreatedAt))
	return translate(err)
}

// SSHKeyByFingerprint returns the key with that fingerprint and its user.
func (q *Queries) SSHKeyByFingerprint(ctx context.Context, fp string) (SSHKey, error) {
	return scanKey(q.db.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM ssh_keys k JOIN users u ON u.id = k.user_id WHERE k.fingerprint = $1`, fp))
}

// SSHKeys returns every key, by user then name.
func (q *Queries) SSHKeys(ctx context.Context) ([]SSHKey, error) {
	return queryAll(ctx, q.db, scanKey, `SELECT `+keyColumns+` FROM ssh_keys k JOIN users u ON u.id = k.user_id ORDER BY u.name, k.name`)
}

// DeleteSSHKey removes a key.
func (q *Queries) DeleteSSHKey(ctx context.Context, id string) error {
	return expectOne(q.db.ExecContext(ctx, `DELETE FROM ssh_keys WHERE id = $1`, id))
}

// AppendHistory adds a line to the user's history and keeps only the newest
// keep lines.
func (q *Queries) AppendHistory(ctx context.Context, user, line string, keep int) error {
	if _, err := q.db.ExecContext(ctx, `INSERT INTO history (user_name, line, created_at) VALUES ($1, $2, $3)`,
		user, line, time.Now().Unix()); err != nil {
		return translate(err)
	}
	_, err := q.db.ExecContext(ctx, `
		DELETE FROM history WHERE user_name = $1 AND seq <= (
			SELECT seq FROM history WHERE user_name = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2)`, user, keep)
	return translate(err)
}

// History returns the user's newest lines, oldest first, at most limit.
func (q *Queries) History(ctx context.Context, user string, limit int) ([]string, error) {
	return queryStrings(ctx, q.db, `SELECT line FROM (SELECT seq, line FROM history WHERE user_name = $1 ORDER BY seq DESC LIMIT $2) ORDER BY seq`, user, limit)
}

// SetVMLastServer records where a stopped VM should start under
// CURRENT_SERVER (a cold migration).
func (q *Queries) SetVMLastServer(ctx context.Context, id, serverID string) error {
	return expectOne(q.db.ExecContext(ctx, `UPDATE vms SET last_server_id = $1 WHERE id = $2`, serverID, id))
}

// CountVMsPerServer returns how many VMs each server holds, for every server.
func (q *Queries) CountVMsPerServer(ctx context.Context) (map[string]int, error) {
	rows, err := q.db.QueryContext(ctx, `SELECT server_id, COUNT(*) FROM vms WHERE server_id IS NOT NULL GROUP BY server_id`)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, translate(rows.Err())
}

// queryStrings runs a query of one text column and returns its values.
func queryStrings(ctx context.Context, db dbtx, query string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, translate(rows.Err())
}
