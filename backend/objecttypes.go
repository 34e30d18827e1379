package backend

import (
	"context"
	"strings"
)

// ObjectType is the 4-digit type code inside an id, as in Oracle VM's ids
// (0004fb00 + type + 0000 + 16 random hex digits).
type ObjectType string

// Type codes of the objects this manager makes, in one block so that a new
// code is seen beside the ones taken; objectKinds gives each its type of the
// command language.
const (
	TypeManager           ObjectType = "0001"
	TypeServerPool        ObjectType = "0002"
	TypeRepository        ObjectType = "0003"
	TypeServer            ObjectType = "0004"
	TypeVM                ObjectType = "0006"
	TypeVnic              ObjectType = "0007"
	TypeJob               ObjectType = "0009"
	TypeNetwork           ObjectType = "0010"
	TypeEvent             ObjectType = "0011"
	TypeVirtualDisk       ObjectType = "0012"
	TypeDiskMapping       ObjectType = "0013"
	TypeVirtualCdrom      ObjectType = "0015"
	TypeTag               ObjectType = "0018"
	TypeUser              ObjectType = "0020"
	TypeSSHKey            ObjectType = "0021"
	TypeAntiAffinityGroup ObjectType = "0022"
	TypeVMTemplate        ObjectType = "0023"
	TypeCloneCustomizer   ObjectType = "0024"
	// TypeCloneStorageMapping and TypeCloneNetworkMapping are the
	// mappings of a VmCloneCustomizer.
	TypeCloneStorageMapping ObjectType = "0025"
	TypeCloneNetworkMapping ObjectType = "0026"
)

// objectKind is one object type of the command language as the manager core
// knows it, so that the operations that take an object of any type (tags,
// renames, completion) read one table instead of each switching on type
// names.
type objectKind struct {
	name string     // as the language spells it: "Vm"
	code ObjectType // inside its ids
	// table is its store table, where completion reads names and renames
	// write them; "" for the types whose names completion does not offer.
	table string
	// find resolves the one object a reference names, as the actor sees it;
	// nil for the types that only their own operations look up.
	find     lookup
	taggable bool
	// tagPerm is what putting a tag on an object of a taggable type, or
	// taking one off, needs: what changing the object needs.
	tagPerm Permission
	// rename says how objects of the type are renamed; nil: they are not.
	rename *renaming
}

// renaming is how the objects of a Renamable type are renamed.
type renaming struct {
	perm      Permission // that the actor needs
	described bool       // edit sets a description too
	// refused says what an actor without perm may not do, when perm's own
	// words would not say it ("manage servers..." for a tag).
	refused string
	// may, when not nil, checks further that the actor may rename the
	// object with id as it is now (an ISO's approval); it is run before
	// the job and again in it, under the object's lock.
	may func(m *Manager, ctx context.Context, id string) error
}

// found is an object a lookup resolved, whatever its type: what operations
// on objects of any type need of it.
type found struct{ id, name, pool string }

// lookup resolves the one object of a type that ref names.
type lookup func(ctx context.Context, m *Manager, ref Ref) (found, error)

// lookupBy is the lookup of the objects of kind k, through find where the
// type resolves otherwise than as the actor sees k (nil: that way).
func lookupBy[T any](k func(*Manager) kind[T], find func(*Manager, context.Context, Ref) (T, error)) lookup {
	return func(ctx context.Context, m *Manager, ref Ref) (found, error) {
		kk := k(m)
		var x T
		var err error
		if find != nil {
			x, err = find(m, ctx, ref)
		} else {
			x, err = resolve(ctx, m, kk, ref)
		}
		if err != nil {
			return found{}, err
		}
		return found{kk.idOf(x), kk.nameOf(x), kk.poolOf(x)}, nil
	}
}

// objectKinds is every object type of the command language that has ids
// (audit records have none); the taggable ones first, in the order the
// error of TagObject has always named them.
var objectKinds = []objectKind{
	{name: "Vm", code: TypeVM, table: "vms", find: lookupBy((*Manager).vmKind, nil), taggable: true, tagPerm: PermVMLifecycle},
	{name: "Server", code: TypeServer, table: "servers", find: lookupBy((*Manager).serverKind, nil), taggable: true, tagPerm: PermManage},
	{name: "ServerPool", code: TypeServerPool, table: "server_pools", find: lookupBy((*Manager).poolKind, nil), taggable: true,
		tagPerm: PermManage},
	{name: "Repository", code: TypeRepository, table: "repositories", find: lookupBy((*Manager).repoKind, nil), taggable: true,
		tagPerm: PermManage, rename: &renaming{perm: PermManage}},
	{name: "AntiAffinityGroup", code: TypeAntiAffinityGroup, table: "anti_affinity_groups", find: lookupBy((*Manager).antiAffinityKind, nil),
		taggable: true, tagPerm: PermVMLifecycle, rename: &renaming{perm: PermVMLifecycle, described: true}},
	{name: "VmTemplate", code: TypeVMTemplate, table: "vm_templates", find: lookupBy((*Manager).templateKind, nil), taggable: true,
		tagPerm: PermVMLifecycle},
	{name: "VmCloneCustomizer", code: TypeCloneCustomizer, table: "vm_clone_customizers", find: lookupBy((*Manager).customizerKind, nil),
		rename: &renaming{perm: PermVMLifecycle, described: true}},
	{name: "VmCloneStorageMapping", code: TypeCloneStorageMapping, table: "vm_clone_storage_mappings",
		find: lookupBy((*Manager).storageMappingKind, nil)},
	{name: "VmCloneNetworkMapping", code: TypeCloneNetworkMapping, table: "vm_clone_network_mappings",
		find: lookupBy((*Manager).networkMappingKind, nil)},
	{name: "Network", code: TypeNetwork, table: "networks", find: lookupBy((*Manager).networkKind, nil),
		rename: &renaming{perm: PermManage, described: true}},
	{name: "VirtualDisk", code: TypeVirtualDisk, table: "virtual_disks", find: lookupBy((*Manager).diskKind, nil),
		rename: &renaming{perm: PermVMLifecycle, described: true}},
	{name: "VmDiskMapping", code: TypeDiskMapping},
	{name: "VirtualCdrom", code: TypeVirtualCdrom, table: "virtual_cdroms", find: lookupBy((*Manager).cdromKind, nil),
		rename: &renaming{perm: PermVMLifecycle, described: true, may: (*Manager).mayEditCdrom}},
	{name: "Vnic", code: TypeVnic, table: "vnics", find: lookupBy((*Manager).vnicKind, nil),
		rename: &renaming{perm: PermVMLifecycle}},
	{name: "Tag", code: TypeTag, table: "tags", find: lookupBy((*Manager).tagKind, (*Manager).findTag),
		rename: &renaming{perm: PermManage, described: true, refused: tagsRefused}},
	{name: "Job", code: TypeJob},
	{name: "Event", code: TypeEvent},
	{name: "User", code: TypeUser, find: lookupBy((*Manager).userKind, (*Manager).findUser)},
	{name: "SshKey", code: TypeSSHKey},
	{name: "Manager", code: TypeManager},
}

// objectKindNamed is the type the language calls name, or nil.
func objectKindNamed(name string) *objectKind {
	for i := range objectKinds {
		if objectKinds[i].name == name {
			return &objectKinds[i]
		}
	}
	return nil
}

// Taggable reports whether objects of the type the language calls typ take
// tags; the command language asks here instead of declaring it again.
func Taggable(typ string) bool {
	k := objectKindNamed(typ)
	return k != nil && k.taggable
}

// TaggableTypes are the types that take tags, in the order the table and
// its messages give them.
func TaggableTypes() []string {
	var names []string
	for _, k := range objectKinds {
		if k.taggable {
			names = append(names, k.name)
		}
	}
	return names
}

// Renamed reports whether edit renames objects of the type typ (EditNamed).
func Renamed(typ string) bool {
	k := objectKindNamed(typ)
	return k != nil && k.rename != nil
}

// taggableKinds names the types tags go on, as a sentence does:
// "Vm, Server, ServerPool, Repository and AntiAffinityGroup".
func taggableKinds() string {
	names := TaggableTypes()
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return joinComma(names[:len(names)-1]) + " and " + names[len(names)-1]
}
