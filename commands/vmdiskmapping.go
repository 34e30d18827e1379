package commands

import (
	"context"

	"xenmanager/backend"
)

// diskMappingType is the VmDiskMapping: which disk or ISO is in which
// VM's slot. create VmDiskMapping (Oracle VM 3's form) and add VirtualDisk
// or VirtualCdrom make them; delete VmDiskMapping and remove undo them.
var diskMappingType = &objectType{
	Name: "VmDiskMapping",
	List: &Spec{Help: "List which disk is in which VM's slot.", Attrs: []Attr{{Name: "vm", Kind: AttrObject, Object: "Vm", Help: "only this VM's mappings"}},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			l, err := x.Backend.StreamDiskMappings(ctx, objectRef(x.Str("vm")))
			if err != nil {
				return nil, err
			}
			return streamedRows(l, nil, mappingRow), nil
		}},
	Show:       shownBy((*backend.Manager).DiskMapping, mappingFields),
	ShowFields: fieldsOf(mappingFields),
	ListFields: rowFieldsOf(mappingRow),
}

func mappingRow(mp backend.DiskMapping) Row {
	return Row{ID: mp.ID, Name: mp.Name, Fields: []Field{refCol("vm", "vm", mp.Vm),
		refCol("virtualDisk", "virtualDisk", mp.Disk), intField("slot", "slot", int64(mp.Slot)), refCol("virtualCdrom", "virtualCdrom", mp.Cdrom)}}
}

func mappingFields(mp backend.DiskMapping) []Field {
	return []Field{strField("Name", "name", mp.Name), strField("Id", "id", mp.ID), refField("Vm", "vm", mp.Vm),
		intField("Slot", "slot", int64(mp.Slot)), refField("Virtual Disk", "virtualDisk", mp.Disk),
		refField("Virtual Cdrom", "virtualCdrom", mp.Cdrom)}
}

func createDiskMappingSpec() *Spec {
	return &Spec{
		Type: "VmDiskMapping",
		Help: "Put a disk (virtualDisk=) or an approved ISO (virtualCd=) in a stopped VM's slot, as add VirtualDisk and add VirtualCdrom do; the VM's vm.cfg lists it.",
		Attrs: []Attr{
			{Name: "slot", Kind: AttrInt, Min: 0, Max: 63, Help: "the slot (0 is xvda; default: the first free one)"},
			{Name: "virtualDisk", Kind: AttrObject, Object: "VirtualDisk", Help: "the disk to map; one in another VM must be shareable"},
			{Name: "virtualCd", Kind: AttrObject, Object: "VirtualCdrom", Help: "the ISO to put in, instead of a disk"},
			{Name: "name", Kind: AttrString, Help: "the mapping's name (default <vm>/<disk or ISO>)"},
		},
		Clause: &Clause{Prep: "on", Types: []string{"Vm"}, Required: true},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			disk, cd := objectRef(x.Str("virtualDisk")), objectRef(x.Str("virtualCd"))
			if (disk == backend.Ref{}) == (cd == backend.Ref{}) {
				return nil, failf(CodeMissingAttribute, "create VmDiskMapping needs one of 'virtualDisk=' and 'virtualCd='")
			}
			mp, err := x.Backend.CreateDiskMapping(ctx, backend.NewDiskMapping{Vm: x.TargetRef(), VirtualDisk: disk, Cdrom: cd,
				Slot: slotAttr(x), Name: x.Str("name")})
			return rowOf(mp.ID, mp.Name, err)
		},
	}
}

func deleteDiskMappingSpec() *Spec {
	return &Spec{
		Type: "VmDiskMapping", Instance: true,
		Help: "Take a mapping's disk or ISO out of its stopped VM, as remove VirtualDisk and remove VirtualCdrom do; the disk or ISO stays.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			mp, err := x.Backend.DeleteDiskMapping(ctx, x.Ref())
			return rowOf(mp.ID, mp.Name, err)
		},
	}
}
