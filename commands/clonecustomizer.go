package commands

import (
	"context"
	"fmt"

	"xenmanager/backend"
)

// customizerType is the VmCloneCustomizer of a VM or template (Oracle VM
// 3's clone customizer): its storage and network mappings say how clone
// ... cloneCustomizer= copies each disk and where each VNIC goes.
var customizerType = &objectType{
	Name: "VmCloneCustomizer",
	List: &Spec{Help: "List clone customizers.", Attrs: []Attr{filterName, filterServerPool},
		Run: listedBy((*backend.Manager).CloneCustomizers, customizerRow)},
	Show:       shownBy((*backend.Manager).CloneCustomizer, customizerFields),
	ShowFields: fieldsOf(customizerFields),
	ListFields: rowFieldsOf(customizerRow),
	RenameHelp: "Rename a clone customizer or change its description.",
}

func customizerRow(c backend.VmCloneCustomizer) Row {
	return Row{ID: c.ID, Name: c.Name, Fields: []Field{refCol("source", "source", c.Source), strField("sourceType", "sourceType", c.SourceType),
		intField("storageMappings", "storageMappingCount", int64(len(c.StorageMappings))),
		intField("networkMappings", "networkMappingCount", int64(len(c.NetworkMappings)))}}
}

func customizerFields(c backend.VmCloneCustomizer) []Field {
	label := c.SourceType // Vm = [web1], VmTemplate = [ol9]
	if label == "" {
		label = "Source"
	}
	fields := []Field{strField("Name", "name", c.Name), strField("Id", "id", c.ID), refField(label, "source", c.Source),
		strField("Source Type", "sourceType", c.SourceType), refField("Server Pool", "serverPool", c.Pool),
		strField("Description", "description", c.Description)}
	var sms, nms []backend.NamedRef
	for i, s := range c.StorageMappings {
		sms = append(sms, backend.NamedRef{ID: s.ID, Name: s.Name})
		fields = append(fields, strField(fmt.Sprintf("Storage Mapping %d", i+1), "",
			fmt.Sprintf("%s: %s %s into %s", s.Name, s.DiskMapping.Name, s.CloneType, s.Repository.Name)).textOnly())
	}
	for i, n := range c.NetworkMappings {
		nms = append(nms, backend.NamedRef{ID: n.ID, Name: n.Name})
		fields = append(fields, strField(fmt.Sprintf("Network Mapping %d", i+1), "",
			fmt.Sprintf("%s: Vnic %s on %s", n.Name, n.Vnic.Name, n.Network.Name)).textOnly())
	}
	return append(fields, refsField("", "storageMappings", sms).machineOnly(), refsField("", "networkMappings", nms).machineOnly())
}

// storageMappingType is a VmCloneStorageMapping: how and where a clone
// copies one of its source's disks.
var storageMappingType = &objectType{
	Name: "VmCloneStorageMapping",
	List: &Spec{Help: "List the storage mappings of clone customizers.",
		Attrs: []Attr{{Name: "cloneCustomizer", Kind: AttrObject, Object: "VmCloneCustomizer", Help: "only this customizer's mappings"}},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			sms, err := x.Backend.CloneStorageMappings(ctx, objectRef(x.Str("cloneCustomizer")))
			if err != nil {
				return nil, err
			}
			return rowsOf(sms, storageMappingRow), nil
		}},
	Show:       shownBy((*backend.Manager).CloneStorageMapping, storageMappingFields),
	ShowFields: fieldsOf(storageMappingFields),
	ListFields: rowFieldsOf(storageMappingRow),
}

func storageMappingRow(s backend.VmCloneStorageMapping) Row {
	return Row{ID: s.ID, Name: s.Name, Fields: []Field{refCol("cloneCustomizer", "cloneCustomizer", s.Customizer),
		refCol("vmDiskMapping", "vmDiskMapping", s.DiskMapping), strField("cloneType", "cloneType", s.CloneType),
		refCol("repository", "repository", s.Repository)}}
}

func storageMappingFields(s backend.VmCloneStorageMapping) []Field {
	return []Field{strField("Name", "name", s.Name), strField("Id", "id", s.ID), refField("Clone Customizer", "cloneCustomizer", s.Customizer),
		refField("Vm Disk Mapping", "vmDiskMapping", s.DiskMapping), refField("Virtual Disk", "virtualDisk", s.Disk),
		strField("Clone Type", "cloneType", s.CloneType), refField("Repository", "repository", s.Repository)}
}

// networkMappingType is a VmCloneNetworkMapping: the network of a clone's
// copy of one of its source's VNICs.
var networkMappingType = &objectType{
	Name: "VmCloneNetworkMapping",
	List: &Spec{Help: "List the network mappings of clone customizers.",
		Attrs: []Attr{{Name: "cloneCustomizer", Kind: AttrObject, Object: "VmCloneCustomizer", Help: "only this customizer's mappings"}},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			nms, err := x.Backend.CloneNetworkMappings(ctx, objectRef(x.Str("cloneCustomizer")))
			if err != nil {
				return nil, err
			}
			return rowsOf(nms, networkMappingRow), nil
		}},
	Show:       shownBy((*backend.Manager).CloneNetworkMapping, networkMappingFields),
	ShowFields: fieldsOf(networkMappingFields),
	ListFields: rowFieldsOf(networkMappingRow),
}

func networkMappingRow(n backend.VmCloneNetworkMapping) Row {
	return Row{ID: n.ID, Name: n.Name, Fields: []Field{refCol("cloneCustomizer", "cloneCustomizer", n.Customizer),
		refCol("vnic", "vnic", n.Vnic), refCol("network", "network", n.Network)}}
}

func networkMappingFields(n backend.VmCloneNetworkMapping) []Field {
	return []Field{strField("Name", "name", n.Name), strField("Id", "id", n.ID), refField("Clone Customizer", "cloneCustomizer", n.Customizer),
		refField("Vnic", "vnic", n.Vnic), refField("Network", "network", n.Network)}
}

func createCustomizerSpec() *Spec {
	return &Spec{
		Type: "VmCloneCustomizer",
		Help: "Create a clone customizer of a VM or template (on Vm takes a template too, as in Oracle VM 3); its mappings say how clone ... cloneCustomizer= copies.",
		Attrs: []Attr{
			{Name: "name", Kind: AttrString, Required: true, Help: "the customizer's name"},
			{Name: "description", Kind: AttrString, Help: "free text"},
		},
		Clause:    &Clause{Prep: "on", Types: []string{"Vm", "VmTemplate"}, Required: true},
		AlsoNames: map[string]string{"Vm": "VmTemplate"},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			c, err := x.Backend.CreateCloneCustomizer(ctx, x.Str("name"), x.Str("description"), x.Cmd.Target.Type, x.TargetRef())
			return rowOf(c.ID, c.Name, err)
		},
	}
}

func createStorageMappingSpec() *Spec {
	return &Spec{
		Type: "VmCloneStorageMapping",
		Help: "Say how clones made with the customizer copy one of its source's disks: SPARSE_COPY (holes stay holes), NON_SPARSE_COPY (every block written) or THIN_CLONE (blocks shared: a file system with reflink), and into which repository of the pool.",
		Attrs: []Attr{
			{Name: "name", Kind: AttrString, Required: true, Help: "the mapping's name"},
			{Name: "vmDiskMapping", Kind: AttrString, Required: true, Names: backend.NamesCloneSourceDisks,
				Help: "the source's VmDiskMapping: its id or name (<source>/<disk> when it has none), or its disk's name or id"},
			{Name: "cloneType", Kind: AttrEnum, Enum: backend.CloneTypes, Required: true, Help: "how the disk is copied"},
			{Name: "repository", Kind: AttrObject, Object: "Repository", Required: true, Help: "where the copy goes"},
		},
		Clause: &Clause{Prep: "on", Types: []string{"VmCloneCustomizer"}, Required: true},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			s, err := x.Backend.CreateCloneStorageMapping(ctx, backend.CloneStorageMappingRequest{Name: x.Str("name"), Customizer: x.TargetRef(),
				DiskMapping: x.Str("vmDiskMapping"), CloneType: x.Str("cloneType"), Repository: objectRef(x.Str("repository"))})
			return rowOf(s.ID, s.Name, err)
		},
	}
}

func createNetworkMappingSpec() *Spec {
	return &Spec{
		Type: "VmCloneNetworkMapping",
		Help: "Put the copy of one of the customizer's source's VNICs on a network of the pool.",
		Attrs: []Attr{
			{Name: "name", Kind: AttrString, Required: true, Help: "the mapping's name"},
			{Name: "vnic", Kind: AttrString, Required: true, Names: backend.NamesCloneSourceVnics, Help: "the source's Vnic: its name or id"},
			{Name: "network", Kind: AttrObject, Object: "Network", Required: true, Help: "the network its copies are on"},
		},
		Clause: &Clause{Prep: "on", Types: []string{"VmCloneCustomizer"}, Required: true},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			n, err := x.Backend.CreateCloneNetworkMapping(ctx, backend.CloneNetworkMappingRequest{Name: x.Str("name"), Customizer: x.TargetRef(),
				Vnic: x.Str("vnic"), Network: objectRef(x.Str("network"))})
			return rowOf(n.ID, n.Name, err)
		},
	}
}

func deleteCustomizerSpec() *Spec {
	return &Spec{Type: "VmCloneCustomizer", Instance: true, Help: "Delete a clone customizer and its mappings.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			c, err := x.Backend.DeleteCloneCustomizer(ctx, x.Ref())
			return rowOf(c.ID, c.Name, err)
		}}
}

func deleteStorageMappingSpec() *Spec {
	return &Spec{Type: "VmCloneStorageMapping", Instance: true, Help: "Delete a storage mapping of a clone customizer.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			s, err := x.Backend.DeleteCloneStorageMapping(ctx, x.Ref())
			return rowOf(s.ID, s.Name, err)
		}}
}

func deleteNetworkMappingSpec() *Spec {
	return &Spec{Type: "VmCloneNetworkMapping", Instance: true, Help: "Delete a network mapping of a clone customizer.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			n, err := x.Backend.DeleteCloneNetworkMapping(ctx, x.Ref())
			return rowOf(n.ID, n.Name, err)
		}}
}
