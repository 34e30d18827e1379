package host

import (
	"context"
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

// Copies of files (copy_file) [ext: agentapi.ExtTemplates].
var (
	errReflinkUnsupported = errors.New("the file system cannot share blocks")
	errCrossDevice        = errors.New("on different file systems")
)

// copyModesText lists the accepted modes for faults.
func copyModesText() string {
	q := make([]string, len(agentapi.CopyModes))
	for i, m := range agentapi.CopyModes {
		q[i] = fmt.Sprintf("%q", m)
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// copyPath is one end of a copy_file, checked.
type copyPath struct {
	param string // "src" or "dst", for faults
	given string // as the caller gave it, under the repository's mount point
	repo  RepoState
	rel   string // inside the repository: "VirtualDisks/<name>" or "Templates/<id>/<name>"
	real  string // the file in the repository's fs_location
	key   string // its entry in h.diskOps
}

func (p copyPath) repoName() string {
	if p.repo.Alias != "" {
		return p.repo.Alias
	}
	return p.repo.UUID
}

// copyPathLocked checks a path of copy_file: a clean absolute path under
// the mount point of a repository known here, naming a file directly in
// its VirtualDisks/ or in a Templates/<id>/ directory, whose directories
// are real directories (no symbolic link on the way). A src must be a
// regular file, not a link; a dst must not exist (InvalidState). h.mu
// must be held.
func (h *Host) copyPathLocked(param, p string) (copyPath, error) {
	clean, err := checkAbsPath(param, p)
	if err != nil {
		return copyPath{}, err
	}
	if clean != p {
		return copyPath{}, agentapi.Errorf(agentapi.FaultInvalidArgument,
			"%s %q is not a clean path (no '.' element, '//' or trailing '/')", param, p)
	}
	cp := copyPath{param: param, given: p}
	found := false
	for _, r := range h.state.Repositories {
		if tail, ok := strings.CutPrefix(p, r.MountPoint+"/"); ok {
			cp.repo, cp.rel, found = r, tail, true
			break
		}
	}
	if !found {
		return copyPath{}, agentapi.Errorf(agentapi.FaultInvalidArgument,
			"%s %s is not under the mount point of a repository known on this server", param, p)
	}
	parts := strings.Split(cp.rel, "/")
	outside := agentapi.Errorf(agentapi.FaultInvalidArgument,
		"%s %s is not a file of VirtualDisks/ or of a Templates/<id>/ directory of repository %s; copy_file reads and writes only there",
		param, p, cp.repoName())
	switch {
	case len(parts) == 2 && parts[0] == DirDisks:
		cp.key = diskKey(cp.repo.UUID, strings.TrimSuffix(parts[1], DiskExt))
	case len(parts) == 3 && parts[0] == DirTemplates && checkID("template id", parts[1]) == nil:
		cp.key = templateKey(cp.repo.UUID, parts[1])
	default:
		return copyPath{}, outside
	}
	if err := checkID(param+" file name", parts[len(parts)-1]); err != nil {
		return copyPath{}, err
	}
	root, err := filepath.EvalSymlinks(cp.repo.FSLocation)
	if err != nil {
		return copyPath{}, agentapi.Errorf(agentapi.FaultNotFound, "repository %s is not reachable on this server", cp.repoName())
	}
	dir := root
	for _, elem := range parts[:len(parts)-1] {
		dir = filepath.Join(dir, elem)
		fi, err := os.Lstat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return copyPath{}, agentapi.Errorf(agentapi.FaultNotFound,
				"%s %s: directory %s does not exist in repository %s", param, p, strings.TrimPrefix(dir, root+"/"), cp.repoName())
		case err != nil:
			return copyPath{}, agentapi.Errorf(agentapi.FaultInternalError, "%s %s: %v", param, p, err)
		case fi.Mode()&fs.ModeSymlink != 0:
			return copyPath{}, agentapi.Errorf(agentapi.FaultInvalidArgument,
				"%s %s: %s is a symbolic link, which copy_file does not follow", param, p, strings.TrimPrefix(dir, root+"/"))
		case !fi.IsDir():
			return copyPath{}, outside
		}
	}
	cp.real = filepath.Join(dir, parts[len(parts)-1])
	fi, err := os.Lstat(cp.real)
	switch {
	case param == "dst" && err == nil:
		return copyPath{}, agentapi.Errorf(agentapi.FaultInvalidState,
			"dst %s exists already; copy_file never replaces a file: delete it first or choose another name", p)
	case param == "dst" && errors.Is(err, fs.ErrNotExist):
		return cp, nil
	case errors.Is(err, fs.ErrNotExist):
		return copyPath{}, agentapi.Errorf(agentapi.FaultNotFound, "src %s does not exist", p)
	case err != nil:
		return copyPath{}, agentapi.Errorf(agentapi.FaultInternalError, "%s %s: %v", param, p, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return copyPath{}, agentapi.Errorf(agentapi.FaultInvalidArgument,
			"src %s is a symbolic link, which copy_file does not follow", p)
	case !fi.Mode().IsRegular():
		return copyPath{}, agentapi.Errorf(agentapi.FaultInvalidArgument, "src %s is not a regular file", p)
	}
	return cp, nil
}

// CopyFile copies (or, in mode move, renames) the file src to dst, both
// paths as this server sees them (see copyPathLocked), dst new. mode is one
// of agentapi.CopyModes. The copy is written to a hidden temporary file
// beside dst, synced, and linked to dst only when complete; on any failure,
// or when ctx ends (the caller's connection closed), the temporary file is
// removed and nothing is left. A file system without the room is
// InsufficientResources, up front (the data extents of a sparse copy, the
// size of an allocated one) and as it writes. Progress is under
// "copy:<base name of dst>", phase "copying", in bytes. Busy while another
// call writes dst (a copy, a disk being created or imported) or moves src.
func (h *Host) CopyFile(ctx context.Context, src, dst, mode string) error {
	switch mode {
	case agentapi.CopySparse, agentapi.CopyAllocated, agentapi.CopyReflink, agentapi.CopyMove:
	case "":
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "option.mode is missing: give %s", copyModesText())
	default:
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "option.mode %q is not known: give %s", mode, copyModesText())
	}
	h.mu.Lock()
	s, err := h.copyPathLocked("src", src)
	var d copyPath
	if err == nil {
		d, err = h.copyPathLocked("dst", dst)
	}
	if err == nil {
		err = h.copyFreeLocked(s, d, mode)
	}
	if err != nil {
		h.mu.Unlock()
		return err
	}
	progKey := agentapi.ProgressCopy + filepath.Base(d.real)
	h.diskOps[d.key] = progKey
	if mode == agentapi.CopyMove {
		h.diskOps[s.key] = progKey
	}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.diskOps, d.key)
		if mode == agentapi.CopyMove {
			delete(h.diskOps, s.key)
		}
		h.mu.Unlock()
	}()

	if mode == agentapi.CopyMove {
		return moveFile(s, d)
	}
	c := &fileCopy{ctx: ctx, src: s, dst: d, mode: mode, op: h.progress.Start(progKey, agentapi.PhaseCopying, 0)}
	if p, ok := h.drv.(hypervisor.CopyPace); ok {
		c.rate = p.CopyBytesPerSecond()
	}
	err = c.run()
	c.op.Finish(err)
	return err
}

// copyFreeLocked checks that no other call writes dst or src, and, for a
// move, that no domain of this server uses src. h.mu must be held.
func (h *Host) copyFreeLocked(s, d copyPath, mode string) error {
	if op, busy := h.diskOps[d.key]; busy {
		return agentapi.Errorf(agentapi.FaultBusy, "dst %s is being written (%s); wait for it to end", d.given, op)
	}
	if op, busy := h.diskOps[s.key]; busy {
		return agentapi.Errorf(agentapi.FaultBusy, "src %s is being written or moved (%s); wait for it to end", s.given, op)
	}
	if mode != agentapi.CopyMove {
		return nil
	}
	fi, err := os.Stat(s.real)
	if err != nil {
		return agentapi.Errorf(agentapi.FaultInternalError, "src %s: %v", s.given, err)
	}
	if dom, err := h.diskUserLocked(fi); err != nil {
		return err
	} else if dom != nil {
		return agentapi.Errorf(agentapi.FaultInvalidState,
			"src %s is used by VM %s (%s, domid %d); a file in use is not moved: stop the VM or copy it", s.given, dom.VMID, dom.State, dom.DomID)
	}
	return nil
}

// moveFile renames s to d within one file system, never replacing d.
func moveFile(s, d copyPath) error {
	err := renameNoReplace(s.real, d.real)
	switch {
	case err == nil:
		return errors.Join(syncDir(filepath.Dir(d.real)), syncDir(filepath.Dir(s.real)))
	case errors.Is(err, errCrossDevice):
		return agentapi.Errorf(agentapi.FaultInvalidArgument,
			"src %s and dst %s are on different file systems: mode move renames within one; copy (mode sparse or allocated) and delete the source instead", s.given, d.given)
	case errors.Is(err, fs.ErrExist):
		return agentapi.Errorf(agentapi.FaultInvalidState, "dst %s exists already; copy_file never replaces a file", d.given)
	case errors.Is(err, fs.ErrNotExist):
		return agentapi.Errorf(agentapi.FaultNotFound, "src %s does not exist", s.given)
	}
	return agentapi.Errorf(agentapi.FaultInternalError, "move %s to %s: %v", s.given, d.given, err)
}

// linkRename renames by a hard link and an unlink, which fails rather than
// replace newpath.
func linkRename(oldpath, newpath string) error {
	if err := os.Link(oldpath, newpath); err != nil {
		if errors.Is(err, syscall.EXDEV) {
			return errCrossDevice
		}
		return err
	}
	return os.Remove(oldpath)
}

// syncDir makes the names of dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// fileCopy is one copy_file of mode sparse, allocated or reflink on its
// way.
type fileCopy struct {
	ctx      context.Context
	src, dst copyPath
	mode     string
	op       hypervisor.Operation
	// kernelBytes is how much of the data copy_file_range copied (the
	// rest went through a buffer), once fill returned.
	kernelBytes int64
	// rate is the most the copy moves per second (a simulated host's
	// copy_mib_per_s); 0 is no limit.
	rate int64
}

func (c *fileCopy) run() error {
	in, err := os.OpenFile(c.src.real, os.O_RDONLY|openNoFollow, 0)
	if err != nil {
		return c.fail(err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return c.fail(err)
	}
	if !fi.Mode().IsRegular() {
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "src %s is not a regular file", c.src.given)
	}
	size := fi.Size()
	var extents [][2]int64
	var need int64 // bytes the copy takes on dst's file system
	if c.mode != agentapi.CopyReflink {
		if extents, err = dataExtents(in, size); err != nil {
			return c.fail(err)
		}
	}
	switch c.mode {
	case agentapi.CopySparse:
		for _, e := range extents {
			need += e[1] - e[0]
		}
	case agentapi.CopyAllocated:
		need = size
	}
	dir := filepath.Dir(c.dst.real)
	if free, err := freeBytes(dir); err == nil && free < need {
		return agentapi.Errorf(agentapi.FaultInsufficientResources,
			"repository %s has %d MiB free; the %s copy of %s needs %d MiB", c.dst.repoName(), free>>20, c.mode, c.src.given, (need+1<<20-1)>>20)
	}
	total := need
	if c.mode == agentapi.CopyReflink {
		total = size
	}
	c.op.SetRound(agentapi.PhaseCopying, 0, total)

	tmp, err := os.CreateTemp(dir, "."+filepath.Base(c.dst.real)+".tmp-*")
	if err != nil {
		return c.fail(err)
	}
	defer os.Remove(tmp.Name()) // after the link, only the extra name goes
	err = c.fill(tmp, in, size, extents)
	if err == nil {
		err = tmp.Chmod(fi.Mode().Perm())
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = c.ctx.Err() // a call that ended meanwhile leaves nothing
	}
	if err != nil {
		return c.fail(err)
	}
	// A link, not a rename, so that a file another server of the pool
	// made meanwhile is not replaced.
	if err := os.Link(tmp.Name(), c.dst.real); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return agentapi.Errorf(agentapi.FaultInvalidState, "dst %s exists already; copy_file never replaces a file", c.dst.given)
		}
		return c.fail(err)
	}
	if err := syncDir(dir); err != nil {
		return c.fail(err)
	}
	c.op.SetRound(agentapi.PhaseCopying, total, total)
	return nil
}

// fail turns an error of the copy into a fault.
func (c *fileCopy) fail(err error) error {
	switch {
	case isFault(err):
		return err
	case c.ctx.Err() != nil:
		return agentapi.Errorf(agentapi.FaultInternalError,
			"copy of %s to %s stopped: %v; nothing was left", c.src.given, c.dst.given, context.Cause(c.ctx))
	case errors.Is(err, errReflinkUnsupported):
		return agentapi.Errorf(agentapi.FaultInvalidState,
			"the file system of repository %s cannot share blocks (reflink): use sparse or allocated", c.dst.repoName())
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return agentapi.Errorf(agentapi.FaultInsufficientResources,
			"repository %s is full: the %s copy of %s to %s does not fit; nothing was left", c.dst.repoName(), c.mode, c.src.given, c.dst.given)
	}
	return agentapi.Errorf(agentapi.FaultInternalError, "copy %s to %s: %v", c.src.given, c.dst.given, err)
}
