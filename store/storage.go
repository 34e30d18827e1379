package store

import (
	"context"
	"time"
)

// Network is a pool's network: VNICs on it attach to its bridge on every
// server of the pool.
type Network struct {
	ID, Name, PoolID, Bridge, Description string
	CreatedAt                             time.Time
}

// VirtualDisk is a disk image file in a repository.
type VirtualDisk struct {
	ID, Name, RepoID, Description string
	SizeMiB                       int64
	Sparse                        bool
	CreatedAt                     time.Time
}

// DiskMapping places a disk in a VM's slot (0 is xvda).
type DiskMapping struct {
	ID, VMID, DiskID string
	Slot             int
	CreatedAt        time.Time
}

// Vnic is a VM's network interface.
type Vnic struct {
	ID, Name, VMID, NetworkID, MAC string
	CreatedAt                      time.Time
}

type scanner = interface{ Scan(...any) error }

func scanNetwork(row scanner) (Network, error) {
	var n Network
	var c int64
	err := row.Scan(&n.ID, &n.Name, &n.PoolID, &n.Bridge, &n.Description, &c)
	n.CreatedAt = time.Unix(c, 0).UTC()
	return n, translate(err)
}

const networkColumns = `id, name, pool_id, bridge, description, created_at`

// InsertNetwork adds a network.
func (q *Queries) InsertNetwork(ctx context.Context, n Network) error {
	_, err := q.db.ExecContext(ctx, `INSERT INTO networks (`+networkColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		n.ID, n.Name, n.PoolID, n.Bridge, n.Description, unix(n.CreatedAt))
	return translate(err)
}

// Network returns the network with id.
func (q *Queries) Network(ctx context.Context, id string) (Network, error) {
	return scanNetwork(q.db.QueryRowContext(ctx, `SELECT `+networkColumns+` FROM networks WHERE id = $1`, id))
}

// Networks returns every network by name.
func (q *Queries) Networks(ctx context.Context) ([]Network, error) {
	return queryAll(ctx, q.db, scanNetwork, `SELECT `+networkColumns+` FROM networks ORDER BY name, id`)
}

// NetworksByName returns the networks called name.
func (q *Queries) NetworksByName(ctx context.Context, name string) ([]Network, error) {
	return queryAll(ctx, q.db, scanNetwork, `SELECT `+networkColumns+` FROM networks WHERE name = $1 ORDER BY id`, name)
}

// DeleteNetwork removes a network.
func (q *Queries) DeleteNetwork(ctx context.Context, id string) error {
	return expectOne(q.db.ExecContext(ctx, `DELETE FROM networks WHERE id = $1`, id))
}

const diskColumns = `id, name, repo_id, size_mib, sparse, description, created_at`

func scanDisk(row scanner) (VirtualDisk, error) {
	var d VirtualDisk
	var c int64
	err := row.Scan(&d.ID, &d.Name, &d.RepoID, &d.SizeMiB, &d.Sparse, &d.Description, &c)
	d.CreatedAt = time.Unix(c, 0).UTC()
	return d, translate(err)
}

// InsertVirtualDisk adds a disk.
func (q *Queries) InsertVirtualDisk(ctx context.Context, d VirtualDisk) error {
	_, err := q.db.ExecContext(ctx, `INSERT INTO virtual_disks (`+diskColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		d.ID, d.Name, d.RepoID, d.SizeMiB, d.Sparse, d.Description, unix(d.CreatedAt))
	return translate(err)
}

// VirtualDisk returns the disk with id.
func (q *Queries) VirtualDisk(ctx context.Context, id string) (VirtualDisk, error) {
	return scanDisk(q.db.QueryRowContext(ctx, `SELECT `+diskColumns+` FROM virtual_disks WHERE id = $1`, id))
}

// VirtualDisks returns every disk by name.
func (q *Queries) VirtualDisks(ctx context.Context) ([]VirtualDisk, error) {
	return queryAll(ctx, q.db, scanDisk, `SELECT `+diskColumns+` FROM virtual_disks ORDER BY name, id`)
}

// VirtualDisksByName returns the disks called name.
func (q *Queries) VirtualDisksByName(ctx context.Context, name string) ([]VirtualDisk, error) {
	return queryAll(ctx, q.db, scanDisk, `SELECT `+diskColumns+` FROM virtual_disks WHERE name = $1 ORDER BY id`, name)
}

// DeleteVirtualDisk removes a disk record.
func (q *Queries) DeleteVirtualDisk(ctx context.Context, id string) error {
	return expectOne(q.db.ExecContext(ctx, `DELETE FROM virtual_disks WHERE id = $1`, id))
}

const mappingColumns = `id, vm_id, disk_id, slot, created_at`

func scanMapping(row scanner) (DiskMapping, error) {
	var m DiskMapping
	var c int64
	err := row.Scan(&m.ID, &m.VMID, &m.DiskID, &m.Slot, &c)
	m.CreatedAt = time.Unix(c, 0).UTC()
	return m, translate(err)
}

// InsertDiskMapping maps a disk to a VM's slot; a disk mapped already or a
// slot taken is ErrConflict.
func (q *Queries) InsertDiskMapping(ctx context.Context, m DiskMapping) error {
	_, err := q.db.ExecContext(ctx, `INSERT INTO vm_disk_mappings (`+mappingColumns+`) VALUES ($1, $2, $3, $4, $5)`,
		m.ID, m.VMID, m.DiskID, m.Slot, unix(m.CreatedAt))
	return translate(err)
}

// DiskMappings returns every mapping, by VM then slot.
func (q *Queries) DiskMappings(ctx context.Context) ([]DiskMapping, error) {
	return queryAll(ctx, q.db, scanMapping, `SELECT `+mappingColumns+` FROM vm_disk_mappings ORDER BY vm_id, slot`)
}

// DiskMappingsOfVM returns a VM's mappings by slot.
func (q *Queries) DiskMappingsOfVM(ctx context.Context, vmID string) ([]DiskMapping, error) {
	return queryAll(ctx, q.db, scanMapping, `SELECT `+mappingColumns+` FROM vm_disk_mappings WHERE vm_id = $1 ORDER BY slot`, vmID)
}

// DiskMappingOfDisk returns the mapping of a disk, or ErrNotFound.
func (q *Queries) DiskMappingOfDisk(ctx context.Context, diskID string) (DiskMapping, error) {
	return scanMapping(q.db.QueryRowContext(ctx, `SELECT `+mappingColumns+` FROM vm_disk_mappings WHERE disk_id = $1`, diskID))
}

// DeleteDiskMapping removes a mapping.
func (q *Queries) DeleteDiskMapping(ctx context.Context, id string) error {
	return expectOne(q.db.ExecContext(ctx, `DELETE FROM vm_disk_mappings WHERE id = $1`, id))
}

const vnicColumns = `id, name, vm_id, network_id, mac, created_at`

func scanVnic(row scanner) (Vnic, error) {
	var v Vnic
	var c int64
	err := row.Scan(&v.ID, &v.Name, &v.VMID, &v.NetworkID, &v.MAC, &c)
	v.CreatedAt = time.Unix(0, c).UTC() // nanoseconds: the order of a VM's VNICs is their creation order
	return v, translate(err)
}

// InsertVnic adds a VNIC; a MAC in use is ErrConflict.
func (q *Queries) InsertVnic(ctx context.Context, v Vnic) error {
	_, err := q.db.ExecContext(ctx, `INSERT INTO vnics (`+vnicColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		v.ID, v.Name, v.VMID, v.NetworkID, v.MAC, v.CreatedAt.UnixNano())
	return translate(err)
}

// Vnic returns the VNIC with id.
func (q *Queries) Vnic(ctx context.Context, id string) (Vnic, error) {
	return scanVnic(q.db.QueryRowContext(ctx, `SELECT `+vnicColumns+` FROM vnics WHERE id = $1`, id))
}

// Vnics returns every VNIC by name.
func (q *Queries) Vnics(ctx context.Context) ([]Vnic, error) {
	return queryAll(ctx, q.db, scanVnic, `SELECT `+vnicColumns+` FROM vnics ORDER BY name, id`)
}

// VnicsByName returns the VNICs called name.
func (q *Queries) VnicsByName(ctx context.Context, name string) ([]Vnic, error) {
	return queryAll(ctx, q.db, scanVnic, `SELECT `+vnicColumns+` FROM vnics WHERE name = $1 ORDER BY id`, name)
}

// VnicsOfVM returns a VM's VNICs in creation order.
func (q *Queries) VnicsOfVM(ctx context.Context, vmID string) ([]Vnic, error) {
	return queryAll(ctx, q.db, scanVnic, `SELECT `+vnicColumns+` FROM vnics WHERE vm_id = $1 ORDER BY created_at, id`, vmID)
}

// DeleteVnic removes a VNIC.
func (q *Queries) DeleteVnic(ctx context.Context, id string) error {
	return expectOne(q.db.ExecContext(ctx, `DELETE FROM vnics WHERE id = $1`, id))
}

// CountWhere counts rows of the storage tables that reference value.
func (q *Queries) CountWhere(ctx context.Context, tableColumn, value string) (int, error) {
	var query string
	switch tableColumn {
	case "vnics.network_id":
		query = `SELECT COUNT(*) FROM vnics WHERE network_id = $1`
	case "virtual_disks.repo_id":
		query = `SELECT COUNT(*) FROM virtual_disks WHERE repo_id = $1`
	case "virtual_cdroms.repo_id":
		query = `SELECT COUNT(*) FROM virtual_cdroms WHERE repo_id = $1`
	case "networks.pool_id":
		query = `SELECT COUNT(*) FROM networks WHERE pool_id = $1`
	default:
		return 0, errUncountable(tableColumn)
	}
	var n int
	err := q.db.QueryRowContext(ctx, query, value).Scan(&n)
	return n, translate(err)
}

type errUncountable string

func (e errUncountable) Error() string { return "count: " + string(e) + " is not countable" }
