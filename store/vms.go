package store

import (
	"context"
	"iter"
	"time"
)

// VM is a virtual machine's configuration and last known state.
type VM struct {
	ID          string
	Name        string
	PoolID      string
	RepoID      string
	ServerID    string // "" when not placed on a server
	Status      string
	MemoryMiB   int64
	CPUCount    int64
	DomainType  string
	Description string
	// CPUCountLimit is maxvcpus (0: equal to CPUCount).
	CPUCountLimit int64
	// MemoryLimitMiB is maxmem, what memory may grow to while the VM runs
	// (0: equal to MemoryMiB).
	MemoryLimitMiB int64
	// CPUPinning is the vm.cfg cpus value ("0-1"), "" for none.
	CPUPinning       string
	PreferredServers string // space-separated server ids
	HA               bool
	OSType           string
	BootOrder        string
	StartPolicy      string
	LastServerID     string // where it ran last, for CURRENT_SERVER
	CreatedAt        time.Time
	// Kernel and Ramdisk are the files of a direct kernel boot, relative to
	// the root of the VM's repository, and Extra its kernel command line;
	// "" for none.
	Kernel, Ramdisk, Extra string
	// OnCrash is what the hypervisor does with the VM's domain when its
	// guest crashes, as OVM names it (Restart, Destroy, Preserve,
	// CoredumpRestart, CoredumpDestroy); InsertVM writes Restart for "".
	OnCrash string
}

const vmColumns = `id, name, pool_id, repo_id, COALESCE(server_id, ''), status, memory_mib, cpu_count, domain_type, description,
	cpu_count_limit, cpu_pinning, preferred_servers, high_availability, os_type, boot_order, start_policy, last_server_id, created_at,
	kernel, ramdisk, extra, on_crash, memory_limit_mib`

func scanVM(row scanner) (VM, error) {
	var v VM
	var created int64
	err := row.Scan(&v.ID, &v.Name, &v.PoolID, &v.RepoID, &v.ServerID, &v.Status, &v.MemoryMiB, &v.CPUCount,
		&v.DomainType, &v.Description, &v.CPUCountLimit, &v.CPUPinning, &v.PreferredServers, &v.HA, &v.OSType,
		&v.BootOrder, &v.StartPolicy, &v.LastServerID, &created, &v.Kernel, &v.Ramdisk, &v.Extra, &v.OnCrash, &v.MemoryLimitMiB)
	v.CreatedAt = fromUnix(created)
	return v, err
}

// VMSummary is the part of a VM a listing shows. Reading it takes 8 of a
// VM's 24 columns: a listing of many VMs spends most of its time reading
// columns.
type VMSummary struct {
	ID, Name, PoolID, RepoID, ServerID, Status string
	MemoryMiB, CPUCount                        int64
}

const vmSummaryColumns = `id, name, pool_id, repo_id, COALESCE(server_id, ''), status, memory_mib, cpu_count`

func scanVMSummary(row scanner) (VMSummary, error) {
	var v VMSummary
	err := row.Scan(&v.ID, &v.Name, &v.PoolID, &v.RepoID, &v.ServerID, &v.Status, &v.MemoryMiB, &v.CPUCount)
	return v, err
}

// InsertVM adds v.
func (q *Queries) InsertVM(ctx context.Context, v VM) error {
	return q.exec(ctx, `
		INSERT INTO vms (id, name, pool_id, repo_id, server_id, status, memory_mib, cpu_count, domain_type, description,
			cpu_count_limit, cpu_pinning, preferred_servers, high_availability, os_type, boot_order, start_policy, created_at,
			kernel, ramdisk, extra, on_crash, memory_limit_mib)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)`,
		v.ID, v.Name, v.PoolID, v.RepoID, nullable(v.ServerID), v.Status, v.MemoryMiB, v.CPUCount, v.DomainType,
		v.Description, v.CPUCountLimit, v.CPUPinning, v.PreferredServers, v.HA, defaultString(v.OSType, "Oracle Linux 9"),
		defaultString(v.BootOrder, "DISK"), defaultString(v.StartPolicy, "USE_POOL_POLICY"), unix(v.CreatedAt),
		v.Kernel, v.Ramdisk, v.Extra, defaultString(v.OnCrash, "Restart"), v.MemoryLimitMiB)
}

// VM returns the VM with id, or ErrNotFound.
func (q *Queries) VM(ctx context.Context, id string) (VM, error) {
	return queryOne(ctx, q.db, scanVM, `SELECT `+vmColumns+` FROM vms WHERE id = $1`, id)
}

// VMsByIDs returns the VMs with the ids, by id; an id no VM has is left
// out. It reads MaxShownAtOnce of them in each query: what a
// multi-object action reads of the VMs it selected, in a few reads
// rather than one per VM.
func (q *Queries) VMsByIDs(ctx context.Context, ids []string) ([]VM, error) {
	query := vmsByIDsSQLite
	if q.engine != SQLite {
		query = vmsByIDsPostgres
	}
	var out []VM
	for len(ids) > 0 {
		n := min(len(ids), MaxShownAtOnce)
		vms, err := queryAll(ctx, q.db, scanVM, query, keysArg(ids[:n]))
		if err != nil {
			return nil, err
		}
		out, ids = append(out, vms...), ids[n:]
	}
	return out, nil
}

// VMsByIDs' queries: the keys are one JSON array.
var (
	vmsByIDsSQLite   = vmsWhere("id", sqliteKeys)
	vmsByIDsPostgres = vmsWhere("id", postgresKeys)
)

// VMs returns every VM, by name then id.
func (q *Queries) VMs(ctx context.Context) ([]VM, error) {
	return queryAll(ctx, q.db, scanVM, `SELECT `+vmColumns+` FROM vms ORDER BY name, id`)
}

// VMSummaries returns every VM's summary, by name then id.
func (q *Queries) VMSummaries(ctx context.Context) ([]VMSummary, error) {
	return queryAll(ctx, q.db, scanVMSummary, `SELECT `+vmSummaryColumns+` FROM vms ORDER BY name, id`)
}

// EachVMSummary yields every VM's summary, by name then id, one at a
// time (queryEach): what a listing streams. Inside a Snapshot the rows
// are those of its moment.
func (q *Queries) EachVMSummary(ctx context.Context) iter.Seq2[VMSummary, error] {
	return queryEach(ctx, q.db, scanVMSummary, `SELECT `+vmSummaryColumns+` FROM vms ORDER BY name, id`)
}

// VMsByName returns the VMs called name.
func (q *Queries) VMsByName(ctx context.Context, name string) ([]VM, error) {
	return queryAll(ctx, q.db, scanVM, `SELECT `+vmColumns+` FROM vms WHERE name = $1 ORDER BY id`, name)
}

// VMsOnServer returns the VMs placed on server id.
func (q *Queries) VMsOnServer(ctx context.Context, serverID string) ([]VM, error) {
	return queryAll(ctx, q.db, scanVM, `SELECT `+vmColumns+` FROM vms WHERE server_id = $1 ORDER BY name, id`, serverID)
}

// VMIDsOnServer returns the ids of the VMs placed on server serverID, in
// the order of VMsOnServer: what a reconciliation compares the server's
// domains with, every minute for every server, without the rest of each
// row.
func (q *Queries) VMIDsOnServer(ctx context.Context, serverID string) ([]string, error) {
	return queryAll(ctx, q.db, scanString, `SELECT id FROM vms WHERE server_id = $1 ORDER BY name, id`, serverID)
}

// CountVMsPerServer returns how many VMs each server holds, for every server
// that holds any: one grouped count rather than a count per server.
func (q *Queries) CountVMsPerServer(ctx context.Context) (map[string]int, error) {
	return q.countPer(ctx, `SELECT server_id, COUNT(*) FROM vms WHERE server_id IS NOT NULL GROUP BY server_id`)
}

// SetVMState records where the VM runs ("" for nowhere) and its status; the
// last server a VM ran on is kept for CURRENT_SERVER placement.
func (q *Queries) SetVMState(ctx context.Context, id, serverID, status string) error {
	return q.execOne(ctx, `
		UPDATE vms SET server_id = $1, status = $2,
			last_server_id = COALESCE($1, last_server_id)
		WHERE id = $3`, nullable(serverID), status, id)
}

// SetVMLastServer records where a stopped VM should start under
// CURRENT_SERVER (a cold migration).
func (q *Queries) SetVMLastServer(ctx context.Context, id, serverID string) error {
	return q.execOne(ctx, `UPDATE vms SET last_server_id = $1 WHERE id = $2`, serverID, id)
}

// UpdateVM writes the editable settings of v (not its placement or state).
func (q *Queries) UpdateVM(ctx context.Context, v VM) error {
	return q.execOne(ctx, `
		UPDATE vms SET name = $1, memory_mib = $2, cpu_count = $3, domain_type = $4, description = $5,
			cpu_count_limit = $6, cpu_pinning = $7, preferred_servers = $8, high_availability = $9, os_type = $10,
			boot_order = $11, start_policy = $12, kernel = $13, ramdisk = $14, extra = $15, on_crash = $16, memory_limit_mib = $17
		WHERE id = $18`,
		v.Name, v.MemoryMiB, v.CPUCount, v.DomainType, v.Description, v.CPUCountLimit, v.CPUPinning,
		v.PreferredServers, v.HA, v.OSType, v.BootOrder, v.StartPolicy, v.Kernel, v.Ramdisk, v.Extra,
		defaultString(v.OnCrash, "Restart"), v.MemoryLimitMiB, v.ID)
}

// DeleteVM removes the VM row.
func (q *Queries) DeleteVM(ctx context.Context, id string) error {
	return q.execOne(ctx, `DELETE FROM vms WHERE id = $1`, id)
}
