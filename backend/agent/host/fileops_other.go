//go:build !linux

package host

import "os"

// openNoFollow is 0 where the platform has no O_NOFOLLOW here: the
// Lstat checks before the open are all there is.
const openNoFollow = 0

// dataExtents is the whole file where SEEK_DATA is not known.
func dataExtents(_ *os.File, size int64) ([][2]int64, error) {
	if size == 0 {
		return nil, nil
	}
	return [][2]int64{{0, size}}, nil
}

// cloneFile is never possible here.
func cloneFile(_, _ *os.File) error { return errReflinkUnsupported }

// renameNoReplace links and unlinks.
func renameNoReplace(oldpath, newpath string) error { return linkRename(oldpath, newpath) }

// copyFileRange is never possible here: copies go through a buffer.
func copyFileRange(_, _ *os.File, _, _ int64) (int64, error) { return 0, errKernelCopyUnsupported }

// mayShareBlocks is true: nothing is known of the file system here.
func mayShareBlocks(*os.File) bool { return true }
