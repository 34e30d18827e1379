package store

import (
	"context"
	"time"
)

// VirtualDisk is a disk image file in a repository.
type VirtualDisk struct {
	ID, Name, RepoID, Description string
	SizeMiB                       int64
	Sparse                        bool
	// Shareable disks may be mapped to several VMs; others to one at most
	// (the store refuses a second mapping: ErrConflict).
	Shareable bool
	CreatedAt time.Time
}

// DiskMapping places a disk in a VM's slot (0 is xvda).
type DiskMapping struct {
	ID, VMID, DiskID string
	Slot             int
	CreatedAt        time.Time
	// Name is the name create VmDiskMapping gave it; "" for none.
	Name string
}

const diskColumns = `id, name, repo_id, size_mib, sparse, description, created_at, shareable`

func scanDisk(row scanner) (VirtualDisk, error) {
	var d VirtualDisk
	var c int64
	err := row.Scan(&d.ID, &d.Name, &d.RepoID, &d.SizeMiB, &d.Sparse, &d.Description, &c, &d.Shareable)
	d.CreatedAt = fromUnix(c)
	return d, err
}

// InsertVirtualDisk adds a disk.
func (q *Queries) InsertVirtualDisk(ctx context.Context, d VirtualDisk) error {
	return q.exec(ctx, `INSERT INTO virtual_disks (`+diskColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		d.ID, d.Name, d.RepoID, d.SizeMiB, d.Sparse, d.Description, unix(d.CreatedAt), d.Shareable)
}

// VirtualDisk returns the disk with id.
func (q *Queries) VirtualDisk(ctx context.Context, id string) (VirtualDisk, error) {
	return queryOne(ctx, q.db, scanDisk, `SELECT `+diskColumns+` FROM virtual_disks WHERE id = $1`, id)
}

// VirtualDisks returns every disk by name.
func (q *Queries) VirtualDisks(ctx context.Context) ([]VirtualDisk, error) {
	return queryAll(ctx, q.db, scanDisk, `SELECT `+diskColumns+` FROM virtual_disks ORDER BY name, id`)
}

// VirtualDisksByName returns the disks called name.
func (q *Queries) VirtualDisksByName(ctx context.Context, name string) ([]VirtualDisk, error) {
	return queryAll(ctx, q.db, scanDisk, `SELECT `+diskColumns+` FROM virtual_disks WHERE name = $1 ORDER BY id`, name)
}

// SetVirtualDiskSize records a disk's new size.
func (q *Queries) SetVirtualDiskSize(ctx context.Context, id string, sizeMiB int64) error {
	return q.execOne(ctx, `UPDATE virtual_disks SET size_mib = $1 WHERE id = $2`, sizeMiB, id)
}

// DeleteVirtualDisk removes a disk record.
func (q *Queries) DeleteVirtualDisk(ctx context.Context, id string) error {
	return q.execOne(ctx, `DELETE FROM virtual_disks WHERE id = $1`, id)
}

const mappingColumns = `id, vm_id, disk_id, slot, created_at, name`

func scanMapping(row scanner) (DiskMapping, error) {
	var m DiskMapping
	var c int64
	err := row.Scan(&m.ID, &m.VMID, &m.DiskID, &m.Slot, &c, &m.Name)
	m.CreatedAt = fromUnix(c)
	return m, err
}

// InsertDiskMapping maps a disk to a VM's slot; the disk in that VM
// already, a disk that is not shareable in another VM, or the slot taken
// is ErrConflict.
func (q *Queries) InsertDiskMapping(ctx context.Context, m DiskMapping) error {
	return q.exec(ctx, `INSERT INTO vm_disk_mappings (`+mappingColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		m.ID, m.VMID, m.DiskID, m.Slot, unix(m.CreatedAt), m.Name)
}

// DiskMappings returns every mapping, by VM then slot.
func (q *Queries) DiskMappings(ctx context.Context) ([]DiskMapping, error) {
	return queryAll(ctx, q.db, scanMapping, `SELECT `+mappingColumns+` FROM vm_disk_mappings ORDER BY vm_id, slot`)
}

// DiskMappingsOfVM returns a VM's mappings by slot.
func (q *Queries) DiskMappingsOfVM(ctx context.Context, vmID string) ([]DiskMapping, error) {
	return queryAll(ctx, q.db, scanMapping, `SELECT `+mappingColumns+` FROM vm_disk_mappings WHERE vm_id = $1 ORDER BY slot`, vmID)
}

// DiskMappingOfDisk returns the first mapping of a disk (a shareable disk
// may have several), or ErrNotFound.
func (q *Queries) DiskMappingOfDisk(ctx context.Context, diskID string) (DiskMapping, error) {
	return queryOne(ctx, q.db, scanMapping, `SELECT `+mappingColumns+` FROM vm_disk_mappings WHERE disk_id = $1
		ORDER BY created_at, rowid LIMIT 1`, diskID)
}

// DiskMappingsOfDisk returns every mapping of a disk, the first made first:
// one at most unless the disk is shareable.
func (q *Queries) DiskMappingsOfDisk(ctx context.Context, diskID string) ([]DiskMapping, error) {
	return queryAll(ctx, q.db, scanMapping, `SELECT `+mappingColumns+` FROM vm_disk_mappings WHERE disk_id = $1
		ORDER BY created_at, rowid`, diskID)
}

// DeleteDiskMapping removes a mapping.
func (q *Queries) DeleteDiskMapping(ctx context.Context, id string) error {
	return q.execOne(ctx, `DELETE FROM vm_disk_mappings WHERE id = $1`, id)
}
