package store

import (
	"context"
	"time"
)

// Server is a Xen server the manager owns through its agent.
type Server struct {
	ID             string
	Name           string
	UniqueID       string // the agent's own identity, stable across addresses
	Hostname       string
	Address        string
	Port           int
	AgentPassword  []byte // sealed with the manager's secret key, never plain
	CertSPKISHA256 string // the pinned agent certificate
	PoolID         string // "" when in no pool
	OVMVersion     string
	AgentVersion   string
	// HypervisorType and HypervisorVersion are what the agent reported in
	// discover_server (agentapi.ServerInfo.Hypervisor): xen and "" for an
	// agent without the fields.
	HypervisorType    string
	HypervisorVersion string
	Manufacturer      string
	Product           string
	CPUModel          string
	CPUSockets        int64
	CoresPerSocket    int64
	ThreadsPerCore    int64
	CPUKHz            int64
	TotalMemoryMiB    int64
	Dom0MemoryMiB     int64
	Status            string
	Roles             string // comma-separated: xen, utility
	IsMaster          bool
	Maintenance       bool
	CreatedAt         time.Time
}

const serverColumns = `id, name, unique_id, hostname, address, port, agent_password, cert_spki_sha256,
	COALESCE(pool_id, ''), ovm_version, agent_version, manufacturer, product, cpu_model, cpu_sockets,
	cores_per_socket, threads_per_core, cpu_khz, total_memory_mib, dom0_memory_mib, status, roles, is_master,
	maintenance_mode, created_at, hypervisor_type, hypervisor_version`

func scanServer(row scanner) (Server, error) {
	var s Server
	var created int64
	err := row.Scan(&s.ID, &s.Name, &s.UniqueID, &s.Hostname, &s.Address, &s.Port, &s.AgentPassword,
		&s.CertSPKISHA256, &s.PoolID, &s.OVMVersion, &s.AgentVersion, &s.Manufacturer, &s.Product,
		&s.CPUModel, &s.CPUSockets, &s.CoresPerSocket, &s.ThreadsPerCore, &s.CPUKHz, &s.TotalMemoryMiB,
		&s.Dom0MemoryMiB, &s.Status, &s.Roles, &s.IsMaster, &s.Maintenance, &created,
		&s.HypervisorType, &s.HypervisorVersion)
	s.CreatedAt = fromUnix(created)
	return s, err
}

// UpsertServer inserts s, or, when a server with the same unique_id exists,
// updates its address, credentials, pin, versions, hypervisor and hardware
// and keeps its id, name, pool and creation time. It returns the row as stored.
func (q *Queries) UpsertServer(ctx context.Context, s Server) (Server, error) {
	err := q.exec(ctx, `
		INSERT INTO servers (id, name, unique_id, hostname, address, port, agent_password, cert_spki_sha256,
			pool_id, ovm_version, agent_version, manufacturer, product, cpu_model, cpu_sockets, cores_per_socket,
			threads_per_core, cpu_khz, total_memory_mib, dom0_memory_mib, status, created_at, hypervisor_type,
			hypervisor_version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
			$23, $24)
		ON CONFLICT (unique_id) DO UPDATE SET
			hostname = excluded.hostname, address = excluded.address, port = excluded.port,
			agent_password = excluded.agent_password, cert_spki_sha256 = excluded.cert_spki_sha256,
			ovm_version = excluded.ovm_version, agent_version = excluded.agent_version,
			manufacturer = excluded.manufacturer, product = excluded.product, cpu_model = excluded.cpu_model,
			cpu_sockets = excluded.cpu_sockets, cores_per_socket = excluded.cores_per_socket,
			threads_per_core = excluded.threads_per_core, cpu_khz = excluded.cpu_khz,
			total_memory_mib = excluded.total_memory_mib, dom0_memory_mib = excluded.dom0_memory_mib,
			status = excluded.status, hypervisor_type = excluded.hypervisor_type,
			hypervisor_version = excluded.hypervisor_version`,
		s.ID, s.Name, s.UniqueID, s.Hostname, s.Address, s.Port, s.AgentPassword, s.CertSPKISHA256,
		nullable(s.PoolID), s.OVMVersion, s.AgentVersion, s.Manufacturer, s.Product, s.CPUModel, s.CPUSockets,
		s.CoresPerSocket, s.ThreadsPerCore, s.CPUKHz, s.TotalMemoryMiB, s.Dom0MemoryMiB, s.Status, unix(s.CreatedAt),
		s.HypervisorType, s.HypervisorVersion)
	if err != nil {
		return Server{}, err
	}
	return queryOne(ctx, q.db, scanServer, `SELECT `+serverColumns+` FROM servers WHERE unique_id = $1`, s.UniqueID)
}

// Server returns the server with id, or ErrNotFound.
func (q *Queries) Server(ctx context.Context, id string) (Server, error) {
	return queryOne(ctx, q.db, scanServer, `SELECT `+serverColumns+` FROM servers WHERE id = $1`, id)
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
	return q.execOne(ctx, `UPDATE servers SET pool_id = $1 WHERE id = $2`, nullable(poolID), id)
}

// SetServerStatus records the server's status.
func (q *Queries) SetServerStatus(ctx context.Context, id, status string) error {
	return q.execOne(ctx, `UPDATE servers SET status = $1 WHERE id = $2`, status, id)
}

// UpdateServerSettings writes a server's name, roles, master flag and
// maintenance mode.
func (q *Queries) UpdateServerSettings(ctx context.Context, s Server) error {
	return q.execOne(ctx,
		`UPDATE servers SET name = $1, roles = $2, is_master = $3, maintenance_mode = $4 WHERE id = $5`,
		s.Name, s.Roles, s.IsMaster, s.Maintenance, s.ID)
}

// SetPoolMaster makes server id the master of pool poolID, and no other
// member: one statement, so that the pool never has two masters and no
// other setting of its members is written over. ErrNotFound when id is not
// a member of the pool (nothing is changed then).
func (q *Queries) SetPoolMaster(ctx context.Context, poolID, id string) error {
	return q.execOne(ctx, `UPDATE servers SET is_master = CASE WHEN id = $1 THEN 1 ELSE 0 END
		WHERE pool_id = $2 AND EXISTS (SELECT 1 FROM servers WHERE id = $1 AND pool_id = $2)`, id, poolID)
}

// DeleteServer removes a server record.
func (q *Queries) DeleteServer(ctx context.Context, id string) error {
	return q.execOne(ctx, `DELETE FROM servers WHERE id = $1`, id)
}
