package store

import (
	"context"
	"time"
)

// VirtualCdrom is an ISO image imported into a repository.
type VirtualCdrom struct {
	ID, Name, RepoID, URL string
	SizeBytes             int64
	State                 string // Approved, or Pending until an administrator approves it
	ImportedBy            string
	Description           string
	CreatedAt             time.Time
}

// CdromMapping places an ISO in a VM's slot; the slots are numbered with
// the VM's disk slots.
type CdromMapping struct {
	ID, VMID, CdromID string
	Slot              int
	CreatedAt         time.Time
	// Name is the name create VmDiskMapping gave it; "" for none.
	Name string
}

const cdromColumns = `id, name, repo_id, url, size_bytes, state, imported_by, description, created_at`

func scanCdrom(row scanner) (VirtualCdrom, error) {
	var c VirtualCdrom
	var at int64
	err := row.Scan(&c.ID, &c.Name, &c.RepoID, &c.URL, &c.SizeBytes, &c.State, &c.ImportedBy, &c.Description, &at)
	c.CreatedAt = fromUnix(at)
	return c, err
}

// InsertVirtualCdrom adds an ISO.
func (q *Queries) InsertVirtualCdrom(ctx context.Context, c VirtualCdrom) error {
	return q.exec(ctx, `INSERT INTO virtual_cdroms (`+cdromColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		c.ID, c.Name, c.RepoID, c.URL, c.SizeBytes, c.State, c.ImportedBy, c.Description, unix(c.CreatedAt))
}

// VirtualCdrom returns the ISO with id.
func (q *Queries) VirtualCdrom(ctx context.Context, id string) (VirtualCdrom, error) {
	return queryOne(ctx, q.db, scanCdrom, `SELECT `+cdromColumns+` FROM virtual_cdroms WHERE id = $1`, id)
}

// VirtualCdroms returns every ISO by name.
func (q *Queries) VirtualCdroms(ctx context.Context) ([]VirtualCdrom, error) {
	return queryAll(ctx, q.db, scanCdrom, `SELECT `+cdromColumns+` FROM virtual_cdroms ORDER BY name, id`)
}

// VirtualCdromsByName returns the ISOs called name.
func (q *Queries) VirtualCdromsByName(ctx context.Context, name string) ([]VirtualCdrom, error) {
	return queryAll(ctx, q.db, scanCdrom, `SELECT `+cdromColumns+` FROM virtual_cdroms WHERE name = $1 ORDER BY id`, name)
}

// SetVirtualCdromState records an ISO's approval state.
func (q *Queries) SetVirtualCdromState(ctx context.Context, id, state string) error {
	return q.execOne(ctx, `UPDATE virtual_cdroms SET state = $2 WHERE id = $1`, id, state)
}

// DeleteVirtualCdrom removes an ISO record; one still in a VM is
// ErrConflict.
func (q *Queries) DeleteVirtualCdrom(ctx context.Context, id string) error {
	return q.execOne(ctx, `DELETE FROM virtual_cdroms WHERE id = $1`, id)
}

const cdromMappingColumns = `id, vm_id, cdrom_id, slot, created_at, name`

func scanCdromMapping(row scanner) (CdromMapping, error) {
	var m CdromMapping
	var at int64
	err := row.Scan(&m.ID, &m.VMID, &m.CdromID, &m.Slot, &at, &m.Name)
	m.CreatedAt = fromUnix(at)
	return m, err
}

// InsertCdromMapping puts an ISO in a VM's slot; the ISO in that VM
// already, or the slot taken by another ISO, is ErrConflict.
func (q *Queries) InsertCdromMapping(ctx context.Context, m CdromMapping) error {
	return q.exec(ctx, `INSERT INTO vm_cdrom_mappings (`+cdromMappingColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		m.ID, m.VMID, m.CdromID, m.Slot, unix(m.CreatedAt), m.Name)
}

// CdromMappings returns every ISO mapping, by VM then slot.
func (q *Queries) CdromMappings(ctx context.Context) ([]CdromMapping, error) {
	return queryAll(ctx, q.db, scanCdromMapping, `SELECT `+cdromMappingColumns+` FROM vm_cdrom_mappings ORDER BY vm_id, slot`)
}

// CdromMappingsOfVM returns a VM's ISO mappings by slot.
func (q *Queries) CdromMappingsOfVM(ctx context.Context, vmID string) ([]CdromMapping, error) {
	return queryAll(ctx, q.db, scanCdromMapping, `SELECT `+cdromMappingColumns+` FROM vm_cdrom_mappings WHERE vm_id = $1 ORDER BY slot`, vmID)
}

// CdromMappingsOfCdrom returns the mappings of an ISO, one per VM it is in.
func (q *Queries) CdromMappingsOfCdrom(ctx context.Context, cdromID string) ([]CdromMapping, error) {
	return queryAll(ctx, q.db, scanCdromMapping, `SELECT `+cdromMappingColumns+` FROM vm_cdrom_mappings WHERE cdrom_id = $1 ORDER BY vm_id`, cdromID)
}

// DeleteCdromMapping removes an ISO mapping.
func (q *Queries) DeleteCdromMapping(ctx context.Context, id string) error {
	return q.execOne(ctx, `DELETE FROM vm_cdrom_mappings WHERE id = $1`, id)
}
