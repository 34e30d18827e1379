package store

import (
	"context"
	"time"
)

// CloneCustomizer says how clones of one VM or template are made: where
// and how each disk is copied (CloneStorageMapping) and which network each
// VNIC's copy is on (CloneNetworkMapping). Exactly one of VMID and
// TemplateID is set; the customizer goes with its source.
type CloneCustomizer struct {
	ID, Name, PoolID string
	VMID, TemplateID string
	Description      string
	CreatedAt        time.Time
}

// SourceID is the id of the VM or template the customizer belongs to.
func (c CloneCustomizer) SourceID() string {
	if c.VMID != "" {
		return c.VMID
	}
	return c.TemplateID
}

const customizerColumns = `id, name, pool_id, COALESCE(vm_id, ''), COALESCE(template_id, ''), description, created_at`

func scanCustomizer(row scanner) (CloneCustomizer, error) {
	var c CloneCustomizer
	var created int64
	err := row.Scan(&c.ID, &c.Name, &c.PoolID, &c.VMID, &c.TemplateID, &c.Description, &created)
	c.CreatedAt = fromUnix(created)
	return c, err
}

// CloneStorageMapping copies the source's disk of VmDiskMapping
// DiskMappingID into repository RepoID, as CloneType says.
type CloneStorageMapping struct {
	ID, Name, CustomizerID, DiskMappingID, CloneType, RepoID string
	CreatedAt                                                time.Time
}

const storageMappingColumns = `id, name, customizer_id, disk_mapping_id, clone_type, repo_id, created_at`

func scanStorageMapping(row scanner) (CloneStorageMapping, error) {
	var s CloneStorageMapping
	var created int64
	err := row.Scan(&s.ID, &s.Name, &s.CustomizerID, &s.DiskMappingID, &s.CloneType, &s.RepoID, &created)
	s.CreatedAt = fromUnix(created)
	return s, err
}

// CloneNetworkMapping puts the copy of the source's VNIC VnicID on
// network NetworkID.
type CloneNetworkMapping struct {
	ID, Name, CustomizerID, VnicID, NetworkID string
	CreatedAt                                 time.Time
}

const networkMappingColumns = `id, name, customizer_id, vnic_id, network_id, created_at`

func scanNetworkMapping(row scanner) (CloneNetworkMapping, error) {
	var n CloneNetworkMapping
	var created int64
	err := row.Scan(&n.ID, &n.Name, &n.CustomizerID, &n.VnicID, &n.NetworkID, &created)
	n.CreatedAt = fromUnix(created)
	return n, err
}

// InsertCloneCustomizer adds a customizer; a source, or pool, that is not
// there is ErrConflict.
func (q *Queries) InsertCloneCustomizer(ctx context.Context, c CloneCustomizer) error {
	return q.exec(ctx, `INSERT INTO vm_clone_customizers (id, name, pool_id, vm_id, template_id, description, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, c.ID, c.Name, c.PoolID, nullable(c.VMID), nullable(c.TemplateID), c.Description,
		unix(c.CreatedAt))
}

// CloneCustomizer returns the customizer with id, or ErrNotFound.
func (q *Queries) CloneCustomizer(ctx context.Context, id string) (CloneCustomizer, error) {
	return queryOne(ctx, q.db, scanCustomizer, `SELECT `+customizerColumns+` FROM vm_clone_customizers WHERE id = $1`, id)
}

// CloneCustomizers returns every customizer, by name then id.
func (q *Queries) CloneCustomizers(ctx context.Context) ([]CloneCustomizer, error) {
	return queryAll(ctx, q.db, scanCustomizer, `SELECT `+customizerColumns+` FROM vm_clone_customizers ORDER BY name, id`)
}

// CloneCustomizersByName returns the customizers called name.
func (q *Queries) CloneCustomizersByName(ctx context.Context, name string) ([]CloneCustomizer, error) {
	return queryAll(ctx, q.db, scanCustomizer, `SELECT `+customizerColumns+` FROM vm_clone_customizers WHERE name = $1 ORDER BY id`, name)
}

// DeleteCloneCustomizer removes a customizer and its mappings.
func (q *Queries) DeleteCloneCustomizer(ctx context.Context, id string) error {
	return q.execOne(ctx, `DELETE FROM vm_clone_customizers WHERE id = $1`, id)
}

// InsertCloneStorageMapping adds a storage mapping; a second one for the
// same disk mapping of a customizer, or a customizer or repository that
// is not there, is ErrConflict.
func (q *Queries) InsertCloneStorageMapping(ctx context.Context, s CloneStorageMapping) error {
	return q.exec(ctx, `INSERT INTO vm_clone_storage_mappings (`+storageMappingColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		s.ID, s.Name, s.CustomizerID, s.DiskMappingID, s.CloneType, s.RepoID, unix(s.CreatedAt))
}

// CloneStorageMapping returns the storage mapping with id, or ErrNotFound.
func (q *Queries) CloneStorageMapping(ctx context.Context, id string) (CloneStorageMapping, error) {
	return queryOne(ctx, q.db, scanStorageMapping, `SELECT `+storageMappingColumns+` FROM vm_clone_storage_mappings WHERE id = $1`, id)
}

// CloneStorageMappings returns every storage mapping, by name then id.
func (q *Queries) CloneStorageMappings(ctx context.Context) ([]CloneStorageMapping, error) {
	return queryAll(ctx, q.db, scanStorageMapping, `SELECT `+storageMappingColumns+` FROM vm_clone_storage_mappings ORDER BY name, id`)
}

// CloneStorageMappingsByName returns the storage mappings called name.
func (q *Queries) CloneStorageMappingsByName(ctx context.Context, name string) ([]CloneStorageMapping, error) {
	return queryAll(ctx, q.db, scanStorageMapping, `SELECT `+storageMappingColumns+` FROM vm_clone_storage_mappings WHERE name = $1 ORDER BY id`, name)
}

// CloneStorageMappingsOf returns a customizer's storage mappings, by name.
func (q *Queries) CloneStorageMappingsOf(ctx context.Context, customizerID string) ([]CloneStorageMapping, error) {
	return queryAll(ctx, q.db, scanStorageMapping, `SELECT `+storageMappingColumns+` FROM vm_clone_storage_mappings WHERE customizer_id = $1 ORDER BY name, id`,
		customizerID)
}

// DeleteCloneStorageMapping removes a storage mapping.
func (q *Queries) DeleteCloneStorageMapping(ctx context.Context, id string) error {
	return q.execOne(ctx, `DELETE FROM vm_clone_storage_mappings WHERE id = $1`, id)
}

// InsertCloneNetworkMapping adds a network mapping; a second one for the
// same VNIC of a customizer, or a customizer or network that is not
// there, is ErrConflict.
func (q *Queries) InsertCloneNetworkMapping(ctx context.Context, n CloneNetworkMapping) error {
	return q.exec(ctx, `INSERT INTO vm_clone_network_mappings (`+networkMappingColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		n.ID, n.Name, n.CustomizerID, n.VnicID, n.NetworkID, unix(n.CreatedAt))
}

// CloneNetworkMapping returns the network mapping with id, or ErrNotFound.
func (q *Queries) CloneNetworkMapping(ctx context.Context, id string) (CloneNetworkMapping, error) {
	return queryOne(ctx, q.db, scanNetworkMapping, `SELECT `+networkMappingColumns+` FROM vm_clone_network_mappings WHERE id = $1`, id)
}

// CloneNetworkMappings returns every network mapping, by name then id.
func (q *Queries) CloneNetworkMappings(ctx context.Context) ([]CloneNetworkMapping, error) {
	return queryAll(ctx, q.db, scanNetworkMapping, `SELECT `+networkMappingColumns+` FROM vm_clone_network_mappings ORDER BY name, id`)
}

// CloneNetworkMappingsByName returns the network mappings called name.
func (q *Queries) CloneNetworkMappingsByName(ctx context.Context, name string) ([]CloneNetworkMapping, error) {
	return queryAll(ctx, q.db, scanNetworkMapping, `SELECT `+networkMappingColumns+` FROM vm_clone_network_mappings WHERE name = $1 ORDER BY id`, name)
}

// CloneNetworkMappingsOf returns a customizer's network mappings, by name.
func (q *Queries) CloneNetworkMappingsOf(ctx context.Context, customizerID string) ([]CloneNetworkMapping, error) {
	return queryAll(ctx, q.db, scanNetworkMapping, `SELECT `+networkMappingColumns+` FROM vm_clone_network_mappings WHERE customizer_id = $1 ORDER BY name, id`,
		customizerID)
}

// DeleteCloneNetworkMapping removes a network mapping.
func (q *Queries) DeleteCloneNetworkMapping(ctx context.Context, id string) error {
	return q.execOne(ctx, `DELETE FROM vm_clone_network_mappings WHERE id = $1`, id)
}
