package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// VMDevices reads a VM's disks by slot, then its ISOs by slot, then its
// VNICs in the order they were made, then its tags, and nothing of another
// VM's; VMShownByID and VMsShownByName read the same with the VM's record.
func TestVMDevices(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		seedDevices(t, s)
		ctx := context.Background()
		tests := []struct {
			vm   string
			want []VMDevice
		}{
			{"v1", []VMDevice{{DeviceDisk, "d1", "own"}, {DeviceDisk, "d2", "quorum"}, {DeviceCdrom, "c1", "iso"},
				{DeviceVnic, "z-first", "eth0"}, {DeviceVnic, "a-second", "eth1"}, {DeviceTag, "", "alpha"}, {DeviceTag, "", "zeta"}}},
			{"v2", []VMDevice{{DeviceDisk, "d2", "quorum"}, {DeviceVnic, "v2nic", "eth0"}}},
			{"v3", nil},
		}
		q := s.Read()
		for _, tc := range tests {
			got, err := q.VMDevices(ctx, tc.vm)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("VMDevices(%s) = %v, want %v", tc.vm, got, tc.want)
			}
			byID, err := q.VMShownByID(ctx, tc.vm)
			if err != nil {
				t.Fatal(err)
			}
			byName, err := q.VMsShownByName(ctx, "vm-"+tc.vm)
			if err != nil {
				t.Fatal(err)
			}
			for _, shown := range []VMShown{byID, byName[0]} {
				if shown.ID != tc.vm || shown.Name != "vm-"+tc.vm || shown.PoolID != "p1" || !shown.WithDevices ||
					!slices.Equal(shown.Devices, tc.want) {
					t.Errorf("VM %s shown as %+v, want its record and devices %v", tc.vm, shown, tc.want)
				}
			}
			if len(byName) != 1 {
				t.Errorf("VMsShownByName(vm-%s) found %d VMs, want 1", tc.vm, len(byName))
			}
		}
		if _, err := q.VMShownByID(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("VMShownByID of no VM = %v, want ErrNotFound", err)
		}
		if none, err := q.VMsShownByName(ctx, "nope"); err != nil || len(none) != 0 {
			t.Errorf("VMsShownByName of no VM = %v, %v; want none", none, err)
		}
	})
}

// VMsShownByIDs and VMsShownByNames read what VMShownByID and
// VMsShownByName read of each VM, for many at once, by id; keys no VM
// has (one with JSON's special characters) are left out, and too many
// keys are refused.
func TestVMsShownAtOnce(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		seedDevices(t, s)
		ctx := context.Background()
		q := s.Read()
		var want []VMShown
		for _, id := range []string{"v1", "v2", "v3"} {
			v, err := q.VMShownByID(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, v)
		}
		tests := []struct {
			name string
			read func() ([]VMShown, error)
			want []VMShown
		}{
			{"by ids", func() ([]VMShown, error) { return q.VMsShownByIDs(ctx, []string{"v3", "nope", "v1", `a"b\`, "v2"}) }, want},
			{"by names", func() ([]VMShown, error) { return q.VMsShownByNames(ctx, []string{"vm-v2", `"]`, "vm-v1"}) }, want[:2]},
			{"none found", func() ([]VMShown, error) { return q.VMsShownByNames(ctx, []string{"nope"}) }, nil},
			{"no keys", func() ([]VMShown, error) { return q.VMsShownByIDs(ctx, nil) }, nil},
		}
		for _, tc := range tests {
			got, err := tc.read()
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%s: %d VMs, want %d: %+v", tc.name, len(got), len(tc.want), got)
			}
			for i := range got {
				g, w := got[i], tc.want[i]
				if g.VM != w.VM || g.WithDevices != w.WithDevices || !slices.Equal(g.Devices, w.Devices) {
					t.Errorf("%s: VM %d is %+v, want %+v", tc.name, i, g, w)
				}
			}
		}
		if _, err := q.VMsShownByIDs(ctx, make([]string, MaxShownAtOnce+1)); err == nil {
			t.Errorf("%d ids read at once, want an error", MaxShownAtOnce+1)
		}
	})
}

// seedDevices is seedMappings with devices for v1 and v2: disks mapped out
// of slot order, an ISO, two VNICs of v1 made in the order their ids do
// not sort in, one of v2, and two tags on v1.
func seedDevices(t *testing.T, s *Store) {
	t.Helper()
	seedMappings(t, s)
	ctx := context.Background()
	now := time.Now()
	err := s.Write(ctx, func(q *Queries) error {
		return errors.Join(
			q.InsertDiskMapping(ctx, DiskMapping{ID: "m1", VMID: "v1", DiskID: "d2", Slot: 2, CreatedAt: now}),
			q.InsertDiskMapping(ctx, DiskMapping{ID: "m2", VMID: "v1", DiskID: "d1", Slot: 0, CreatedAt: now.Add(time.Second)}),
			q.InsertDiskMapping(ctx, DiskMapping{ID: "m3", VMID: "v2", DiskID: "d2", Slot: 0, CreatedAt: now}),
			q.InsertCdromMapping(ctx, CdromMapping{ID: "c1m", VMID: "v1", CdromID: "c1", Slot: 1, CreatedAt: now}),
			q.InsertNetwork(ctx, Network{ID: "n1", Name: "net", PoolID: "p1", Bridge: "xenbr0", CreatedAt: now}),
			q.InsertVnic(ctx, Vnic{ID: "z-first", Name: "eth0", VMID: "v1", NetworkID: "n1", MAC: "00:16:3e:00:00:01", CreatedAt: now}),
			q.InsertVnic(ctx, Vnic{ID: "a-second", Name: "eth1", VMID: "v1", NetworkID: "n1", MAC: "00:16:3e:00:00:02", CreatedAt: now.Add(time.Millisecond)}),
			q.InsertVnic(ctx, Vnic{ID: "v2nic", Name: "eth0", VMID: "v2", NetworkID: "n1", MAC: "00:16:3e:00:00:03", CreatedAt: now}),
			q.InsertTag(ctx, Tag{ID: "t1", Name: "zeta", CreatedAt: now}),
			q.InsertTag(ctx, Tag{ID: "t2", Name: "alpha", CreatedAt: now}),
			q.TagObject(ctx, "t1", "v1", "Vm"),
			q.TagObject(ctx, "t2", "v1", "Vm"),
		)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// VMsByIDs reads what VM reads of each VM, for many at once, by id within
// each MaxShownAtOnce of the ids: keys no VM has (one with JSON's special
// characters) are left out, and more ids than one query takes are read
// in several.
func TestVMsByIDs(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		seedDevices(t, s)
		ctx := context.Background()
		q := s.Read()
		vm := func(id string) VM {
			v, err := q.VM(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		many := make([]string, MaxShownAtOnce+10)
		for i := range many {
			many[i] = fmt.Sprintf("none-%d", i)
		}
		many[0], many[len(many)-1] = "v3", "v1" // one in each query
		for _, tc := range []struct {
			name string
			ids  []string
			want []VM
		}{
			{"some unknown", []string{"v3", "nope", "v1", `a"b\`, "v2"}, []VM{vm("v1"), vm("v2"), vm("v3")}},
			{"more than one query takes", many, []VM{vm("v3"), vm("v1")}},
			{"none found", []string{"nope"}, nil},
			{"no ids", nil, nil},
		} {
			got, err := q.VMsByIDs(ctx, tc.ids)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
			}
		}
	})
}
