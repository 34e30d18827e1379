package backend

import (
	"context"
	"errors"

	"xenmanager/store"
)

// Renamable is an object type whose name, and description where it has
// one, edit changes in the manager's records only: nothing on the servers
// knows these names (a repository's alias in .ovsrepo stays as created).
type Renamable string

// The renamable object types.
const (
	RenameRepository   Renamable = "Repository"
	RenameVirtualDisk  Renamable = "VirtualDisk"
	RenameVirtualCdrom Renamable = "VirtualCdrom"
	RenameNetwork      Renamable = "Network"
	RenameVnic         Renamable = "Vnic"
	RenameTag          Renamable = "Tag"
)

// HasDescription reports whether objects of the type have a description
// that edit sets (repositories and VNICs have only a name).
func (t Renamable) HasDescription() bool { return t != RenameRepository && t != RenameVnic }

// EditNamed renames an object of a Renamable type and, when description is
// not nil, sets its description (Repository and Vnic have none: giving one
// is an error). It runs as a job that locks the object.
func (m *Manager) EditNamed(ctx context.Context, typ Renamable, ref Ref, name, description *string) (NamedRef, error) {
	if description != nil && !typ.HasDescription() {
		return NamedRef{}, errorf(KindInvalidArgument, "a %s has no description; edit its name=", typ)
	}
	switch typ {
	case RenameRepository:
		return editNamed(ctx, m, m.repoKind(), nil, "repositories", PermManage, ref, name, description)
	case RenameNetwork:
		return editNamed(ctx, m, m.networkKind(), nil, "networks", PermManage, ref, name, description)
	case RenameVirtualDisk:
		return editNamed(ctx, m, m.diskKind(), nil, "virtual_disks", PermVMLifecycle, ref, name, description)
	case RenameVirtualCdrom:
		return editNamed(ctx, m, m.cdromKind(), nil, "virtual_cdroms", PermVMLifecycle, ref, name, description)
	case RenameVnic:
		return editNamed(ctx, m, m.vnicKind(), nil, "vnics", PermVMLifecycle, ref, name, description)
	case RenameTag:
		return editNamed(ctx, m, m.tagKind(), m.findTag, "tags", PermVMLifecycle, ref, name, description)
	}
	return NamedRef{}, errorf(KindInvalidArgument, "%s cannot be renamed", typ)
}

// editNamed is EditNamed for one type; find resolves the object when
// resolving it as the actor sees kind k will not do (nil: that way).
func editNamed[T any](ctx context.Context, m *Manager, k kind[T], find func(context.Context, Ref) (T, error), table string,
	perm Permission, ref Ref, name, description *string) (NamedRef, error) {
	if name == nil && description == nil {
		return NamedRef{}, errorf(KindInvalidArgument, "edit %s needs something to change: name= or description=", k.name)
	}
	if name != nil {
		if err := ValidateName(k.name, *name); err != nil {
			return NamedRef{}, err
		}
	}
	var x T
	var err error
	if find != nil {
		x, err = find(ctx, ref)
	} else {
		x, err = resolve(ctx, m, k, ref)
	}
	if err != nil {
		return NamedRef{}, err
	}
	if err := m.authorize(ctx, perm); err != nil {
		return NamedRef{}, err
	}
	id, old := k.idOf(x), k.nameOf(x)
	return jobValue[NamedRef](m.job(ctx, actorFrom(ctx), k.poolOf(x), "edit "+k.name+" "+old, []string{id},
		func(ctx context.Context, j *jobRun) (any, error) {
			err := m.st.Write(ctx, func(q *store.Queries) error { return q.RenameObject(ctx, table, id, name, description) })
			if errors.Is(err, store.ErrNotFound) {
				return nil, errorf(KindNotFound, "%s %s was deleted meanwhile", k.name, old)
			}
			if err != nil {
				return nil, &Error{Kind: KindInternal, Msg: "record " + k.name, Cause: err}
			}
			if name != nil {
				return NamedRef{id, *name}, nil
			}
			return NamedRef{id, old}, nil
		}))
}
