package testkit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// MountTmpfs mounts a tmpfs of sizeMiB MiB on a temporary directory, for
// a test of what a full, or a small, file system does to the agent, and
// unmounts it when the test ends (after the cleanups registered later, so
// that what the test opened there is closed first); it returns the
// directory. Without root or mount(8) it skips the test with one loud
// line, or, in CI (CI=true, where the tests run as root), fails it.
func MountTmpfs(t testing.TB, sizeMiB int) string {
	t.Helper()
	var why error
	if os.Geteuid() != 0 {
		why = errors.New("a small file system is a tmpfs mounted for the test: needs root")
	} else if _, err := exec.LookPath("mount"); err != nil {
		why = fmt.Errorf("a small file system is a tmpfs mounted for the test: %w", err)
	}
	if why != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("required in CI: %v", why)
		}
		t.Skipf("SKIPPED, the machine lacks what this test needs: %v", why)
	}
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm,mode=0755", sizeMiB), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("mount a tmpfs of %d MiB on %s: %v: %s", sizeMiB, dir, err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("unmount the tmpfs on %s: %v: %s", dir, err, strings.TrimSpace(string(out)))
		}
	})
	return dir
}
