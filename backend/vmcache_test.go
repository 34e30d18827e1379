package backend_test

import (
	"slices"
	"testing"

	"xenmanager/backend"
)

// show Vm keeps what it read while the VM is unchanged, and sees every
// change made through the manager at once: a VM's settings (its own
// generation), a tag put on it, a rename and a new VM of the old name (the
// names' generation). What is kept is served without a read: with a table
// of its devices renamed behind the store's back (no write the store
// sees), the VM shown before still shows, with its devices.
func TestShownVMsFollowChanges(t *testing.T) {
	c := fleet(t)
	ctx := c.Admin()
	m := c.Manager
	show := func(name string) backend.VM {
		t.Helper()
		v, err := m.VM(ctx, backend.Ref{Name: name})
		if err != nil {
			t.Fatalf("show Vm %s: %v", name, err)
		}
		return v
	}
	v := show("vm1")
	if len(v.Disks) != 1 || len(v.Vnics) != 1 {
		t.Fatalf("vm1 shows disks %v and VNICs %v; want one of each", v.Disks, v.Vnics)
	}
	mib := v.MemoryMiB + 256
	if _, err := m.EditVM(ctx, backend.Ref{Name: "vm1"}, backend.EditVMRequest{MemoryMiB: &mib}); err != nil {
		t.Fatal(err)
	}
	if got := show("vm1").MemoryMiB; got != mib {
		t.Fatalf("vm1 shows %d MiB after its edit to %d", got, mib)
	}
	if _, err := m.CreateTag(ctx, "prod", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := m.TagObject(ctx, backend.Ref{Name: "prod"}, "Vm", backend.Ref{Name: "vm1"}, false); err != nil {
		t.Fatal(err)
	}
	if got := show("vm1").Tags; !slices.Equal(got, []string{"prod"}) {
		t.Fatalf("vm1 shows tags %q after it was tagged prod", got)
	}
	name := "vm1-renamed"
	if _, err := m.EditVM(ctx, backend.Ref{Name: "vm1"}, backend.EditVMRequest{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.VM(ctx, backend.Ref{Name: "vm1"}); backend.KindOf(err) != backend.KindNotFound {
		t.Fatalf("show Vm vm1 after its rename = %v; want NotFound", err)
	}
	if got := show(name); got.ID != v.ID {
		t.Fatalf("show Vm %s = id %s; want %s", name, got.ID, v.ID)
	}
	createVM(t, c, "vm1", 512)
	if got := show("vm1"); got.ID == v.ID || got.MemoryMiB != 512 {
		t.Fatalf("show Vm vm1 after a new vm1 was made = id %s, %d MiB; want the new VM", got.ID, got.MemoryMiB)
	}

	show(name) // read again: the new VM changed what names find
	breakTable(t, c, "vnics")
	if got := show(name); len(got.Vnics) != 1 || got.MemoryMiB != mib {
		t.Fatalf("the kept %s shows VNICs %v and %d MiB with vnics unreadable; want what was read before", name, got.Vnics, got.MemoryMiB)
	}
}

// PrefetchShownVMs reads ahead what show Vm will read, by id and by name,
// and what it kept serves the shows without a read (with the table of VMs
// renamed behind the store's back they still show, and a name no VM has
// is still not found); a VM changed after it was read ahead shows as it
// is now.
func TestPrefetchedVMsAreShownWithoutARead(t *testing.T) {
	c := fleet(t)
	ctx := c.Admin()
	m := c.Manager
	createVM(t, c, "pa", 256)
	createVM(t, c, "pb", 256)
	pb, err := m.VM(ctx, backend.Ref{Name: "pb"})
	if err != nil {
		t.Fatal(err)
	}

	if err := m.PrefetchShownVMs(ctx, nil, []string{"pa"}); err != nil {
		t.Fatal(err)
	}
	mib := int64(512)
	if _, err := m.EditVM(ctx, backend.Ref{Name: "pa"}, backend.EditVMRequest{MemoryMiB: &mib}); err != nil {
		t.Fatal(err)
	}
	if v, err := m.VM(ctx, backend.Ref{Name: "pa"}); err != nil || v.MemoryMiB != mib {
		t.Fatalf("show Vm pa after its edit, read ahead before it = %d MiB, %v; want %d", v.MemoryMiB, err, mib)
	}

	if err := m.PrefetchShownVMs(ctx, []string{pb.ID, "no-such-id"}, []string{"pa", "vm1", "nope", "p*", "pa"}); err != nil {
		t.Fatal(err)
	}
	breakTable(t, c, "vms")
	for _, tc := range []struct {
		ref  backend.Ref
		want string // the VM's name; "" for not found
	}{
		{backend.Ref{Name: "pa"}, "pa"},
		{backend.Ref{ID: pb.ID}, "pb"},
		{backend.Ref{Name: "vm1"}, "vm1"},
		{backend.Ref{Name: "nope"}, ""},
	} {
		v, err := m.VM(ctx, tc.ref)
		switch {
		case tc.want == "" && backend.KindOf(err) != backend.KindNotFound:
			t.Errorf("show Vm %+v with the VMs unreadable = %v; want NotFound from what was read ahead", tc.ref, err)
		case tc.want != "" && (err != nil || v.Name != tc.want):
			t.Errorf("show Vm %+v with the VMs unreadable = %q, %v; want %s from what was read ahead", tc.ref, v.Name, err, tc.want)
		}
	}
	if v, err := m.VM(ctx, backend.Ref{Name: "vm1"}); err != nil || len(v.Disks) != 1 || len(v.Vnics) != 1 {
		t.Errorf("vm1 read ahead shows disks %v and VNICs %v (%v); want one of each", v.Disks, v.Vnics, err)
	}
}
