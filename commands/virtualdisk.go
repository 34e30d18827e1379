package commands

import (
	"context"

	"xenmanager/backend"
)

// diskType is the VirtualDisk: a disk image in a repository, mapped into
// at most one VM (a VmDiskMapping), or into several when it is shareable.
var diskType = &objectType{
	Name: "VirtualDisk",
	List: &Spec{Help: "List virtual disks.", Attrs: []Attr{filterName, filterRepository, filterServerPool},
		Run: streamedBy((*backend.Manager).StreamVirtualDisks, diskRow)},
	Show:       shownBy((*backend.Manager).VirtualDisk, diskFields),
	ShowFields: fieldsOf(diskFields),
	ListFields: rowFieldsOf(diskRow),
}

func diskRow(d backend.VirtualDisk) Row {
	return Row{ID: d.ID, Name: d.Name, Fields: []Field{refCol("repository", "repository", d.Repository),
		intField("sizeMiB", "sizeMiB", d.SizeMiB), refCol("vm", "vm", d.Vm)}}
}

func diskFields(d backend.VirtualDisk) []Field {
	return []Field{strField("Name", "name", d.Name), strField("Id", "id", d.ID), refField("Repository", "repository", d.Repository),
		intField("Size (MiB)", "sizeMiB", d.SizeMiB), boolField("Sparse", "sparse", d.Sparse), refField("Vm", "vm", d.Vm),
		slotField(d), strField("Path", "path", d.Path), strField("Description", "description", d.Description),
		boolField("Shareable", "shareable", d.Shareable), refsField("Vms", "vms", d.Vms)}
}

// slotField is the disk's slot in its VM (the first, when it is in several):
// empty and null when it is in none.
func slotField(d backend.VirtualDisk) Field {
	f := intField("Slot", "slot", int64(d.Slot))
	if d.Vm.ID == "" {
		f.Value = ""
	}
	return f
}

func editDiskSpec() *Spec {
	return &Spec{
		Type: "VirtualDisk", Instance: true, Help: "Rename a virtual disk, change its description, or grow it (size=; shrinking is refused).",
		Attrs: []Attr{
			{Name: "name", Kind: AttrString, Help: "a new name"},
			{Name: "description", Kind: AttrString, Help: "free text"},
			{Name: "size", Kind: AttrInt, Min: 1, Max: backend.VirtualDiskMiB.Max / 1024, Help: "the new size in GiB, at least the current one; a VM sees it when it next starts"},
		},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			if err := needSomething(x); err != nil {
				return nil, err
			}
			ref := x.Ref()
			if size := optInt(x, "size"); size != nil {
				d, err := x.Backend.ResizeVirtualDisk(ctx, ref, *size*1024)
				if err != nil {
					return nil, err
				}
				ref = backend.Ref{ID: d.ID}
				if optStr(x, "name") == nil && optStr(x, "description") == nil {
					return rowOf(d.ID, d.Name, nil)
				}
			}
			r, err := x.Backend.EditNamed(ctx, backend.Renamable("VirtualDisk"), ref, optStr(x, "name"), optStr(x, "description"))
			return rowOf(r.ID, r.Name, err)
		},
	}
}

func createDiskSpec() *Spec {
	return &Spec{
		Type: "VirtualDisk", Help: "Create a disk image in a repository (a sparse file unless sparse=No).",
		Attrs: []Attr{
			{Name: "name", Kind: AttrString, Required: true, Help: "the disk's name"},
			{Name: "size", Kind: AttrInt, Min: 1, Max: backend.VirtualDiskMiB.Max / 1024, Required: true, Help: "size in GiB"},
			{Name: "sparse", Kind: AttrYesNo, Default: "Yes", Help: "No allocates every block now (takes longer)"},
			{Name: "shareable", Kind: AttrYesNo, Default: "No", Help: "Yes lets several VMs map it at once (a cluster's shared disk)"},
			{Name: "description", Kind: AttrString, Help: "free text"},
		},
		Clause: &Clause{Prep: "on", Types: []string{"Repository"}, Required: true},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			d, err := x.Backend.CreateVirtualDisk(ctx, backend.NewVirtualDisk{Name: x.Str("name"), Repository: x.TargetRef(),
				SizeMiB: x.Int("size") * 1024, Sparse: x.Str("sparse") == "Yes", Shareable: x.Str("shareable") == "Yes",
				Description: x.Str("description")})
			return rowOf(d.ID, d.Name, err)
		},
	}
}

func deleteDiskSpec() *Spec {
	return &Spec{
		Type: "VirtualDisk", Instance: true, Help: "Delete a disk no VM uses, and its image file.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			d, err := x.Backend.DeleteVirtualDisk(ctx, x.Ref())
			return rowOf(d.ID, d.Name, err)
		},
	}
}

func addDiskSpec() *Spec {
	return &Spec{
		Type: "VirtualDisk", Instance: true, Attrs: []Attr{{Name: "slot", Kind: AttrInt, Min: 0, Max: 63, Help: "the slot (0 is xvda; default: the first free one)"}},
		Help:   "Map a disk to a stopped VM (a VmDiskMapping, as create VmDiskMapping makes); the VM's vm.cfg lists it.",
		Clause: &Clause{Prep: "to", Types: []string{"Vm"}, Required: true},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			d, err := x.Backend.AddDiskToVM(ctx, x.Ref(), x.TargetRef(), slotAttr(x))
			return rowOf(d.ID, d.Name, err)
		},
	}
}

func removeDiskSpec() *Spec {
	return &Spec{
		Type: "VirtualDisk", Instance: true,
		Help:   "Unmap a disk from a stopped VM; the disk stays.",
		Clause: &Clause{Prep: "from", Types: []string{"Vm"}, Required: true},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			d, err := x.Backend.RemoveDiskFromVM(ctx, x.Ref(), x.TargetRef())
			return rowOf(d.ID, d.Name, err)
		},
	}
}
