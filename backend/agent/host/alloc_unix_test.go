//go:build unix

package host

import (
	"os"
	"syscall"
	"testing"
)

// allocatedMiB is the space a file really takes.
func allocatedMiB(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	mustOK(t, err)
	return fi.Sys().(*syscall.Stat_t).Blocks * 512 >> 20
}
