package store

import (
	"context"
	"iter"
	"time"
)

// MappingEntry is a VmDiskMapping as lookups by id and name see it: a
// disk's or an ISO's mapping with the names of its VM and device, so that
// a mapping without a name of its own is found by the name it is shown
// with, <vm>/<device>.
type MappingEntry struct {
	ID, Name     string // Name: the one given at create; "" for none
	VMID, VMName string
	PoolID       string // the VM's
	DiskID       string // "" for an ISO
	CdromID      string // "" for a disk
	DeviceName   string // the disk's or the ISO's name
	Slot         int
	CreatedAt    time.Time
}

// ShownName is the mapping's name: the one given, else <vm>/<device>.
func (e MappingEntry) ShownName() string {
	if e.Name != "" {
		return e.Name
	}
	return e.VMName + "/" + e.DeviceName
}

// mappingEntries is every mapping of disks and ISOs, with its names.
const mappingEntries = `SELECT * FROM (
	SELECT m.id, m.name, m.vm_id, v.name AS vm_name, v.pool_id, m.disk_id, '' AS cdrom_id, d.name AS device_name, m.slot, m.created_at
		FROM vm_disk_mappings m JOIN vms v ON v.id = m.vm_id JOIN virtual_disks d ON d.id = m.disk_id
	UNION ALL
	SELECT m.id, m.name, m.vm_id, v.name, v.pool_id, '', m.cdrom_id, c.name, m.slot, m.created_at
		FROM vm_cdrom_mappings m JOIN vms v ON v.id = m.vm_id JOIN virtual_cdroms c ON c.id = m.cdrom_id) AS entries`

func scanMappingEntry(row scanner) (MappingEntry, error) {
	var e MappingEntry
	var at int64
	err := row.Scan(&e.ID, &e.Name, &e.VMID, &e.VMName, &e.PoolID, &e.DiskID, &e.CdromID, &e.DeviceName, &e.Slot, &at)
	e.CreatedAt = fromUnix(at)
	return e, err
}

// MappingEntry returns the mapping of a disk or an ISO with id.
func (q *Queries) MappingEntry(ctx context.Context, id string) (MappingEntry, error) {
	return queryOne(ctx, q.db, scanMappingEntry, mappingEntries+` WHERE id = $1`, id)
}

// MappingEntriesByName returns the mappings shown as name: those given
// it, and those given none whose <vm>/<device> it is.
func (q *Queries) MappingEntriesByName(ctx context.Context, name string) ([]MappingEntry, error) {
	return queryAll(ctx, q.db, scanMappingEntry, mappingEntries+`
		WHERE name = $1 OR (name = '' AND vm_name || '/' || device_name = $1) ORDER BY vm_id, slot`, name)
}

// mappingOrder is the order of a listing of mappings: by VM, then slot, a
// disk before an ISO in the same slot, then id, so that no two rows tie.
const mappingOrder = ` ORDER BY vm_id, slot, cdrom_id, id`

// MappingEntries returns every mapping of disks and ISOs, by VM then slot.
func (q *Queries) MappingEntries(ctx context.Context) ([]MappingEntry, error) {
	return queryAll(ctx, q.db, scanMappingEntry, mappingEntries+mappingOrder)
}

// EachMappingEntry yields the mappings of disks and ISOs as MappingEntries
// orders them, one at a time (list VmDiskMapping); those of the VM with
// vmID alone unless it is "".
func (q *Queries) EachMappingEntry(ctx context.Context, vmID string) iter.Seq2[MappingEntry, error] {
	if vmID == "" {
		return queryEach(ctx, q.db, scanMappingEntry, mappingEntries+mappingOrder)
	}
	return queryEach(ctx, q.db, scanMappingEntry, mappingEntries+` WHERE vm_id = $1`+mappingOrder, vmID)
}
