package libvirthost

import (
	"context"
	"os"
	"testing"
	"time"

	"xenmanager/backend/agent/libvirt/guestimage"
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

// RequireGuestImage is Require for a test that boots the guest image:
// with what else it needs (missing), the image's build tools must be
// there; then it builds or reuses the image (up to 10 minutes).
func RequireGuestImage(t testing.TB, missing ...error) guestimage.Image {
	t.Helper()
	Require(t, append(missing, guestimage.Available())...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	img, err := guestimage.Ensure(ctx)
	if err != nil {
		t.Fatalf("the guest image: %v", err)
	}
	return img
}
