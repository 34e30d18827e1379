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

// The renamable object types: those with a rename in objectKinds.
const (
	RenameRepository   Renamable = "Repository"
	RenameVirtualDisk  Renamable = "VirtualDisk"
	RenameVirtualCdrom Renamable = "VirtualCdrom"
	RenameNetwork      Renamable = "Network"
	RenameVnic         Renamable = "Vnic"
	RenameTag          Renamable = "Tag"
	// RenameAntiAffinityGroup: edit AntiAffinityGroup.
	RenameAntiAffinityGroup Renamable = "AntiAffinityGroup"
	// RenameCloneCustomizer: edit VmCloneCustomizer.
	RenameCloneCustomizer Renamable = "VmCloneCustomizer"
)

// HasDescription reports whether objects of the type have a description
// that edit sets (repositories and VNICs have only a name).
func (t Renamable) HasDescription() bool {
	k := objectKindNamed(string(t))
	return k != nil && k.rename != nil && k.rename.described
}

// EditNamed renames an object of a Renamable type and, when description is
// not nil, sets its description (Repository and Vnic have none: giving one
// is an error). It runs as a job that locks the object.
func (m *Manager) EditNamed(ctx context.Context, typ Renamable, ref Ref, name, description *string) (NamedRef, error) {
	k := objectKindNamed(string(typ))
	if k == nil || k.rename == nil {
		return NamedRef{}, errorf(KindInvalidArgument, "%s cannot be renamed", typ)
	}
	if description != nil && !k.rename.described {
		return NamedRef{}, errorf(KindInvalidArgument, "a %s has no description; edit its name=", typ)
	}
	if name == nil && description == nil {
		return NamedRef{}, errorf(KindInvalidArgument, "edit %s needs something to change: name= or description=", k.name)
	}
	if name != nil {
		n, err := ValidateName(k.name, *name)
		if err != nil {
			return NamedRef{}, err
		}
		name = &n
	}
	o, err := k.find(ctx, m, ref)
	if err != nil {
		return NamedRef{}, err
	}
	refused := k.rename.refused
	if refused == "" {
		refused = k.rename.perm.String()
	}
	if err := m.authorizeTo(ctx, k.rename.perm, refused); err != nil {
		return NamedRef{}, err
	}
	if may := k.rename.may; may != nil {
		if err := may(m, ctx, o.id); err != nil {
			return NamedRef{}, err
		}
	}
	id, old := o.id, o.name
	return jobValue[NamedRef](m.job(ctx, actorFrom(ctx), o.pool, "edit "+k.name, "edit "+k.name+" "+old, []string{id},
		func(ctx context.Context, j *jobRun) (any, error) {
			if may := k.rename.may; may != nil {
				if err := may(m, ctx, id); err != nil {
					return nil, err
				}
			}
			err := m.st.Write(ctx, func(q *store.Queries) error { return q.RenameObject(ctx, k.table, id, name, description) })
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
