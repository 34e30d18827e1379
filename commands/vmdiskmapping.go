package commands

import (
	"context"

	"xenmanager/backend"
)

// diskMappingType is the VmDiskMapping: which disk or ISO is in which
// VM's slot. add and remove VirtualDisk or VirtualCdrom make and undo
// them; they are listed, never shown one by one.
var diskMappingType = &objectType{
	Name: "VmDiskMapping",
	List: &Spec{Help: "List which disk is in which VM's slot.", Attrs: []Attr{{Name: "vm", Kind: AttrObject, Object: "Vm", Help: "only this VM's mappings"}},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			maps, err := x.Backend.DiskMappings(ctx, objectRef(x.Str("vm")))
			if err != nil {
				return nil, err
			}
			return rowsOf(maps, mappingRow), nil
		}},
	ListFields: rowFieldsOf(mappingRow),
}

func mappingRow(mp backend.DiskMapping) Row {
	what := mp.Disk.Name
	if mp.Cdrom.ID != "" {
		what = mp.Cdrom.Name
	}
	return Row{ID: mp.ID, Name: mp.Vm.Name + "/" + what, Fields: []Field{refCol("vm", "vm", mp.Vm),
		refCol("virtualDisk", "virtualDisk", mp.Disk), intField("slot", "slot", int64(mp.Slot)), refCol("virtualCdrom", "virtualCdrom", mp.Cdrom)}}
}
