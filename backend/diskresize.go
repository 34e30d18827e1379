package backend

import (
	"context"

	"xenmanager/store"
)

// ResizeVirtualDisk grows a disk to sizeMiB (edit VirtualDisk size=): the
// image grows sparse on the repository, through a utility server whose
// agent resizes disks (the templates extension). Shrinking is refused,
// since the guest's data past the new end would be lost; the same size
// changes nothing. A disk in a running VM may grow: the guest sees the new
// size when it next starts (or rescans, where it can).
func (m *Manager) ResizeVirtualDisk(ctx context.Context, ref Ref, sizeMiB int64) (VirtualDisk, error) {
	d, err := findFor(ctx, m, m.diskKind(), ref, PermVMLifecycle)
	if err != nil {
		return VirtualDisk{}, err
	}
	if sizeMiB < VirtualDiskMiB.Min || sizeMiB > VirtualDiskMiB.Max {
		return VirtualDisk{}, errorf(KindInvalidArgument, "size %d MiB is out of range: use 1 MiB to 64 TiB", sizeMiB)
	}
	return jobValue[VirtualDisk](m.job(ctx, actorFrom(ctx), m.diskKind().poolOf(d), "edit VirtualDisk", "resize VirtualDisk "+d.Name, []string{d.ID},
		func(ctx context.Context, j *jobRun) (any, error) {
			cur, err := m.st.Read().VirtualDisk(ctx, d.ID)
			if err != nil {
				return nil, &Error{Kind: KindInternal, Msg: "read disk", Cause: err}
			}
			if sizeMiB < cur.SizeMiB {
				return nil, errorf(KindInvalidArgument, "VirtualDisk %s is %d MiB: shrinking a disk loses the data past its new end, so the size must be at least %d MiB (%d GiB)",
					cur.Name, cur.SizeMiB, cur.SizeMiB, (cur.SizeMiB+1023)/1024)
			}
			if sizeMiB == cur.SizeMiB {
				return m.VirtualDisk(ctx, Ref{ID: d.ID})
			}
			r, err := m.st.Read().Repository(ctx, cur.RepoID)
			if err != nil {
				return nil, &Error{Kind: KindInternal, Msg: "read repository", Cause: err}
			}
			srv, c, err := m.templateServer(ctx, r.PoolID, "resize VirtualDisk "+cur.Name)
			if err != nil {
				return nil, err
			}
			j.progress(30, "growing the image on "+srv.Name)
			if err := c.ResizeVirtualDisk(ctx, r.ID, d.ID, sizeMiB); err != nil {
				return nil, agentError("resize VirtualDisk "+cur.Name, srv.Name, err)
			}
			if err := m.st.Write(ctx, func(q *store.Queries) error { return q.SetVirtualDiskSize(ctx, d.ID, sizeMiB) }); err != nil {
				return nil, &Error{Kind: KindInternal, Msg: "record the disk's size", Cause: err}
			}
			return m.VirtualDisk(ctx, Ref{ID: d.ID})
		}))
}
