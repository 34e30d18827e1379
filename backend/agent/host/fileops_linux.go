//go:build linux

package host

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// openNoFollow is the flag that makes open fail on a symbolic link.
const openNoFollow = unix.O_NOFOLLOW

// dataExtents returns the [start, end) ranges of f that hold data, found
// with SEEK_DATA and SEEK_HOLE; the whole file as one range where the file
// system cannot tell.
func dataExtents(f *os.File, size int64) ([][2]int64, error) {
	fd := int(f.Fd())
	var out [][2]int64
	for off := int64(0); off < size; {
		start, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // no data after off
		}
		if errors.Is(err, unix.EINVAL) && off == 0 {
			return [][2]int64{{0, size}}, nil // no SEEK_DATA here
		}
		if err != nil {
			return nil, err
		}
		end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
		if err != nil {
			return nil, err
		}
		end = min(end, size)
		if end > start {
			out = append(out, [2]int64{start, end})
		}
		off = end
	}
	return out, nil
}

// cloneFile makes dst share src's blocks (FICLONE); errReflinkUnsupported
// when their file system cannot.
func cloneFile(dst, src *os.File) error {
	err := unix.IoctlFileClone(int(dst.Fd()), int(src.Fd()))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EXDEV), errors.Is(err, unix.EINVAL),
		errors.Is(err, unix.ENOTTY), errors.Is(err, unix.ENOSYS):
		return errReflinkUnsupported
	}
	return err
}

// renameNoReplace renames oldpath to newpath, failing with fs.ErrExist
// when newpath exists, never replacing it; errCrossDevice when the two are
// on different file systems.
func renameNoReplace(oldpath, newpath string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	switch {
	case errors.Is(err, unix.EXDEV):
		return errCrossDevice
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS):
		return linkRename(oldpath, newpath) // a file system without RENAME_NOREPLACE
	}
	return err
}

// copyFileRange copies up to n bytes at off of in to the same offset of
// out in the kernel (copy_file_range(2)), neither file's offset moved, and
// returns how many it copied: 0 at the end of in.
// errKernelCopyUnsupported when the kernel cannot copy between the two
// (another file system, a file system or kernel without it, a seccomp
// filter): nothing was copied then.
func copyFileRange(out, in *os.File, off, n int64) (int64, error) {
	for {
		roff, woff := off, off
		k, err := unix.CopyFileRange(int(in.Fd()), &roff, int(out.Fd()), &woff, int(min(n, 1<<30)), 0)
		switch {
		case err == nil:
			return int64(k), nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EXDEV), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP),
			errors.Is(err, unix.EINVAL), errors.Is(err, unix.EPERM), errors.Is(err, unix.EBADF),
			errors.Is(err, unix.ETXTBSY):
			return 0, errKernelCopyUnsupported
		}
		return 0, err
	}
}

// mayShareBlocks tells whether the kernel may make a copy into f share
// blocks with its source rather than write its own (copy_file_range on
// Btrfs, XFS or OCFS2 shares them, an NFS server may): true but on the
// file systems known not to (ext2/3/4 and tmpfs).
func mayShareBlocks(f *os.File) bool {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return true
	}
	switch st.Type {
	case unix.EXT4_SUPER_MAGIC, unix.TMPFS_MAGIC:
		return false
	}
	return true
}
