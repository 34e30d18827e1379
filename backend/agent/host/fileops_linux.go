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
