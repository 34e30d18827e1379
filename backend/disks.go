package backend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/store"
)

// VirtualDisk is a disk as the operator sees it.
type VirtualDisk struct {
	ID, Name, Description string
	Repository            NamedRef
	SizeMiB               int64
	Sparse                bool
	// Shareable disks may be mapped to several VMs at once (Xen's "w!").
	Shareable bool
	Vm        NamedRef   // the VM it is mapped to, if any: the first, when several
	Slot      int        // its slot in Vm
	Vms       []NamedRef // every VM it is mapped to, the first mapped first
	Path      string     // as the servers see it
	CreatedAt time.Time
}

// NewVirtualDisk describes a disk to create.
type NewVirtualDisk struct {
	Name, Description string
	Repository        Ref
	SizeMiB           int64
	// Sparse makes a sparse image; else every block is allocated now.
	Sparse bool
	// Shareable lets several VMs map the disk.
	Shareable bool
}

func (d VirtualDisk) String() string { return "VirtualDisk " + d.Name }

// diskKind resolves disks; a disk's pool is its repository's.
func (m *Manager) diskKind() kind[store.VirtualDisk] {
	q := m.st.Read()
	return kind[store.VirtualDisk]{"VirtualDisk", q.VirtualDisk, q.VirtualDisksByName, q.VirtualDisks,
		func(x store.VirtualDisk) string { return x.Name }, func(x store.VirtualDisk) string { return x.ID },
		func(x store.VirtualDisk) string {
			r, err := q.Repository(context.Background(), x.RepoID)
			if err != nil {
				return ""
			}
			return r.PoolID
		}}
}

// diskPath is where the servers of the pool see a disk's image.
func diskPath(r store.Repository, diskID string) string {
	return r.MountPoint + "/VirtualDisks/" + diskID + ".img"
}

// CreateVirtualDisk makes a disk image in a repository through a server of
// its pool (create_virtual_disk: sparse, or allocated) and records it.
func (m *Manager) CreateVirtualDisk(ctx context.Context, req NewVirtualDisk) (VirtualDisk, error) {
	name, repo, sizeMiB, sparse := req.Name, req.Repository, req.SizeMiB, req.Sparse
	name, err := ValidateName("VirtualDisk", name)
	if err != nil {
		return VirtualDisk{}, err
	}
	if sizeMiB < VirtualDiskMiB.Min || sizeMiB > VirtualDiskMiB.Max {
		return VirtualDisk{}, errorf(KindInvalidArgument, "size %d MiB is out of range: use 1 MiB to 64 TiB", sizeMiB)
	}
	r, err := m.findRepository(ctx, repo)
	if err != nil {
		return VirtualDisk{}, err
	}
	if err := m.authorize(ctx, PermVMLifecycle); err != nil {
		return VirtualDisk{}, err
	}
	d := store.VirtualDisk{ID: NewID(TypeVirtualDisk), Name: name, RepoID: r.ID, SizeMiB: sizeMiB, Sparse: sparse,
		Shareable: req.Shareable, Description: req.Description, CreatedAt: time.Now()}
	return jobValue[VirtualDisk](m.job(ctx, actorFrom(ctx), r.PoolID, "create VirtualDisk", "create VirtualDisk "+name, nil, func(ctx context.Context, j *jobRun) (any, error) {
		srv, c, err := m.utilityServer(ctx, r.PoolID)
		if errors.Is(err, errNoServer) {
			return nil, errorf(KindInvalidState, "the repository's pool has no running server to create the disk through")
		}
		if err != nil {
			return nil, err
		}
		j.progress(10, "creating the image on "+srv.Name)
		if err := c.CreateVirtualDisk(ctx, r.ID, d.ID, sizeMiB, sparse); err != nil {
			return nil, agentError("create VirtualDisk "+name, srv.Name, err)
		}
		if err := m.st.Write(ctx, func(q *store.Queries) error { return q.InsertVirtualDisk(ctx, d) }); err != nil {
			if derr := c.DeleteVirtualDisk(ctx, r.ID, d.ID); derr != nil {
				m.log.Error("could not remove a disk image after a failed create", "disk", d.ID, "err", derr)
			}
			return nil, &Error{Kind: KindInternal, Msg: "record disk", Cause: err}
		}
		return m.VirtualDisk(ctx, Ref{ID: d.ID})
	}))
}

// VirtualDisks lists the disks that pass f (name, repository, pool).
func (m *Manager) VirtualDisks(ctx context.Context, f Filter) ([]VirtualDisk, error) {
	l, err := m.StreamVirtualDisks(ctx, f)
	return collected(ctx, l, err)
}

// VirtualDisk returns one disk.
func (m *Manager) VirtualDisk(ctx context.Context, ref Ref) (VirtualDisk, error) {
	d, err := resolve(ctx, m, m.diskKind(), ref)
	if err != nil {
		return VirtualDisk{}, err
	}
	return m.diskView(ctx, d)
}

// diskView shows a disk; a repository that is gone shows empty.
func (m *Manager) diskView(ctx context.Context, d store.VirtualDisk) (VirtualDisk, error) {
	r, err := optional(m.st.Read().Repository(ctx, d.RepoID))
	if err != nil {
		return VirtualDisk{}, err
	}
	return m.diskViewIn(ctx, m.st.Read(), d, r)
}

// diskViewIn builds a disk's view when its repository is at hand: a disk
// in no VM (or in ones deleted meanwhile) shows no VM; a store that fails
// fails the view.
func (m *Manager) diskViewIn(ctx context.Context, q *store.Queries, d store.VirtualDisk, r store.Repository) (VirtualDisk, error) {
	v := VirtualDisk{ID: d.ID, Name: d.Name, Description: d.Description, Repository: NamedRef{r.ID, r.Name},
		SizeMiB: d.SizeMiB, Sparse: d.Sparse, Shareable: d.Shareable, Path: diskPath(r, d.ID), CreatedAt: d.CreatedAt}
	maps, err := q.DiskMappingsOfDisk(ctx, d.ID)
	if err != nil {
		return VirtualDisk{}, &Error{Kind: KindInternal, Msg: "read disk mappings", Cause: err}
	}
	for _, mp := range maps {
		vm, err := optional(q.VM(ctx, mp.VMID))
		if err != nil {
			return VirtualDisk{}, err
		}
		if vm.ID == "" {
			continue
		}
		if len(v.Vms) == 0 {
			v.Vm, v.Slot = NamedRef{vm.ID, vm.Name}, mp.Slot
		}
		v.Vms = append(v.Vms, NamedRef{vm.ID, vm.Name})
	}
	return v, nil
}

// DeleteVirtualDisk deletes a disk no VM uses, and its image.
func (m *Manager) DeleteVirtualDisk(ctx context.Context, ref Ref) (VirtualDisk, error) {
	d, err := findFor(ctx, m, m.diskKind(), ref, PermVMLifecycle)
	if err != nil {
		return VirtualDisk{}, err
	}
	view, err := m.diskView(ctx, d)
	if err != nil {
		return VirtualDisk{}, err
	}
	return jobValue[VirtualDisk](m.job(ctx, actorFrom(ctx), m.diskKind().poolOf(d), "delete VirtualDisk", "delete VirtualDisk "+d.Name, []string{d.ID}, func(ctx context.Context, j *jobRun) (any, error) {
		if err := m.diskNotInUse(ctx, d); err != nil {
			return nil, err
		}
		r, err := m.st.Read().Repository(ctx, d.RepoID)
		if err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "read repository", Cause: err}
		}
		srv, c, err := m.utilityServer(ctx, r.PoolID)
		if errors.Is(err, errNoServer) {
			return nil, errorf(KindInvalidState, "the repository's pool has no running server to delete the disk through")
		}
		if err != nil {
			return nil, err
		}
		if err := c.DeleteVirtualDisk(ctx, r.ID, d.ID); err != nil {
			if f, ok := agentapi.AsFault(err); !ok || f.Code != agentapi.FaultNotFound {
				return nil, agentError("delete VirtualDisk "+d.Name, srv.Name, err)
			}
		}
		if err := m.st.Write(ctx, func(q *store.Queries) error { return q.DeleteVirtualDisk(ctx, d.ID) }); err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "delete disk record", Cause: err}
		}
		return view, nil
	}))
}

// diskNotInUse refuses to delete a disk that VMs map, naming them.
func (m *Manager) diskNotInUse(ctx context.Context, d store.VirtualDisk) error {
	maps, err := m.st.Read().DiskMappingsOfDisk(ctx, d.ID)
	if err != nil || len(maps) == 0 {
		return err
	}
	users := make([]string, 0, len(maps))
	for _, mp := range maps {
		vm, err := optional(m.st.Read().VM(ctx, mp.VMID))
		if err != nil {
			return err
		}
		users = append(users, fmt.Sprintf("Vm %s (slot %d)", vm.Name, mp.Slot))
	}
	from := "the VM"
	if len(users) > 1 {
		from = "those VMs"
	}
	return errorf(KindConflict, "VirtualDisk %s is in use by %s; remove it from %s first", d.Name, joinComma(users), from)
}
