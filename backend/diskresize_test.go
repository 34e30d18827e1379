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
	c, dir := diskFleet(t)
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

// clone VirtualDisk copies a disk's image into a new disk of the same size,
// sparse or allocated as asked, with a record only once the copy is whole;
// a disk a running VM uses is refused, and so is a repository of another
// pool.
func TestCloneVirtualDisk(t *testing.T) {
	c, dir := diskFleet(t)
	ctx := c.Admin()
	m := c.Manager
	d, err := m.CreateVirtualDisk(ctx, backend.NewVirtualDisk{Name: "d1", Repository: backend.Ref{Name: managertest.Repo}, SizeMiB: 64, Sparse: true})
	if err != nil {
		t.Fatal(err)
	}
	image := func(id string) string { return filepath.Join(dir, "VirtualDisks", id+".img") }
	// Some data at an offset, so that the copy has something to carry.
	f, err := os.OpenFile(image(d.ID), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("xenmanager disk data"), 10<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	want, _ := os.ReadFile(image(d.ID))
	for _, cloneType := range []string{"", backend.CloneNonSparseCopy} {
		name := "copy-sparse"
		if cloneType != "" {
			name = "copy-allocated"
		}
		cp, err := m.CloneVirtualDisk(ctx, backend.DiskCloneRequest{Source: backend.Ref{Name: "d1"}, DestName: name, CloneType: cloneType})
		if err != nil {
			t.Fatalf("clone %s: %v", name, err)
		}
		got, err := os.ReadFile(image(cp.ID))
		if err != nil || string(got) != string(want) {
			t.Fatalf("clone %s: the copy's content differs from the disk's (%v)", name, err)
		}
		if cp.SizeMiB != 64 || cp.Sparse != (cloneType == "") || cp.Vm.ID != "" {
			t.Fatalf("clone %s recorded as %+v", name, cp)
		}
	}
	vm, err := m.CreateVM(ctx, backend.CreateVMRequest{Name: "v1", Repository: backend.Ref{Name: managertest.Repo}, MemoryMiB: 256, CPUCount: 1,
		Disks: []backend.Ref{{Name: "d1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.StartVM(ctx, backend.Ref{ID: vm.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.CloneVirtualDisk(ctx, backend.DiskCloneRequest{Source: backend.Ref{Name: "d1"}, DestName: "hot"}); err == nil ||
		!strings.Contains(err.Error(), "in use by Vm v1, which is Running") {
		t.Fatalf("clone of a running VM's disk = %v", err)
	}
	if _, err := m.CloneVirtualDisk(ctx, backend.DiskCloneRequest{Source: backend.Ref{Name: "d1"}, DestName: "x", CloneType: "FAST"}); err == nil ||
		backend.KindOf(err) != backend.KindInvalidArgument {
		t.Fatalf("clone with an unknown cloneType = %v", err)
	}
	disks, err := m.VirtualDisks(ctx, backend.Filter{})
	if err != nil || len(disks) != 3 {
		t.Fatalf("disks after two clones and two refusals: %d, %v", len(disks), err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "VirtualDisks"))
	if len(entries) != 3 {
		t.Fatalf("VirtualDisks holds %d files after two clones and two refusals, want 3", len(entries))
	}
}

// diskFleet is a manager with one agent, in a pool with a repository in
// dir, whose files the test reads.
func diskFleet(t *testing.T) (c *managertest.Core, dir string) {
	t.Helper()
	c = managertest.Open(t, managertest.Options{Agents: 1})
	c.Discover()
	c.CreatePool(managertest.Pool)
	dir = filepath.Join(t.TempDir(), "repo")
	c.CreateRepository(managertest.Repo, managertest.Pool, dir)
	return c, dir
}
