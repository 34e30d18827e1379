package backend_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
)

// edit VirtualDisk size= grows the image in the repository and the record;
// shrinking is refused and changes nothing; the same size is no change.
func TestResizeVirtualDisk(t *testing.T) {
	c := managertest.Open(t, managertest.Options{Agents: 1})
	c.Discover()
	c.CreatePool(managertest.Pool)
	dir := filepath.Join(t.TempDir(), "repo")
	c.CreateRepository(managertest.Repo, managertest.Pool, dir)
	ctx := c.Admin()
	m := c.Manager
	d, err := m.CreateVirtualDisk(ctx, backend.NewVirtualDisk{Name: "d1", Repository: backend.Ref{Name: managertest.Repo}, SizeMiB: 1024, Sparse: true})
	if err != nil {
		t.Fatal(err)
	}
	image := filepath.Join(dir, "VirtualDisks", d.ID+".img")
	size := func() int64 {
		t.Helper()
		fi, err := os.Stat(image)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	got, err := m.ResizeVirtualDisk(ctx, backend.Ref{Name: "d1"}, 3072)
	if err != nil || got.SizeMiB != 3072 || size() != 3072<<20 {
		t.Fatalf("grow to 3 GiB: %+v, %v; image %d bytes", got, err, size())
	}
	_, err = m.ResizeVirtualDisk(ctx, backend.Ref{Name: "d1"}, 2048)
	if err == nil || !strings.Contains(err.Error(), "must be at least 3072 MiB (3 GiB)") {
		t.Fatalf("shrink = %v, want a refusal naming the least size", err)
	}
	if d, err := m.VirtualDisk(ctx, backend.Ref{Name: "d1"}); err != nil || d.SizeMiB != 3072 || size() != 3072<<20 {
		t.Fatalf("after a refused shrink: %+v, %v; image %d bytes", d, err, size())
	}
	if d, err := m.ResizeVirtualDisk(ctx, backend.Ref{Name: "d1"}, 3072); err != nil || d.SizeMiB != 3072 {
		t.Fatalf("the same size: %+v, %v", d, err)
	}
	if _, err := m.ResizeVirtualDisk(ctx, backend.Ref{Name: "nope"}, 3072); err == nil || backend.KindOf(err) != backend.KindNotFound {
		t.Fatalf("resize of an unknown disk = %v", err)
	}
}
