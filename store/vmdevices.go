package store

import (
	"context"
	"encoding/json"
	"fmt"
)

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

// vmDevicesOf is the devices of the VMs whose ids the SQL %[1]s selects:
// their disks, ISOs, VNICs and tags, one row each, named d_* so that
// they join the columns of vms without a clash. Each part filters on the
// VMs itself, so that neither engine reads the devices of other VMs.
const vmDevicesOf = `
	SELECT m.vm_id AS d_vm, 1 AS d_part, m.slot AS d_slot, 0 AS d_made, '' AS d_tie, 'disk' AS d_kind,
		COALESCE(d.id, '') AS d_id, COALESCE(d.name, '') AS d_name
	FROM vm_disk_mappings m LEFT JOIN virtual_disks d ON d.id = m.disk_id WHERE m.vm_id IN (%[1]s)
	UNION ALL
	SELECT m.vm_id, 2, m.slot, 0, '', 'cdrom', COALESCE(c.id, ''), COALESCE(c.name, '')
	FROM vm_cdrom_mappings m LEFT JOIN virtual_cdroms c ON c.id = m.cdrom_id WHERE m.vm_id IN (%[1]s)
	UNION ALL
	SELECT n.vm_id, 3, 0, n.created_at, n.id, 'vnic', n.id, n.name FROM vnics n WHERE n.vm_id IN (%[1]s)
	UNION ALL
	SELECT o.object_id, 4, 0, 0, t.name, 'tag', '', t.name
	FROM object_tags o JOIN tags t ON t.id = o.tag_id WHERE o.object_id IN (%[1]s)`

// deviceOrder orders a VM's devices: disks by slot, ISOs by slot, VNICs in
// the order they were made, tags by name.
const deviceOrder = `d_part, d_slot, d_made, d_tie`

// The queries of a VM's devices, and of VMs with theirs.
var (
	vmDevicesQuery = `SELECT d_kind, d_id, d_name FROM (` + fmt.Sprintf(vmDevicesOf, `$1`) + `) x ORDER BY ` + deviceOrder
	// vmShownBy is the VMs whose column matches (match: "= $1", or "IN
	// (...)" of several keys), with their devices, in one query.
	vmShownBy = func(column, match string) string {
		return `SELECT ` + vmColumns + `, COALESCE(d_kind, ''), COALESCE(d_id, ''), COALESCE(d_name, '')
			FROM vms LEFT JOIN (` + fmt.Sprintf(vmDevicesOf, `SELECT id FROM vms WHERE `+column+` `+match) + `) x ON x.d_vm = vms.id
			WHERE vms.` + column + ` ` + match + ` ORDER BY vms.id, ` + deviceOrder
	}
	vmShownByIDQuery   = vmShownBy("id", "= $1")
	vmShownByNameQuery = vmShownBy("name", "= $1")
)

func scanVMDevice(r scanner) (VMDevice, error) {
	var d VMDevice
	err := r.Scan(&d.Kind, &d.ID, &d.Name)
	return d, err
}

// VMDevices returns the disks (by slot), ISOs (by slot) and VNICs (in the
// order they were made) of a VM, and its tags (by name), in one query, so
// that show Vm costs one read for them, not one per mapping: on
// PostgreSQL each read is a round trip. A mapping whose disk or ISO is
// gone reads with an empty id and name.
func (q *Queries) VMDevices(ctx context.Context, vmID string) ([]VMDevice, error) {
	return queryAll(ctx, q.db, scanVMDevice, vmDevicesQuery, vmID)
}

// VMShown is a VM with its devices, as show Vm reads it.
type VMShown struct {
	VM
	// Devices are VMDevices' of the VM, read with it when WithDevices.
	Devices     []VMDevice
	WithDevices bool
}

// VMShownByID returns the VM with id and its devices, or ErrNotFound: show
// Vm's one read. On PostgreSQL that is one query, one round trip; on
// SQLite two simple ones (the VM's, then VMDevices), which cost less there
// than the joined one, whose union SQLite materializes and sorts.
func (q *Queries) VMShownByID(ctx context.Context, id string) (VMShown, error) {
	if q.engine == SQLite {
		v, err := q.VM(ctx, id)
		if err != nil {
			return VMShown{}, err
		}
		return q.withDevices(ctx, v)
	}
	vms, err := q.vmsShown(ctx, vmShownByIDQuery, id)
	if err != nil {
		return VMShown{}, err
	}
	if len(vms) == 0 {
		return VMShown{}, ErrNotFound
	}
	return vms[0], nil
}

// VMsShownByName returns the VMs called name, by id, each with its
// devices: on PostgreSQL in one query, on SQLite as VMShownByID says.
func (q *Queries) VMsShownByName(ctx context.Context, name string) ([]VMShown, error) {
	if q.engine != SQLite {
		return q.vmsShown(ctx, vmShownByNameQuery, name)
	}
	vms, err := q.VMsByName(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make([]VMShown, len(vms))
	for i, v := range vms {
		if out[i], err = q.withDevices(ctx, v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// withDevices reads the devices of v.
func (q *Queries) withDevices(ctx context.Context, v VM) (VMShown, error) {
	devices, err := q.VMDevices(ctx, v.ID)
	if err != nil {
		return VMShown{}, err
	}
	return VMShown{VM: v, Devices: devices, WithDevices: true}, nil
}

// vmsShown reads the rows of a vmShownBy query: one per device of each VM
// (one with no device for a VM that has none), grouped by VM.
func (q *Queries) vmsShown(ctx context.Context, query, arg string) ([]VMShown, error) {
	type row struct {
		vm VM
		d  VMDevice
	}
	rows, err := queryAll(ctx, q.db, func(r scanner) (row, error) {
		var x row
		vm, err := scanVM(withExtra{r, []any{&x.d.Kind, &x.d.ID, &x.d.Name}})
		x.vm = vm
		return x, err
	}, query, arg)
	if err != nil {
		return nil, err
	}
	var out []VMShown
	for _, r := range rows {
		if len(out) == 0 || out[len(out)-1].ID != r.vm.ID {
			out = append(out, VMShown{VM: r.vm, WithDevices: true})
		}
		if r.d.Kind != "" {
			last := &out[len(out)-1]
			last.Devices = append(last.Devices, r.d)
		}
	}
	return out, nil
}

// withExtra is a row whose Scan fills the destinations a scan function
// gives and then extra: a record's scan reused on a query that selects
// more columns after the record's.
type withExtra struct {
	r     scanner
	extra []any
}

func (w withExtra) Scan(dest ...any) error { return w.r.Scan(append(dest, w.extra...)...) }

// MaxShownAtOnce bounds the ids or names one VMsShownByIDs or
// VMsShownByNames call reads.
const MaxShownAtOnce = 500

// The keys of VMsShownBy* arrive as one JSON array of strings, which both
// engines take apart in SQL, so that the statement is the same for any
// number of keys and stays prepared: sqliteKeys and postgresKeys select
// them.
const (
	sqliteKeys   = `SELECT value FROM json_each($1)`
	postgresKeys = `SELECT jsonb_array_elements_text($1::jsonb)`
)

// keysArg is keys as the one JSON array that sqliteKeys and postgresKeys
// take apart (a list of strings always encodes).
func keysArg(keys []string) string {
	b, _ := json.Marshal(keys)
	return string(b)
}

// shownWhereQueries are vmsShownWhere's queries of one column: SQLite's
// first read (the VMs; devicesOfIDsQuery is its second) and PostgreSQL's
// one (the VMs with their devices).
type shownWhereQueries struct{ vms, shown string }

// shownWhere is shownWhereQueries by column, built once.
var shownWhere = map[string]shownWhereQueries{
	"id":   {vms: vmsWhere("id", sqliteKeys), shown: vmShownBy("id", `IN (`+postgresKeys+`)`)},
	"name": {vms: vmsWhere("name", sqliteKeys), shown: vmShownBy("name", `IN (`+postgresKeys+`)`)},
}

// vmsWhere is the VMs whose column is one of the keys, by id; keys is
// the engine's query of them (sqliteKeys, postgresKeys).
func vmsWhere(column, keys string) string {
	return `SELECT ` + vmColumns + ` FROM vms WHERE ` + column + ` IN (` + keys + `) ORDER BY id`
}

// devicesOfIDsQuery is the devices of the VMs whose ids are the keys, by
// VM (SQLite's second read of vmsShownWhere).
var devicesOfIDsQuery = `SELECT d_vm, d_kind, d_id, d_name FROM (` + fmt.Sprintf(vmDevicesOf, sqliteKeys) + `) x ORDER BY d_vm, ` + deviceOrder

// VMsShownByIDs returns the VMs with the ids, each with its devices, by
// id; an id no VM has is left out. It reads in one query on PostgreSQL
// and two on SQLite, whatever the number of ids (at most MaxShownAtOnce):
// what a batch of show Vm lines reads ahead (Manager.PrefetchShownVMs).
func (q *Queries) VMsShownByIDs(ctx context.Context, ids []string) ([]VMShown, error) {
	return q.vmsShownWhere(ctx, "id", ids)
}

// VMsShownByNames is VMsShownByIDs by names: every VM called one of the
// names, by id.
func (q *Queries) VMsShownByNames(ctx context.Context, names []string) ([]VMShown, error) {
	return q.vmsShownWhere(ctx, "name", names)
}

// vmsShownWhere reads the VMs whose column (id or name) is one of keys.
func (q *Queries) vmsShownWhere(ctx context.Context, column string, keys []string) ([]VMShown, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	if len(keys) > MaxShownAtOnce {
		return nil, fmt.Errorf("%d VMs asked for in one read; at most %d are read at once", len(keys), MaxShownAtOnce)
	}
	arg := keysArg(keys)
	if q.engine != SQLite {
		return q.vmsShown(ctx, shownWhere[column].shown, arg)
	}
	vms, err := queryAll(ctx, q.db, scanVM, shownWhere[column].vms, arg)
	if err != nil || len(vms) == 0 {
		return nil, err
	}
	ids := make([]string, len(vms))
	for i, v := range vms {
		ids[i] = v.ID
	}
	type device struct {
		vm string
		d  VMDevice
	}
	devices, err := queryAll(ctx, q.db, func(r scanner) (device, error) {
		var x device
		err := r.Scan(&x.vm, &x.d.Kind, &x.d.ID, &x.d.Name)
		return x, err
	}, devicesOfIDsQuery, keysArg(ids))
	if err != nil {
		return nil, err
	}
	byVM := make(map[string][]VMDevice, len(vms))
	for _, x := range devices {
		byVM[x.vm] = append(byVM[x.vm], x.d)
	}
	out := make([]VMShown, len(vms))
	for i, v := range vms {
		out[i] = VMShown{VM: v, Devices: byVM[v.ID], WithDevices: true}
	}
	return out, nil
}
