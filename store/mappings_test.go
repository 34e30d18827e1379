package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// seedMappings records a pool, a repository, VMs v1..v3, disks d1 (not
// shareable) and d2 (shareable), and ISO c1.
func seedMappings(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	err := s.Write(ctx, func(q *Queries) error {
		errs := []error{
			q.InsertServerPool(ctx, ServerPool{ID: "p1", Name: "pool", CreatedAt: now}),
			q.InsertRepository(ctx, Repository{ID: "r1", Name: "repo", PoolID: "p1", FSLocation: "/x", MountPoint: "/OVS/Repositories/r1", CreatedAt: now}),
			q.InsertVirtualDisk(ctx, VirtualDisk{ID: "d1", Name: "own", RepoID: "r1", SizeMiB: 1, CreatedAt: now}),
			q.InsertVirtualDisk(ctx, VirtualDisk{ID: "d2", Name: "quorum", RepoID: "r1", SizeMiB: 1, Shareable: true, CreatedAt: now}),
			q.InsertVirtualCdrom(ctx, VirtualCdrom{ID: "c1", Name: "iso", RepoID: "r1", URL: "http://h/x.iso", State: "Approved", ImportedBy: "admin", CreatedAt: now}),
		}
		for _, id := range []string{"v1", "v2", "v3"} {
			errs = append(errs, q.InsertVM(ctx, VM{ID: id, Name: "vm-" + id, PoolID: "p1", RepoID: "r1", Status: "Stopped",
				MemoryMiB: 1, CPUCount: 1, DomainType: "xen_pvm", CreatedAt: now}))
		}
		return errors.Join(errs...)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A disk that is not shareable is in one VM at most; a shareable one in
// several, once in each; slots stay one device each.
func TestDiskMappingsShareable(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		seedMappings(t, s)
		ctx := context.Background()
		now := time.Now()
		mapping := func(id, vm, disk string, slot int) func(q *Queries) error {
			return func(q *Queries) error {
				return q.InsertDiskMapping(ctx, DiskMapping{ID: id, VMID: vm, DiskID: disk, Slot: slot, CreatedAt: now, Name: id})
			}
		}
		for _, c := range []struct {
			name string
			do   func(q *Queries) error
			want error
		}{
			{"a disk that is not shareable in its first VM", mapping("m1", "v1", "d1", 0), nil},
			{"the same disk in a second VM", mapping("m2", "v2", "d1", 0), ErrConflict},
			{"a shareable disk in a first VM", mapping("m3", "v1", "d2", 1), nil},
			{"the shareable disk in a second VM", mapping("m4", "v2", "d2", 0), nil},
			{"and a third", mapping("m5", "v3", "d2", 3), nil},
			{"the shareable disk twice in one VM", mapping("m6", "v1", "d2", 2), ErrConflict},
			{"a slot taken", mapping("m7", "v3", "d1", 3), ErrConflict},
		} {
			err := s.Write(ctx, c.do)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("%s: error %v, want %v", c.name, err, c.want)
			}
		}
		q := s.Read()
		maps, err := q.DiskMappingsOfDisk(ctx, "d2")
		if err != nil || len(maps) != 3 {
			t.Fatalf("mappings of the shareable disk: %v, %v", maps, err)
		}
		if first, err := q.DiskMappingOfDisk(ctx, "d2"); err != nil || first.ID != "m3" || first.Name != "m3" {
			t.Fatalf("first mapping of the shareable disk: %+v, %v", first, err)
		}
		if err := s.Write(ctx, func(q *Queries) error { return q.DeleteDiskMapping(ctx, "m1") }); err != nil {
			t.Fatal(err)
		}
		if err := s.Write(ctx, mapping("m2", "v2", "d1", 1)); err != nil {
			t.Fatalf("a disk freed by its VM in another VM: %v", err)
		}
	})
}

// Mappings of disks and ISOs are found by id and by the name they are
// shown with: the one given, else <vm>/<device>.
func TestMappingEntries(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		seedMappings(t, s)
		ctx := context.Background()
		now := time.Now()
		err := s.Write(ctx, func(q *Queries) error {
			return errors.Join(
				q.InsertDiskMapping(ctx, DiskMapping{ID: "m1", VMID: "v1", DiskID: "d1", Slot: 0, CreatedAt: now, Name: "boot"}),
				q.InsertDiskMapping(ctx, DiskMapping{ID: "m2", VMID: "v2", DiskID: "d2", Slot: 0, CreatedAt: now}),
				q.InsertCdromMapping(ctx, CdromMapping{ID: "m3", VMID: "v1", CdromID: "c1", Slot: 1, CreatedAt: now, Name: "cd"}),
				q.InsertCdromMapping(ctx, CdromMapping{ID: "m4", VMID: "v2", CdromID: "c1", Slot: 1, CreatedAt: now}),
				// A name given that is another mapping's shown name.
				q.InsertDiskMapping(ctx, DiskMapping{ID: "m5", VMID: "v3", DiskID: "d2", Slot: 0, CreatedAt: now, Name: "vm-v2/iso"}),
			)
		})
		if err != nil {
			t.Fatal(err)
		}
		q := s.Read()
		for _, c := range []struct {
			name string
			want []string
		}{
			{"boot", []string{"m1"}},
			{"cd", []string{"m3"}},
			{"vm-v2/quorum", []string{"m2"}},
			{"vm-v2/iso", []string{"m4", "m5"}},
			{"vm-v1/own", nil}, // m1 has a name of its own
			{"nosuch", nil},
		} {
			got, err := q.MappingEntriesByName(ctx, c.name)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, e := range got {
				ids = append(ids, e.ID)
			}
			if !slices.Equal(ids, c.want) {
				t.Errorf("by name %q: %v, want %v", c.name, ids, c.want)
			}
		}
		e, err := q.MappingEntry(ctx, "m4")
		if err != nil || e.CdromID != "c1" || e.DiskID != "" || e.VMName != "vm-v2" || e.PoolID != "p1" || e.Slot != 1 || e.ShownName() != "vm-v2/iso" {
			t.Fatalf("MappingEntry(m4) = %+v, %v", e, err)
		}
		if _, err := q.MappingEntry(ctx, "d1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("MappingEntry of a disk id: %v, want ErrNotFound", err)
		}
		all, err := q.MappingEntries(ctx)
		if err != nil || len(all) != 5 {
			t.Fatalf("MappingEntries: %d, %v", len(all), err)
		}
	})
}

// ovm3Migration is the number of the migration that made disks shareable
// and mappings named (NNNN_ovm3_scripts.sql).
func ovm3Migration(t *testing.T, engine Engine) int {
	t.Helper()
	migs, err := loadMigrations(engine)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migs {
		if strings.HasSuffix(m.name, "_ovm3_scripts.sql") {
			return m.version
		}
	}
	t.Fatal("no migration NNNN_ovm3_scripts.sql")
	return 0
}

// The OVM 3 migration keeps the mappings recorded before it, named by
// none, and its disks and VMs unshareable and without a memory limit.
func TestMigrationOVM3KeepsMappings(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		openAtVersion(t, db, ovm3Migration(t, db.engine)-1, `
		INSERT INTO server_pools (id, name, created_at) VALUES ('p1', 'pool', 0);
		INSERT INTO repositories (id, name, pool_id, fs_location, mount_point, created_at) VALUES ('r1', 'repo', 'p1', '/x', '/m', 0);
		INSERT INTO vms (id, name, pool_id, repo_id, status, memory_mib, cpu_count, domain_type, created_at)
			VALUES ('v1', 'vm1', 'p1', 'r1', 'Stopped', 512, 1, 'xen_hvm', 0),
			       ('v2', 'vm2', 'p1', 'r1', 'Stopped', 512, 1, 'xen_hvm', 0);
		INSERT INTO virtual_disks (id, name, repo_id, size_mib, sparse, created_at) VALUES ('d1', 'root', 'r1', 10, 1, 0);
		INSERT INTO vm_disk_mappings (id, vm_id, disk_id, slot, created_at) VALUES ('m1', 'v1', 'd1', 0, 0)`)
		s := db.open(t)
		ctx := context.Background()
		q := s.Read()
		maps, err := q.DiskMappingsOfVM(ctx, "v1")
		if err != nil || len(maps) != 1 || maps[0].ID != "m1" || maps[0].DiskID != "d1" || maps[0].Name != "" {
			t.Fatalf("mappings after the migration: %+v, %v", maps, err)
		}
		if d, err := q.VirtualDisk(ctx, "d1"); err != nil || d.Shareable {
			t.Fatalf("disk after the migration: %+v, %v", d, err)
		}
		if v, err := q.VM(ctx, "v1"); err != nil || v.MemoryLimitMiB != 0 || v.MemoryMiB != 512 {
			t.Fatalf("VM after the migration: %+v, %v", v, err)
		}
		err = s.Write(ctx, func(q *Queries) error {
			return q.InsertDiskMapping(ctx, DiskMapping{ID: "m2", VMID: "v2", DiskID: "d1", Slot: 0, CreatedAt: time.Now()})
		})
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("a recorded disk in a second VM after the migration: %v, want ErrConflict", err)
		}
		err = s.Write(ctx, func(q *Queries) error { return q.DeleteVirtualDisk(ctx, "d1") })
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("delete a mapped disk after the migration: %v, want ErrConflict", err)
		}
	})
}
