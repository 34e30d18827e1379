package host

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agentapi"
)

// Virtual disks.
const (
	// DiskExt is the extension of a virtual disk image in VirtualDisks.
	DiskExt = ".img"
	// MaxDiskMiB bounds a virtual disk: 64 TiB.
	MaxDiskMiB = 64 << 20
	// diskChunk is how much a non-sparse disk is written (and its progress
	// advanced) at a time.
	diskChunk = 1 << 20
)

func diskKey(repoID, diskID string) string { return repoID + "/" + diskID }

// diskPathLocked checks the ids and returns the disk image's path as this
// host sees it. h.mu must be held.
func (h *Host) diskPathLocked(repoID, diskID string) (RepoState, string, error) {
	r, err := h.repoLocked(repoID)
	if err != nil {
		return RepoState{}, "", err
	}
	if err := checkID("disk id", diskID); err != nil {
		return RepoState{}, "", err
	}
	return r, filepath.Join(h.mountPath(r), DirDisks, diskID+DiskExt), nil
}

// CreateVirtualDisk creates VirtualDisks/<disk_id>.img of sizeMiB: a sparse
// file when sparse, else a file whose every block is written with zeros
// (progress under "disk:<disk_id>"), refused with InsufficientResources
// when the repository's file system has not the room. An existing disk is
// InvalidState, one being created Busy. The image appears under its name
// only when complete.
func (h *Host) CreateVirtualDisk(repoID, diskID string, sizeMiB int64, sparse bool) error {
	if sizeMiB <= 0 || sizeMiB > MaxDiskMiB {
		return agentapi.Errorf(agentapi.FaultInvalidArgument,
			"disk size %d MiB is out of range: use 1 to %d MiB", sizeMiB, int64(MaxDiskMiB))
	}
	h.mu.Lock()
	r, path, err := h.diskPathLocked(repoID, diskID)
	if err != nil {
		h.mu.Unlock()
		return err
	}
	key := diskKey(repoID, diskID)
	if op, busy := h.diskOps[key]; busy {
		h.mu.Unlock()
		return agentapi.Errorf(agentapi.FaultBusy, "disk %s of repository %s is being created or imported (%s); wait for it to end", diskID, repoID, op)
	}
	if _, err := os.Lstat(path); err == nil {
		h.mu.Unlock()
		return errDiskExists(repoID, diskID)
	}
	progKey := agentapi.ProgressDisk + diskID
	h.diskOps[key] = progKey
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.diskOps, key)
		h.mu.Unlock()
	}()

	if sparse {
		return createDiskFile(path, func(f *os.File) error { return f.Truncate(sizeMiB << 20) }, repoID, diskID)
	}
	if _, free, err := diskSpaceMiB(filepath.Dir(path)); err == nil && free < sizeMiB {
		return agentapi.Errorf(agentapi.FaultInsufficientResources,
			"repository %s (%s) has %d MiB free, a non-sparse disk of %d MiB does not fit; create it sparse or free space", repoID, r.FSLocation, free, sizeMiB)
	}
	op := h.progress.Start(progKey, "writing zeros", sizeMiB)
	err = createDiskFile(path, func(f *os.File) error {
		zeros := make([]byte, diskChunk)
		for i := range sizeMiB {
			if _, err := f.Write(zeros); err != nil {
				return err
			}
			op.Set("writing zeros", i+1)
		}
		op.Set("syncing", sizeMiB)
		return f.Sync()
	}, repoID, diskID)
	op.Finish(err)
	return err
}

// createDiskFile fills a temporary file beside path with fill, then links
// it to path, which must not exist by then.
func createDiskFile(path string, fill func(*os.File) error, repoID, diskID string) error {
	fail := func(err error) error {
		if errors.Is(err, syscall.ENOSPC) {
			return agentapi.Errorf(agentapi.FaultInsufficientResources, "repository %s is full: disk %s does not fit", repoID, diskID)
		}
		return agentapi.Errorf(agentapi.FaultInternalError, "create disk %s in repository %s: %v", diskID, repoID, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fail(err)
	}
	defer os.Remove(tmp.Name())
	if err := fill(tmp); err != nil {
		tmp.Close()
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	// A link, not a rename, so that a disk another server of the pool
	// created meanwhile is not replaced.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return errDiskExists(repoID, diskID)
		}
		return fail(err)
	}
	return nil
}

func errDiskExists(repoID, diskID string) error {
	return agentapi.Errorf(agentapi.FaultInvalidState,
		"disk %s already exists in repository %s; delete_virtual_disk it first or use another id", diskID, repoID)
}

// DeleteVirtualDisk removes VirtualDisks/<disk_id>.img or, when there is
// no such disk, ISOs/<disk_id>.iso: an extension of the protocol, by which
// the manager deletes the ISOs it imported (import_virtual_disk, kind iso,
// which refuses the id of a disk). InvalidState while the vm.cfg of a domain of
// this host (in any state) names the file, as a disk or as a cdrom
// ("file:<path>,hdc:cdrom,r"); Busy while it is being created or imported;
// NotFound when neither file exists.
func (h *Host) DeleteVirtualDisk(repoID, diskID string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, path, err := h.diskPathLocked(repoID, diskID)
	if err != nil {
		return err
	}
	if op, busy := h.diskOps[diskKey(repoID, diskID)]; busy {
		return agentapi.Errorf(agentapi.FaultBusy, "disk %s of repository %s is being created or imported (%s); wait for it to end", diskID, repoID, op)
	}
	what := "disk"
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		isoPath := filepath.Join(h.mountPath(r), DirISOs, diskID+ISOExt)
		if isoFI, isoErr := os.Stat(isoPath); !errors.Is(isoErr, fs.ErrNotExist) {
			what, path, fi, err = "ISO", isoPath, isoFI, isoErr
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return agentapi.Errorf(agentapi.FaultNotFound, "disk %s not found in repository %s (nor an ISO of that id)", diskID, repoID)
	}
	if err != nil {
		return agentapi.Errorf(agentapi.FaultInternalError, "%s %s of repository %s: %v", what, diskID, repoID, err)
	}
	if d, err := h.diskUserLocked(fi); err != nil {
		return err
	} else if d != nil {
		return agentapi.Errorf(agentapi.FaultInvalidState,
			"%s %s of repository %s is used by VM %s (%s, domid %d); stop the VM or take the %s out of its vm.cfg first",
			what, diskID, repoID, d.VMID, d.State, d.DomID, what)
	}
	if err := os.Remove(path); err != nil {
		return agentapi.Errorf(agentapi.FaultInternalError, "remove %s %s of repository %s: %v", what, diskID, repoID, err)
	}
	return nil
}

// diskUserLocked returns a domain of this host whose vm.cfg names the file
// fi describes, nil when none does. Paths are compared as files, so that a
// mount point path and an fs_location path of one image match. h.mu must be
// held.
func (h *Host) diskUserLocked(fi os.FileInfo) (*hypervisor.Domain, error) {
	doms, err := h.drv.DomainVMs()
	if err != nil {
		return nil, err
	}
	for _, d := range doms {
		r, ok := h.state.Repositories[d.RepoID]
		if !ok {
			continue // its repository is gone here: its vm.cfg cannot be read
		}
		params, err := readVMConfig(d.RepoID, d.VMID, filepath.Join(h.mountPath(r), DirVMs, d.VMID))
		if err != nil {
			if f, ok := agentapi.AsFault(err); ok && f.Code == agentapi.FaultNotFound {
				continue
			}
			return nil, agentapi.Errorf(agentapi.FaultInternalError,
				"cannot tell whether VM %s uses the disk: %v", d.VMID, err)
		}
		for _, entry := range diskEntries(params) {
			p := diskEntryPath(entry)
			if p == "" {
				continue
			}
			if other, err := h.statDiskPath(p); err == nil && os.SameFile(fi, other) {
				return &d, nil
			}
		}
	}
	return nil, nil
}

// DeleteRepository forgets the repository here and removes its mount link.
// With erase it also removes .ovsrepo and the empty layout directories
// (not fs_location itself, which may be a shared export), refusing with
// InvalidState while the repository holds VMs, disks, ISOs, templates or
// other files. InvalidState while a domain of the repository is on this
// server, Busy while a disk is being created or anything imported in it.
func (h *Host) DeleteRepository(repoID string, erase bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, err := h.repoLocked(repoID)
	if err != nil {
		return err
	}
	if ha := h.state.HA; ha != nil && ha.RepoUUID == repoID {
		return agentapi.Errorf(agentapi.FaultInvalidState,
			"repository %s holds this server's HA leases of pool %s; ha_disable first", repoID, ha.PoolUUID)
	}
	doms, err := h.drv.DomainVMs()
	if err != nil {
		return err
	}
	for _, d := range doms {
		if d.RepoID == repoID {
			return agentapi.Errorf(agentapi.FaultInvalidState,
				"VM %s of repository %s is %s on this server (domid %d); stop it first", d.VMID, repoID, d.State, d.DomID)
		}
	}
	for key, op := range h.diskOps {
		if strings.HasPrefix(key, repoID+"/") {
			return agentapi.Errorf(agentapi.FaultBusy, "repository %s is busy (%s); wait for it to end", repoID, op)
		}
	}
	if erase {
		if err := eraseRepository(r); err != nil {
			return err
		}
	}
	path := h.mountPath(r)
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if err := os.Remove(path); err != nil {
			return agentapi.Errorf(agentapi.FaultInternalError, "unmount repository %s from %s: %v", repoID, r.MountPoint, err)
		}
	}
	old := h.state
	h.state.Repositories = make(map[string]RepoState, len(old.Repositories))
	for id, other := range old.Repositories {
		if id != repoID {
			h.state.Repositories[id] = other
		}
	}
	return h.commitLocked(old)
}

// eraseRepository removes .ovsrepo and the layout directories of r, which
// must be empty.
func eraseRepository(r RepoState) error {
	var held []string
	for _, dir := range repoDirs {
		entries, err := os.ReadDir(filepath.Join(r.FSLocation, dir))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return agentapi.Errorf(agentapi.FaultInternalError, "read repository %s: %v", r.UUID, err)
		}
		if len(entries) > 0 {
			held = append(held, fmt.Sprintf("%d entries in %s", len(entries), dir))
		}
	}
	if len(held) > 0 {
		return agentapi.Errorf(agentapi.FaultInvalidState,
			"repository %s still holds %s; delete them first, or delete the repository without erase", r.UUID, strings.Join(held, ", "))
	}
	if err := os.Remove(filepath.Join(r.FSLocation, RepoMarker)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return agentapi.Errorf(agentapi.FaultInternalError, "erase repository %s: %v", r.UUID, err)
	}
	for _, dir := range repoDirs {
		if err := os.Remove(filepath.Join(r.FSLocation, dir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return agentapi.Errorf(agentapi.FaultInternalError, "erase repository %s: %v", r.UUID, err)
		}
	}
	return nil
}

// ResizeVirtualDisk grows VirtualDisks/<disk_id>.img to sizeMiB [ext:
// agentapi.ExtTemplates]: the file is truncated up, so the growth is
// sparse and takes no room until the guest writes there. A smaller size is
// InvalidArgument (shrinking loses data), the same size a success that
// changes nothing. A size the file system cannot hold is
// InsufficientResources. Allowed while a domain uses the disk, whose
// guest sees the new size at its next start (or sooner, where its
// hypervisor notices the file grew). Busy while the disk is being created,
// imported or copied to.
func (h *Host) ResizeVirtualDisk(repoID, diskID string, sizeMiB int64) error {
	if sizeMiB <= 0 || sizeMiB > MaxDiskMiB {
		return agentapi.Errorf(agentapi.FaultInvalidArgument,
			"disk size %d MiB is out of range: use 1 to %d MiB", sizeMiB, int64(MaxDiskMiB))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	r, path, err := h.diskPathLocked(repoID, diskID)
	if err != nil {
		return err
	}
	if op, busy := h.diskOps[diskKey(repoID, diskID)]; busy {
		return agentapi.Errorf(agentapi.FaultBusy, "disk %s of repository %s is being written (%s); wait for it to end", diskID, repoID, op)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|openNoFollow, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return agentapi.Errorf(agentapi.FaultNotFound, "disk %s not found in repository %s", diskID, repoID)
	}
	if err != nil {
		return agentapi.Errorf(agentapi.FaultInvalidState, "disk %s of repository %s cannot be opened to resize it: %v", diskID, repoID, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return agentapi.Errorf(agentapi.FaultInternalError, "disk %s of repository %s: %v", diskID, repoID, err)
	}
	if !fi.Mode().IsRegular() {
		return agentapi.Errorf(agentapi.FaultInvalidState, "disk %s of repository %s is not a regular file", diskID, repoID)
	}
	size := sizeMiB << 20
	switch {
	case size < fi.Size():
		return agentapi.Errorf(agentapi.FaultInvalidArgument,
			"shrinking a disk loses data: the size of disk %s must be at least %d MiB, its size now", diskID, (fi.Size()+1<<20-1)>>20)
	case size == fi.Size():
		return nil
	}
	if err := f.Truncate(size); err != nil {
		if errors.Is(err, syscall.EFBIG) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
			return agentapi.Errorf(agentapi.FaultInsufficientResources,
				"disk %s cannot grow to %d MiB in repository %s (%s): its file system does not hold a file that large", diskID, sizeMiB, repoID, r.FSLocation)
		}
		return agentapi.Errorf(agentapi.FaultInternalError, "resize disk %s of repository %s: %v", diskID, repoID, err)
	}
	if err := f.Sync(); err != nil {
		return agentapi.Errorf(agentapi.FaultInternalError, "resize disk %s of repository %s: %v", diskID, repoID, err)
	}
	return nil
}
