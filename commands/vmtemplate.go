package commands

import (
	"context"
	"fmt"
	"strings"

	"xenmanager/backend"
)

// templateType is the VmTemplate: Templates/<id>/vm.cfg in a repository and
// the disks it names. importTemplate, importVirtualAppliance and clone
// ... destType=VmTemplate make them; clone makes VMs of them.
var templateType = &objectType{
	Name: "VmTemplate",
	List: &Spec{Help: "List VM templates.", Attrs: []Attr{filterName,
		{Name: "state", Kind: AttrEnum, Enum: []string{backend.TemplateApproved, backend.TemplatePending}, Help: "only templates in this state"},
		filterServerPool, filterRepository},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			f := listFilter(x)
			f.Status = x.Str("state")
			l, err := x.Backend.StreamVMTemplates(ctx, f)
			if err != nil {
				return nil, err
			}
			return streamedRows(l, nil, templateRow), nil
		}},
	Show:       shownBy((*backend.Manager).VMTemplate, templateFields),
	ShowFields: fieldsOf(templateFields),
	ListFields: rowFieldsOf(templateRow),
}

func templateRow(t backend.VmTemplate) Row {
	return Row{ID: t.ID, Name: t.Name, Fields: []Field{strField("state", "state", t.State), refCol("repository", "repository", t.Repository),
		intField("memory", "memory", t.MemoryMiB), intField("cpus", "cpuCount", t.CPUCount), intField("disks", "diskCount", int64(len(t.Disks)))}}
}

// templateFields print each disk and VNIC on a line of its own in the text
// form (Disk 1, Vnic 1 ...), as arrays in the machine form.
func templateFields(t backend.VmTemplate) []Field {
	fields := []Field{strField("Name", "name", t.Name), strField("Id", "id", t.ID), strField("State", "state", t.State),
		refField("Server Pool", "serverPool", t.Pool), refField("Repository", "repository", t.Repository),
		intField("Memory (MB)", "memory", t.MemoryMiB), intField("Processors", "cpuCount", t.CPUCount),
		intField("Max. Processors", "cpuCountLimit", max(t.CPUCountLimit, t.CPUCount)),
		strField("Domain Type", "domainType", domainTypeName(t.DomainType)), strField("Operating System", "osType", t.OSType),
		strField("Description", "description", t.Description), strField("Origin", "origin", t.Origin),
		strField("Created By", "createdBy", t.CreatedBy), strField("Path", "path", t.Path)}
	var disks, vnics []backend.NamedRef
	for i, d := range t.Disks {
		disks = append(disks, backend.NamedRef{ID: d.ID, Name: d.Name})
		size := fmt.Sprintf("%d MB", d.SizeMiB)
		if d.SizeMiB == 0 { // an import's disk, moved without its size
			size = "size unknown until it is first copied"
		}
		fields = append(fields, strField(fmt.Sprintf("Disk %d", i+1), "",
			fmt.Sprintf("%s slot %d, %s%s, %s (VmDiskMapping id=%s)", d.Name, d.Slot, size, sparseWord(d.Sparse), d.Path, d.ID)).textOnly())
	}
	for i, v := range t.Vnics {
		vnics = append(vnics, backend.NamedRef{ID: v.ID, Name: v.Name})
		network := v.Network.Name
		if v.Network.ID == "" {
			network = "no network"
		}
		fields = append(fields, strField(fmt.Sprintf("Vnic %d", i+1), "", fmt.Sprintf("%s on %s (id=%s)", v.Name, network, v.ID)).textOnly())
	}
	return append(fields, refsField("", "diskMappings", disks).machineOnly(), refsField("", "vnics", vnics).machineOnly(),
		refsField("Clone Customizers", "cloneCustomizers", t.Customizers), strField("Cloning Job", "cloningJob", t.CloningJob))
}

func sparseWord(sparse bool) string {
	if sparse {
		return " sparse"
	}
	return ""
}

func editTemplateSpec() *Spec {
	return &Spec{
		Type: "VmTemplate", Instance: true,
		Help: "Change a template's settings; its vm.cfg is written again. Refused while a clone from it runs.",
		Attrs: []Attr{
			{Name: "name", Kind: AttrString, Help: "a new name"},
			{Name: "description", Kind: AttrString, Help: "free text"},
			attrMemory,
			attrCPUCount,
			attrCPUCountLimit,
			{Name: "domainType", Kind: AttrEnum, Enum: domainTypes, Help: "virtualization mode of its clones"},
			{Name: "osType", Kind: AttrString, Help: "the guest's operating system, for information"},
		},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			if err := needSomething(x); err != nil {
				return nil, err
			}
			req := backend.EditTemplateRequest{Name: optStr(x, "name"), Description: optStr(x, "description"), OSType: optStr(x, "osType"),
				MemoryMiB: optInt(x, "memory"), CPUCount: optInt(x, "cpuCount"), CPUCountLimit: optInt(x, "cpuCountLimit")}
			if dt := optStr(x, "domainType"); dt != nil {
				lower := strings.ToLower(*dt)
				req.DomainType = &lower
			}
			t, err := x.Backend.EditVMTemplate(ctx, x.Ref(), req)
			if err != nil {
				return nil, err
			}
			return &Result{Fields: templateFields(t)}, nil
		},
	}
}

func deleteTemplateSpec() *Spec {
	return &Spec{Type: "VmTemplate", Instance: true,
		Help: "Delete a template, its disks and its directory in the repository (and its clone customizers); refused while a clone from it runs.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			t, err := x.Backend.DeleteVMTemplate(ctx, x.Ref())
			return rowOf(t.ID, t.Name, err)
		}}
}

func approveTemplateSpec() *Spec {
	return &Spec{Type: "VmTemplate", Instance: true, Help: "Let a Pending template be cloned.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			t, err := x.Backend.ApproveVMTemplate(ctx, x.Ref())
			return rowOf(t.ID, t.Name, err)
		}}
}

// importTemplateAttrs are the attributes of importTemplate and
// importVirtualAppliance, as importIso's.
func importTemplateAttrs(what string) []Attr {
	return []Attr{
		{Name: "url", Kind: AttrString, Required: true, Help: "an http:// or https:// URL of " + what + " the servers can reach"},
		{Name: "name", Kind: AttrString, Required: true, Help: "the VmTemplate's name (no other template may have it)"},
		{Name: "description", Kind: AttrString, Help: "free text"},
	}
}

func verbImportTemplate() *VerbInfo {
	return &VerbInfo{Name: "importTemplate", Help: "Download a VM template into a repository (a VmTemplate).", Specs: []*Spec{{
		Type: "Repository", Instance: true,
		Help:  "A server of the repository's pool downloads a template archive (Oracle VM 2's layout: a tar, gzip-compressed or not, of vm.cfg and the disk images it names, at its top or in its only directory; a manifest (.mf, .sha256) it carries is checked) into the repository; its disks move into VirtualDisks. A template imported by an Operator stays Pending until an Administrator approves it.",
		Attrs: importTemplateAttrs("the archive"),
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			t, err := x.Backend.ImportTemplate(ctx, x.Ref(), x.Str("url"), x.Str("name"), x.Str("description"))
			return rowOf(t.ID, t.Name, err)
		},
	}}}
}

func verbImportVirtualAppliance() *VerbInfo {
	return &VerbInfo{Name: "importVirtualAppliance", Help: "Download an OVA appliance into a repository as a VM template (a VmTemplate).", Specs: []*Spec{{
		Type: "Repository", Instance: true,
		Help:  "A server of the repository's pool downloads an OVA (a tar of one OVF descriptor, an optional manifest, which is checked, and disk images: vmdk, qcow2, vhd or raw, converted to raw) into the repository as a template whose name, memory, processors, disks and networks the OVF gives. An Operator's import stays Pending until an Administrator approves it.",
		Attrs: importTemplateAttrs("the .ova file"),
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			t, err := x.Backend.ImportVirtualAppliance(ctx, x.Ref(), x.Str("url"), x.Str("name"), x.Str("description"))
			return rowOf(t.ID, t.Name, err)
		},
	}}}
}
