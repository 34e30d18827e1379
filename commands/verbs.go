package commands

import (
	"context"
	"strings"

	"xenmanager/backend"
)

// This file declares the verbs that act on several object types: which
// types, in the order help shows them. Each type's spec is in its type's
// file (vm.go, server.go ...).

func verbCreate() *VerbInfo {
	return &VerbInfo{Name: "create", Help: "Create an object.", Specs: []*Spec{
		createPoolSpec(), createRepositorySpec(), createVMSpec(), createTagSpec(), createNetworkSpec(), createDiskSpec(),
		createVnicSpec(), createUserSpec(), createSSHKeySpec(), createAntiAffinitySpec(), createDiskMappingSpec(), createCustomizerSpec(),
		createStorageMappingSpec(), createNetworkMappingSpec(),
	}}
}

// renameOrder is the order help has always shown edit's renames in.
var renameOrder = []string{"Repository", "VirtualCdrom", "Network", "Vnic", "Tag"}

func verbEdit() *VerbInfo {
	v := &VerbInfo{Name: "edit", Help: "Change an object's settings.", Specs: []*Spec{
		editVMSpec(), editServerSpec(), editPoolSpec(), editUserSpec(), editManagerSpec(), editDiskSpec(), editTemplateSpec(),
	}}
	for _, t := range typesWhere(func(t *objectType) bool { return t.RenameHelp != "" }, renameOrder...) {
		v.Specs = append(v.Specs, renameSpec(backend.Renamable(t.Name), t.RenameHelp))
	}
	return v
}

// needSomething fails an edit that names no attribute.
func needSomething(x *Exec) error {
	if len(x.Cmd.Attrs) == 0 {
		return failf(CodeMissingAttribute, "%s %s needs at least one of: %s", x.Cmd.Spec.Verb, x.Cmd.Spec.Type, strings.Join(attrNames(x.Cmd.Spec), ", "))
	}
	return nil
}

// renameSpec declares edit on a type whose only editable attributes are its
// name and, where it has one, its description.
func renameSpec(typ backend.Renamable, help string) *Spec {
	attrs := []Attr{{Name: "name", Kind: AttrString, Help: "a new name"}}
	if typ.HasDescription() {
		attrs = append(attrs, Attr{Name: "description", Kind: AttrString, Help: "free text"})
	}
	return &Spec{Type: string(typ), Instance: true, Help: help, Attrs: attrs,
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			if err := needSomething(x); err != nil {
				return nil, err
			}
			r, err := x.Backend.EditNamed(ctx, typ, x.Ref(), optStr(x, "name"), optStr(x, "description"))
			return rowOf(r.ID, r.Name, err)
		}}
}

func verbDelete() *VerbInfo {
	return &VerbInfo{Name: "delete", Help: "Delete an object; what is in use is refused, naming what uses it.", Specs: []*Spec{
		deleteVMSpec(), deleteServerSpec(), deletePoolSpec(), deleteRepositorySpec(), deleteNetworkSpec(), deleteCdromSpec(),
		deleteDiskSpec(), deleteVnicSpec(), deleteTagSpec(), deleteUserSpec(), deleteSSHKeySpec(), deleteAntiAffinitySpec(),
		deleteDiskMappingSpec(), deleteTemplateSpec(), deleteCustomizerSpec(), deleteStorageMappingSpec(), deleteNetworkMappingSpec(),
	}}
}

func verbAdd() *VerbInfo {
	return &VerbInfo{Name: "add", Help: "Add an object to another.", Specs: []*Spec{
		addServerSpec(), addCdromSpec(), addDiskSpec(), addTagSpec(), addUserSpec(), addVMSpec(),
	}}
}

func verbRemove() *VerbInfo {
	return &VerbInfo{Name: "remove", Help: "Remove an object from another.", Specs: []*Spec{
		removeServerSpec(), removeCdromSpec(), removeDiskSpec(), removeTagSpec(), removeUserSpec(), removeVMSpec(),
	}}
}

func verbRefresh() *VerbInfo {
	return &VerbInfo{Name: "refresh", Help: "Re-read the agents' view of an object.", Specs: []*Spec{
		refreshServerSpec(), refreshPoolSpec(), refreshRepositorySpec(),
	}}
}
