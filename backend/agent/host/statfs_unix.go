//go:build unix

package host

import "syscall"

// diskSpaceMiB returns the total and available MiB of the file system that
// holds path.
func diskSpaceMiB(path string) (total, free int64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	bsize := int64(st.Bsize)
	return int64(st.Blocks) * bsize >> 20, int64(st.Bavail) * bsize >> 20, nil
}

// freeBytes returns the bytes available to the agent on the file system
// that holds path.
func freeBytes(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
