package store

import "context"

// VMDevice is one device of a VM as show Vm names it: a disk, an ISO or a
// VNIC, with the id and name of what it maps; or one of the VM's tags.
type VMDevice struct {
	Kind string // "disk", "cdrom", "vnic" or "tag"
	ID   string // "" for a disk or ISO deleted since it was mapped, and for a tag
	Name string
}

// The kinds of VMDevice.
const (
	DeviceDisk  = "disk"
	DeviceCdrom = "cdrom"
	DeviceVnic  = "vnic"
	DeviceTag   = "tag"
)

// VMDevices returns the disks (by slot), ISOs (by slot) and VNICs (in the
// order they were made) of a VM, and its tags (by name), in one query, so
// that show Vm costs one read for them, not one per mapping: on
// PostgreSQL each read is a round trip. A mapping whose disk or ISO is
// gone reads with an empty id and name.
func (q *Queries) VMDevices(ctx context.Context, vmID string) ([]VMDevice, error) {
	return queryAll(ctx, q.db, func(r scanner) (VMDevice, error) {
		var d VMDevice
		err := r.Scan(&d.Kind, &d.ID, &d.Name)
		return d, err
	}, `SELECT kind, id, name FROM (
		SELECT 1 AS part, m.slot AS slot, 0 AS made, '' AS tiebreak, 'disk' AS kind,
			COALESCE(d.id, '') AS id, COALESCE(d.name, '') AS name
		FROM vm_disk_mappings m LEFT JOIN virtual_disks d ON d.id = m.disk_id WHERE m.vm_id = $1
		UNION ALL
		SELECT 2, m.slot, 0, '', 'cdrom', COALESCE(c.id, ''), COALESCE(c.name, '')
		FROM vm_cdrom_mappings m LEFT JOIN virtual_cdroms c ON c.id = m.cdrom_id WHERE m.vm_id = $1
		UNION ALL
		SELECT 3, 0, n.created_at, n.id, 'vnic', n.id, n.name FROM vnics n WHERE n.vm_id = $1
		UNION ALL
		SELECT 4, 0, 0, t.name, 'tag', '', t.name FROM object_tags o JOIN tags t ON t.id = o.tag_id WHERE o.object_id = $1
	) devices ORDER BY part, slot, made, tiebreak`, vmID)
}
