// Package fulldisk gives a test a small filesystem of its own that it can
// fill to the last byte and free again: a tmpfs mounted on a temporary
// directory (root only), so that what a full disk does to the manager is
// tested by causing it.
package fulldisk

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Disk is a mounted tmpfs of a test, unmounted when the test ends.
type Disk struct {
	// Dir is the filesystem's root: the test puts its files there.
	Dir string
	t   testing.TB
}

// fillerName is the file Fill writes and Free removes.
const fillerName = "filler"

// Mount mounts a tmpfs of sizeMiB MiB on a temporary directory and
// unmounts it when the test ends (after the cleanups registered later, so
// that what the test opened there is closed first). Without root or
// mount(8) it skips the test with one loud line, or, in CI (CI=true, where
// .ci/run runs the tests as root), fails it.
func Mount(t testing.TB, sizeMiB int) *Disk {
	t.Helper()
	if err := available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("required in CI (.ci/run runs the tests as root): %v", err)
		}
		t.Skipf("SKIPPED, the machine lacks what this test needs: %v", err)
	}
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm,mode=0700", sizeMiB), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("mount a tmpfs of %d MiB on %s: %v: %s", sizeMiB, dir, err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("unmount the tmpfs on %s: %v: %s", dir, err, strings.TrimSpace(string(out)))
		}
	})
	return &Disk{Dir: dir, t: t}
}

// available says why a tmpfs cannot be mounted here, or nil.
func available() error {
	if os.Geteuid() != 0 {
		return errors.New("a full disk is made by mounting a small tmpfs: needs root")
	}
	if _, err := exec.LookPath("mount"); err != nil {
		return fmt.Errorf("a full disk is made by mounting a small tmpfs: %w", err)
	}
	return nil
}

// Fill writes a file until the filesystem has no byte left (ENOSPC).
func (d *Disk) Fill() {
	d.t.Helper()
	f, err := os.OpenFile(filepath.Join(d.Dir, fillerName), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		d.t.Fatalf("fill %s: %v", d.Dir, err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for size := len(buf); size > 0; {
		if _, err := f.Write(buf[:size]); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				d.t.Fatalf("fill %s: %v", d.Dir, err)
			}
			size /= 2 // the last blocks, down to the last byte
		}
	}
}

// Free removes what Fill wrote.
func (d *Disk) Free() {
	d.t.Helper()
	if err := os.Remove(filepath.Join(d.Dir, fillerName)); err != nil {
		d.t.Fatalf("free %s: %v", d.Dir, err)
	}
}
