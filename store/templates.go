package store

import (
	"context"
	"time"
)

// VMTemplate is a VM template: Templates/<id>/vm.cfg in its repository,
// with its disks (TemplateDisk) and network interfaces (TemplateVnic).
type VMTemplate struct {
	ID, Name, PoolID, RepoID string
	MemoryMiB, CPUCount      int64
	// CPUCountLimit is maxvcpus (0: equal to CPUCount).
	CPUCountLimit int64
	DomainType    string
	OSType        string
	Description   string
	// Origin is where the template came from: the URL of its import
	// (without a password), or "Vm <name>" / "VmTemplate <name>" for a
	// clone.
	Origin    string
	State     string // Approved, or Pending
	CreatedBy string
	CreatedAt time.Time
}

const templateColumns = `id, name, pool_id, repo_id, memory_mib, cpu_count, cpu_count_limit, domain_type, os_type, description,
	origin, state, created_by, created_at`

func scanTemplate(row scanner) (VMTemplate, error) {
	var t VMTemplate
	var created int64
	err := row.Scan(&t.ID, &t.Name, &t.PoolID, &t.RepoID, &t.MemoryMiB, &t.CPUCount, &t.CPUCountLimit, &t.DomainType, &t.OSType,
		&t.Description, &t.Origin, &t.State, &t.CreatedBy, &created)
	t.CreatedAt = fromUnix(created)
	return t, err
}

// TemplateDisk is a template's disk in a slot (0 is xvda): the file
// VirtualDisks/<DiskID>.img of repository RepoID. ID is the mapping's,
// the template's VmDiskMapping.
type TemplateDisk struct {
	ID, TemplateID, DiskID, RepoID, Name string
	Slot                                 int
	SizeMiB                              int64
	Sparse                               bool
	CreatedAt                            time.Time
}

const templateDiskColumns = `id, template_id, disk_id, repo_id, name, slot, size_mib, sparse, created_at`

func scanTemplateDisk(row scanner) (TemplateDisk, error) {
	var d TemplateDisk
	var created int64
	err := row.Scan(&d.ID, &d.TemplateID, &d.DiskID, &d.RepoID, &d.Name, &d.Slot, &d.SizeMiB, &d.Sparse, &created)
	d.CreatedAt = fromUnix(created)
	return d, err
}

// TemplateVnic is a template's network interface, Position 0 first;
// NetworkID is "" when no network of the pool has its bridge.
type TemplateVnic struct {
	ID, TemplateID, Name, NetworkID, MAC string
	Position                             int
	CreatedAt                            time.Time
}

const templateVnicColumns = `id, template_id, name, COALESCE(network_id, ''), position, mac, created_at`

func scanTemplateVnic(row scanner) (TemplateVnic, error) {
	var v TemplateVnic
	var created int64
	err := row.Scan(&v.ID, &v.TemplateID, &v.Name, &v.NetworkID, &v.Position, &v.MAC, &created)
	v.CreatedAt = fromUnix(created)
	return v, err
}

// InsertVMTemplate adds a template with its disks and VNICs; a disk file
// recorded already, a slot or position given twice, or a pool,
// repository or network that is not there is ErrConflict.
func (q *Queries) InsertVMTemplate(ctx context.Context, t VMTemplate, disks []TemplateDisk, vnics []TemplateVnic) error {
	err := q.exec(ctx, `INSERT INTO vm_templates (`+templateColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		t.ID, t.Name, t.PoolID, t.RepoID, t.MemoryMiB, t.CPUCount, t.CPUCountLimit, t.DomainType, t.OSType, t.Description,
		t.Origin, t.State, t.CreatedBy, unix(t.CreatedAt))
	if err != nil {
		return err
	}
	for _, d := range disks {
		err := q.exec(ctx, `INSERT INTO vm_template_disks (`+templateDiskColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			d.ID, t.ID, d.DiskID, d.RepoID, d.Name, d.Slot, d.SizeMiB, d.Sparse, unix(d.CreatedAt))
		if err != nil {
			return err
		}
	}
	for _, v := range vnics {
		err := q.exec(ctx, `INSERT INTO vm_template_vnics (id, template_id, name, network_id, position, mac, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, v.ID, t.ID, v.Name, nullable(v.NetworkID), v.Position, v.MAC, unix(v.CreatedAt))
		if err != nil {
			return err
		}
	}
	return nil
}

// VMTemplate returns the template with id, or ErrNotFound.
func (q *Queries) VMTemplate(ctx context.Context, id string) (VMTemplate, error) {
	return queryOne(ctx, q.db, scanTemplate, `SELECT `+templateColumns+` FROM vm_templates WHERE id = $1`, id)
}

// VMTemplates returns every template, by name then id.
func (q *Queries) VMTemplates(ctx context.Context) ([]VMTemplate, error) {
	return queryAll(ctx, q.db, scanTemplate, `SELECT `+templateColumns+` FROM vm_templates ORDER BY name, id`)
}

// VMTemplatesByName returns the templates called name.
func (q *Queries) VMTemplatesByName(ctx context.Context, name string) ([]VMTemplate, error) {
	return queryAll(ctx, q.db, scanTemplate, `SELECT `+templateColumns+` FROM vm_templates WHERE name = $1 ORDER BY id`, name)
}

// UpdateVMTemplate writes a template's settings (name, sizes, domain and
// OS type, description); ErrNotFound when it is not there.
func (q *Queries) UpdateVMTemplate(ctx context.Context, t VMTemplate) error {
	return q.execOne(ctx, `UPDATE vm_templates SET name = $2, memory_mib = $3, cpu_count = $4, cpu_count_limit = $5, domain_type = $6,
		os_type = $7, description = $8 WHERE id = $1`, t.ID, t.Name, t.MemoryMiB, t.CPUCount, t.CPUCountLimit, t.DomainType, t.OSType,
		t.Description)
}

// SetVMTemplateState records a template's state (Approved, Pending).
func (q *Queries) SetVMTemplateState(ctx context.Context, id, state string) error {
	return q.execOne(ctx, `UPDATE vm_templates SET state = $2 WHERE id = $1`, id, state)
}

// DeleteVMTemplate removes a template, its disks' and VNICs' records, its
// clone customizers and the tags put on it.
func (q *Queries) DeleteVMTemplate(ctx context.Context, id string) error {
	if err := q.execOne(ctx, `DELETE FROM vm_templates WHERE id = $1`, id); err != nil {
		return err
	}
	return q.exec(ctx, `DELETE FROM object_tags WHERE object_id = $1`, id)
}

// SetTemplateDiskSize records the size of a template's disk, learned when
// it is first copied (an import moves its disks without saying their
// size).
func (q *Queries) SetTemplateDiskSize(ctx context.Context, id string, sizeMiB int64) error {
	return q.execOne(ctx, `UPDATE vm_template_disks SET size_mib = $2 WHERE id = $1`, id, sizeMiB)
}

// TemplateDisks returns a template's disks by slot.
func (q *Queries) TemplateDisks(ctx context.Context, templateID string) ([]TemplateDisk, error) {
	return queryAll(ctx, q.db, scanTemplateDisk, `SELECT `+templateDiskColumns+` FROM vm_template_disks WHERE template_id = $1 ORDER BY slot`,
		templateID)
}

// AllTemplateDisks returns the disks of every template, by template then
// slot.
func (q *Queries) AllTemplateDisks(ctx context.Context) ([]TemplateDisk, error) {
	return queryAll(ctx, q.db, scanTemplateDisk, `SELECT `+templateDiskColumns+` FROM vm_template_disks ORDER BY template_id, slot`)
}

// TemplateVnics returns a template's VNICs by position.
func (q *Queries) TemplateVnics(ctx context.Context, templateID string) ([]TemplateVnic, error) {
	return queryAll(ctx, q.db, scanTemplateVnic, `SELECT `+templateVnicColumns+` FROM vm_template_vnics WHERE template_id = $1 ORDER BY position`,
		templateID)
}
