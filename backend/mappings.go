package backend

import (
	"context"

	"xenmanager/store"
)

// This file is create, show and delete VmDiskMapping: Oracle VM 3's way to
// put a disk or an ISO in a VM and take it out, beside add and remove
// VirtualDisk and VirtualCdrom, whose paths it shares (mapDisk, mapCdrom,
// changeDevices).

// mappingKind resolves mappings of disks and ISOs by id and by the name
// they are shown with; a mapping's pool is its VM's.
func (m *Manager) mappingKind() kind[store.MappingEntry] {
	q := m.st.Read()
	return kind[store.MappingEntry]{"VmDiskMapping", q.MappingEntry, q.MappingEntriesByName, q.MappingEntries,
		func(x store.MappingEntry) string { return x.ShownName() }, func(x store.MappingEntry) string { return x.ID },
		func(x store.MappingEntry) string { return x.PoolID }}
}

// shownName is a mapping's name: the one it was given, else <vm>/<device>.
func shownName(given string, vm NamedRef, device string) string {
	return store.MappingEntry{Name: given, VMName: vm.Name, DeviceName: device}.ShownName()
}

// mappingView is the mapping e as the operator sees it.
func mappingView(e store.MappingEntry) DiskMapping {
	mp := DiskMapping{ID: e.ID, Name: e.ShownName(), Vm: NamedRef{e.VMID, e.VMName}, Slot: e.Slot}
	if e.CdromID != "" {
		mp.Cdrom = NamedRef{e.CdromID, e.DeviceName}
	} else {
		mp.Disk = NamedRef{e.DiskID, e.DeviceName}
	}
	return mp
}

// NewDiskMapping describes a mapping to create: a disk or an ISO (one of
// the two) in a VM's slot.
type NewDiskMapping struct {
	Vm          Ref
	VirtualDisk Ref
	Cdrom       Ref
	Slot        int    // negative: the first free one
	Name        string // "" for none: it is shown as <vm>/<device>
}

// CreateDiskMapping puts a disk or an approved ISO in a stopped VM, as
// AddDiskToVM and AddCdromToVM do, and gives the mapping its name.
func (m *Manager) CreateDiskMapping(ctx context.Context, req NewDiskMapping) (DiskMapping, error) {
	if (req.VirtualDisk == Ref{}) == (req.Cdrom == Ref{}) {
		return DiskMapping{}, errorf(KindInvalidArgument, "a VmDiskMapping holds a VirtualDisk or a VirtualCdrom: give one of the two")
	}
	if req.Name != "" {
		var err error
		if req.Name, err = ValidateName("VmDiskMapping", req.Name); err != nil {
			return DiskMapping{}, err
		}
	}
	var id string
	if req.VirtualDisk != (Ref{}) {
		d, err := resolve(ctx, m, m.diskKind(), req.VirtualDisk)
		if err != nil {
			return DiskMapping{}, err
		}
		if id, err = m.mapDisk(ctx, d, req.Vm, req.Slot, req.Name); err != nil {
			return DiskMapping{}, err
		}
	} else {
		iso, err := resolve(ctx, m, m.cdromKind(), req.Cdrom)
		if err != nil {
			return DiskMapping{}, err
		}
		if id, err = m.mapCdrom(ctx, iso, req.Vm, req.Slot, req.Name); err != nil {
			return DiskMapping{}, err
		}
	}
	return m.DiskMapping(ctx, Ref{ID: id})
}

// DiskMapping returns one mapping of a disk or an ISO.
func (m *Manager) DiskMapping(ctx context.Context, ref Ref) (DiskMapping, error) {
	e, err := resolve(ctx, m, m.mappingKind(), ref)
	if err != nil {
		return DiskMapping{}, err
	}
	return mappingView(e), nil
}

// DeleteDiskMapping takes the disk or ISO of a mapping out of its stopped
// VM, as RemoveDiskFromVM and RemoveCdromFromVM do; the disk or ISO stays.
func (m *Manager) DeleteDiskMapping(ctx context.Context, ref Ref) (DiskMapping, error) {
	e, err := resolve(ctx, m, m.mappingKind(), ref)
	if err != nil {
		return DiskMapping{}, err
	}
	what := "removing a disk"
	if e.CdromID != "" {
		what = "removing a VirtualCdrom"
	}
	err = m.deviceJob(ctx, Ref{ID: e.VMID}, what, func(ctx context.Context, v store.VM) error {
		// Read the mapping again under the VM's lock: the one to delete
		// and to put back if the agent refuses.
		if e.CdromID != "" {
			maps, err := m.st.Read().CdromMappingsOfVM(ctx, v.ID)
			if err != nil {
				return &Error{Kind: KindInternal, Msg: "read mappings", Cause: err}
			}
			for _, mp := range maps {
				if mp.ID == e.ID {
					return m.changeDevices(ctx, v, func(q *store.Queries) error { return q.DeleteCdromMapping(ctx, mp.ID) },
						func(q *store.Queries) error { return q.InsertCdromMapping(ctx, mp) })
				}
			}
		} else {
			maps, err := m.st.Read().DiskMappingsOfVM(ctx, v.ID)
			if err != nil {
				return &Error{Kind: KindInternal, Msg: "read mappings", Cause: err}
			}
			for _, mp := range maps {
				if mp.ID == e.ID {
					return m.changeDevices(ctx, v, func(q *store.Queries) error { return q.DeleteDiskMapping(ctx, mp.ID) },
						func(q *store.Queries) error { return q.InsertDiskMapping(ctx, mp) })
				}
			}
		}
		return errorf(KindNotFound, "VmDiskMapping %s was deleted meanwhile", e.ShownName())
	})
	if err != nil {
		return DiskMapping{}, err
	}
	return mappingView(e), nil
}
