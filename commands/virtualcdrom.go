package commands

import (
	"context"

	"xenmanager/backend"
)

// cdromType is the VirtualCdrom: an ISO image in a repository, put in VMs
// read-only. importIso makes them and approve lets them be used.
var cdromType = &objectType{
	Name: "VirtualCdrom",
	List: &Spec{Help: "List ISO images.", Attrs: []Attr{filterName, filterRepository, filterServerPool},
		Run: streamedBy((*backend.Manager).StreamVirtualCdroms, cdromRow)},
	Show:       shownBy((*backend.Manager).VirtualCdrom, cdromFields),
	ShowFields: fieldsOf(cdromFields),
	ListFields: rowFieldsOf(cdromRow),
	RenameHelp: "Rename an ISO or change its description: an approved one, Administrators; a Pending one, also the Operator who imported it.",
}

func cdromRow(c backend.VirtualCdrom) Row {
	return Row{ID: c.ID, Name: c.Name, Fields: []Field{refCol("repository", "repository", c.Repository),
		strField("state", "state", c.State), intField("sizeBytes", "sizeBytes", c.SizeBytes), refsField("vms", "vms", c.Vms)}}
}

func cdromFields(c backend.VirtualCdrom) []Field {
	return []Field{strField("Name", "name", c.Name), strField("Id", "id", c.ID), refField("Repository", "repository", c.Repository),
		strField("State", "state", c.State), intField("Size (bytes)", "sizeBytes", c.SizeBytes), strField("Url", "url", c.URL),
		strField("Imported By", "importedBy", c.ImportedBy), refsField("Vms", "vms", c.Vms), strField("Path", "path", c.Path),
		strField("Description", "description", c.Description)}
}

func verbImportIso() *VerbInfo {
	return &VerbInfo{Name: "importIso", Help: "Download an ISO image into a repository (a VirtualCdrom).", Specs: []*Spec{{
		Type: "Repository", Instance: true,
		Help: "A server of the repository's pool downloads url into the repository's ISOs directory. An ISO imported by an Operator stays Pending until an Administrator approves it.",
		Attrs: []Attr{
			{Name: "url", Kind: AttrString, Required: true, Help: "an http:// or https:// URL the servers can reach"},
			{Name: "name", Kind: AttrString, Required: true, Help: "the VirtualCdrom's name"},
			{Name: "description", Kind: AttrString, Help: "free text"},
		},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			c, err := x.Backend.ImportISO(ctx, x.Ref(), x.Str("url"), x.Str("name"), x.Str("description"))
			return rowOf(c.ID, c.Name, err)
		},
	}}}
}

func verbApprove() *VerbInfo {
	return &VerbInfo{Name: "approve", Help: "Approve an import made by a non-administrator (Administrators).", Specs: []*Spec{{
		Type: "VirtualCdrom", Instance: true, Help: "Let a Pending ISO be put in VMs.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			c, err := x.Backend.ApproveVirtualCdrom(ctx, x.Ref())
			return rowOf(c.ID, c.Name, err)
		},
	}, approveTemplateSpec()}}
}

func deleteCdromSpec() *Spec {
	return &Spec{Type: "VirtualCdrom", Instance: true, Help: "Delete an ISO no VM holds, and its file: an approved one, Administrators; a Pending one, also the Operator who imported it.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			c, err := x.Backend.DeleteVirtualCdrom(ctx, x.Ref())
			return rowOf(c.ID, c.Name, err)
		}}
}

func addCdromSpec() *Spec {
	return &Spec{Type: "VirtualCdrom", Instance: true,
		Attrs:  []Attr{{Name: "slot", Kind: AttrInt, Min: 0, Max: 63, Help: "the slot, numbered with the disks' (default: the first free one)"}},
		Help:   "Put an approved ISO in a stopped VM as a read-only CD-ROM drive; the VM's vm.cfg lists it.",
		Clause: &Clause{Prep: "to", Types: []string{"Vm"}, Required: true},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			c, err := x.Backend.AddCdromToVM(ctx, x.Ref(), x.TargetRef(), slotAttr(x))
			return rowOf(c.ID, c.Name, err)
		}}
}

func removeCdromSpec() *Spec {
	return &Spec{Type: "VirtualCdrom", Instance: true, Help: "Take an ISO out of a stopped VM; the ISO stays.",
		Clause: &Clause{Prep: "from", Types: []string{"Vm"}, Required: true},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			c, err := x.Backend.RemoveCdromFromVM(ctx, x.Ref(), x.TargetRef())
			return rowOf(c.ID, c.Name, err)
		}}
}
