package backend

import (
	"context"
	"fmt"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/store"
)

// DiskCloneRequest is clone VirtualDisk: the disk, the copy's name, where
// it goes (the disk's own repository when empty, a repository of the same
// pool otherwise) and how (a clone type; SPARSE_COPY when empty).
type DiskCloneRequest struct {
	Source     Ref
	DestName   string
	Repository Ref
	CloneType  string
}

// CloneVirtualDisk copies a disk into a new disk (copy_file on a utility
// server whose agent copies files), recorded when the copy is complete; a
// copy that fails or is aborted leaves no file and no record. A disk that a
// running VM uses is refused: its copy would not be consistent.
func (m *Manager) CloneVirtualDisk(ctx context.Context, req DiskCloneRequest) (VirtualDisk, error) {
	name, err := ValidateName("VirtualDisk", req.DestName)
	if err != nil {
		return VirtualDisk{}, err
	}
	cloneType := req.CloneType
	if cloneType == "" {
		cloneType = CloneSparseCopy
	}
	mode, ok := copyModes[cloneType]
	if !ok {
		return VirtualDisk{}, errorf(KindInvalidArgument, "cloneType %s is not one of %s", cloneType, joinOr(CloneTypes))
	}
	d, err := findFor(ctx, m, m.diskKind(), req.Source, PermVMLifecycle)
	if err != nil {
		return VirtualDisk{}, err
	}
	src, err := m.st.Read().Repository(ctx, d.RepoID)
	if err != nil {
		return VirtualDisk{}, &Error{Kind: KindInternal, Msg: "read repository", Cause: err}
	}
	dst := src
	if req.Repository != (Ref{}) {
		if dst, err = m.findRepository(ctx, req.Repository); err != nil {
			return VirtualDisk{}, err
		}
		if dst.PoolID != src.PoolID {
			return VirtualDisk{}, errorf(KindInvalidArgument, "Repository %s is not in the pool of VirtualDisk %s's repository %s: a disk is copied within its pool", dst.Name, d.Name, src.Name)
		}
	}
	nd := store.VirtualDisk{ID: NewID(TypeVirtualDisk), Name: name, RepoID: dst.ID, SizeMiB: d.SizeMiB, Sparse: mode != agentapi.CopyAllocated,
		Shareable: d.Shareable, Description: d.Description, CreatedAt: time.Now()}
	summary := fmt.Sprintf("clone VirtualDisk %s to %s", d.Name, name)
	return jobValue[VirtualDisk](m.job(ctx, actorFrom(ctx), src.PoolID, "clone VirtualDisk", summary, []string{d.ID}, func(ctx context.Context, j *jobRun) (any, error) {
		if err := m.diskNotRunning(ctx, d); err != nil {
			return nil, err
		}
		srv, c, err := m.templateServer(ctx, src.PoolID, summary)
		if err != nil {
			return nil, err
		}
		lc, err := m.longClient(srv)
		if err != nil {
			return nil, err
		}
		defer lc.Close()
		step := "copying on " + srv.Name
		key := agentapi.ProgressCopy + nd.ID + ".img"
		stop := followProgress(ctx, j, c, key, step, 5, 95)
		err = lc.CopyFile(ctx, diskPath(src, d.ID), diskPath(dst, nd.ID), agentapi.CopyOption{Mode: mode})
		stop()
		if err != nil {
			return nil, copyError(summary, srv.Name, planDisk{mode: mode}, err)
		}
		if err := m.st.Write(ctx, func(q *store.Queries) error { return q.InsertVirtualDisk(ctx, nd) }); err != nil {
			if derr := notFoundIsGone(c.DeleteVirtualDisk(context.WithoutCancel(ctx), dst.ID, nd.ID)); derr != nil {
				m.log.Error("could not remove a disk copy after its record failed", "disk", nd.ID, "err", derr)
			}
			return nil, &Error{Kind: KindInternal, Msg: "record disk", Cause: err}
		}
		return m.VirtualDisk(ctx, Ref{ID: nd.ID})
	}))
}

// diskNotRunning refuses a disk that a running (or paused) VM uses.
func (m *Manager) diskNotRunning(ctx context.Context, d store.VirtualDisk) error {
	maps, err := m.st.Read().DiskMappingsOfDisk(ctx, d.ID)
	if err != nil {
		return &Error{Kind: KindInternal, Msg: "read disk mappings", Cause: err}
	}
	for _, mp := range maps {
		vm, err := optional(m.st.Read().VM(ctx, mp.VMID))
		if err != nil {
			return err
		}
		if vm.ID != "" && vm.Status != VMStopped {
			return errorf(KindInvalidState, "VirtualDisk %s is in use by Vm %s, which is %s: a copy of a disk a guest writes is not consistent; stop the VM first", d.Name, vm.Name, vm.Status)
		}
	}
	return nil
}
