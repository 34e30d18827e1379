package libvirthost

import (
	"os"
	"testing"
)

// Require lets a test that needs libvirt, QEMU or namespaces run only
// where they are: at the first of missing that is not nil (what the
// machine lacks, from Available, SystemAvailable, guestimage.Available or
// the test's own checks) it skips the test with one loud line, or, in CI
// (CI=true), where .ci/run installs and starts everything, fails it.
func Require(t testing.TB, missing ...error) {
	t.Helper()
	for _, err := range missing {
		if err == nil {
			continue
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("required in CI (.ci/run installs and starts it): %v", err)
		}
		t.Skipf("SKIPPED, the machine lacks what this test needs: %v", err)
	}
}
