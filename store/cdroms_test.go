package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An ISO in a VM cannot be deleted; one VM holds an ISO once and a slot
// once; deleting the VM frees the ISO.
func TestCdromMappingsConstraints(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		now := time.Now()
		err := s.Write(ctx, func(q *Queries) error {
			for _, err := range []error{
				q.InsertServerPool(ctx, ServerPool{ID: "p1", Name: "pool", CreatedAt: now}),
				q.InsertRepository(ctx, Repository{ID: "r1", Name: "repo", PoolID: "p1", FSLocation: "/x", MountPoint: "/OVS/Repositories/r1", CreatedAt: now}),
				q.InsertVM(ctx, VM{ID: "v1", Name: "vm", PoolID: "p1", RepoID: "r1", Status: "Stopped", MemoryMiB: 1, CPUCount: 1, DomainType: "xen_pvm", CreatedAt: now}),
				q.InsertVirtualCdrom(ctx, VirtualCdrom{ID: "c1", Name: "iso", RepoID: "r1", URL: "http://h/x.iso", SizeBytes: 10, State: "Approved", ImportedBy: "admin", CreatedAt: now}),
				q.InsertVirtualCdrom(ctx, VirtualCdrom{ID: "c2", Name: "iso2", RepoID: "r1", URL: "http://h/y.iso", State: "Pending", ImportedBy: "op", CreatedAt: now}),
				q.InsertCdromMapping(ctx, CdromMapping{ID: "m1", VMID: "v1", CdromID: "c1", Slot: 1, CreatedAt: now}),
			} {
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			do   func(q *Queries) error
			want error
		}{
			{"delete an ISO in a VM", func(q *Queries) error { return q.DeleteVirtualCdrom(ctx, "c1") }, ErrConflict},
			{"the same ISO twice in a VM", func(q *Queries) error {
				return q.InsertCdromMapping(ctx, CdromMapping{ID: "m2", VMID: "v1", CdromID: "c1", Slot: 2, CreatedAt: now})
			}, ErrConflict},
			{"two ISOs in one slot", func(q *Queries) error {
				return q.InsertCdromMapping(ctx, CdromMapping{ID: "m3", VMID: "v1", CdromID: "c2", Slot: 1, CreatedAt: now})
			}, ErrConflict},
			{"approve a missing ISO", func(q *Queries) error { return q.SetVirtualCdromState(ctx, "nope", "Approved") }, ErrNotFound},
			{"rename in a table that is not renamable", func(q *Queries) error {
				n := "x"
				return q.RenameObject(ctx, "users", "u1", &n, nil)
			}, errAny},
		} {
			err := s.Write(ctx, c.do)
			if c.want == errAny && err == nil || c.want != errAny && !errors.Is(err, c.want) {
				t.Errorf("%s: error %v, want %v", c.name, err, c.want)
			}
		}
		q := s.Read()
		if n, err := q.CountWhere(ctx, "virtual_cdroms.repo_id", "r1"); err != nil || n != 2 {
			t.Fatalf("CountWhere = %d, %v; want 2", n, err)
		}
		desc := "Oracle Linux"
		name := "ol9"
		if err := s.Write(ctx, func(q *Queries) error { return q.RenameObject(ctx, "virtual_cdroms", "c1", &name, &desc) }); err != nil {
			t.Fatal(err)
		}
		if c, err := q.VirtualCdrom(ctx, "c1"); err != nil || c.Name != "ol9" || c.Description != desc || c.URL != "http://h/x.iso" || c.SizeBytes != 10 {
			t.Fatalf("after rename: %+v, %v", c, err)
		}
		if err := s.Write(ctx, func(q *Queries) error { return q.DeleteVM(ctx, "v1") }); err != nil {
			t.Fatal(err)
		}
		if maps, err := q.CdromMappingsOfCdrom(ctx, "c1"); err != nil || len(maps) != 0 {
			t.Fatalf("mappings of a deleted VM remain: %v, %v", maps, err)
		}
		if err := s.Write(ctx, func(q *Queries) error { return q.DeleteVirtualCdrom(ctx, "c1") }); err != nil {
			t.Fatalf("delete a free ISO: %v", err)
		}
	})
}

// errAny stands for "some error" in a table of expectations.
var errAny = errors.New("any error")

// Completion reads names of every named table, only in the pools given;
// tags belong to no pool.
func TestNamesWithPrefixScopesByPool(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		now := time.Now()
		err := s.Write(ctx, func(q *Queries) error {
			for _, err := range []error{
				q.InsertServerPool(ctx, ServerPool{ID: "p1", Name: "pool1", CreatedAt: now}),
				q.InsertServerPool(ctx, ServerPool{ID: "p2", Name: "pool2", CreatedAt: now}),
				q.InsertRepository(ctx, Repository{ID: "r1", Name: "repo1", PoolID: "p1", FSLocation: "/x", MountPoint: "/m1", CreatedAt: now}),
				q.InsertRepository(ctx, Repository{ID: "r2", Name: "repo2", PoolID: "p2", FSLocation: "/y", MountPoint: "/m2", CreatedAt: now}),
				q.InsertVirtualCdrom(ctx, VirtualCdrom{ID: "c1", Name: "ol9", RepoID: "r1", URL: "http://h/a", State: "Approved", CreatedAt: now}),
				q.InsertVirtualCdrom(ctx, VirtualCdrom{ID: "c2", Name: "ol8", RepoID: "r2", URL: "http://h/b", State: "Approved", CreatedAt: now}),
				q.InsertVirtualDisk(ctx, VirtualDisk{ID: "d1", Name: "oldisk", RepoID: "r2", SizeMiB: 1, CreatedAt: now}),
				q.InsertTag(ctx, Tag{ID: "t1", Name: "old", CreatedAt: now}),
			} {
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			table string
			pools []string
			want  string
		}{
			{"virtual_cdroms", nil, "[ol8 ol9]"},
			{"virtual_cdroms", []string{"p1"}, "[ol9]"},
			{"virtual_cdroms", []string{}, "[]"},
			{"virtual_disks", []string{"p1"}, "[]"},
			{"virtual_disks", []string{"p2"}, "[oldisk]"},
			{"tags", []string{}, "[old]"},
			{"repositories", []string{"p2"}, "[]"}, // prefix "ol" matches no repository
		} {
			got, err := s.Read().NamesWithPrefix(ctx, c.table, "ol", 10, nil, c.pools)
			if err != nil || fmt.Sprint(got) != c.want && !(c.want == "[]" && len(got) == 0) {
				t.Errorf("%s in %v: %v, %v; want %s", c.table, c.pools, got, err, c.want)
			}
		}
		if _, err := s.Read().NamesWithPrefix(ctx, "users", "a", 10, nil, nil); err == nil {
			t.Error("user names are offered for completion")
		}

		// The name sets: mappings by the names they are shown with, and the
		// disks and VNICs of clone sources, VMs' and templates'.
		err = s.Write(ctx, func(q *Queries) error {
			for _, err := range []error{
				q.InsertVM(ctx, VM{ID: "v1", Name: "olvm", PoolID: "p1", RepoID: "r1", Status: "Stopped", MemoryMiB: 1, CPUCount: 1,
					DomainType: "xen_pvm", CreatedAt: now}),
				q.InsertVirtualDisk(ctx, VirtualDisk{ID: "d2", Name: "olroot", RepoID: "r1", SizeMiB: 1, CreatedAt: now}),
				q.InsertDiskMapping(ctx, DiskMapping{ID: "m1", VMID: "v1", DiskID: "d2", Slot: 0, CreatedAt: now}),
				q.InsertDiskMapping(ctx, DiskMapping{ID: "m2", VMID: "v1", DiskID: "d1", Slot: 1, CreatedAt: now, Name: "oldata"}),
				q.InsertCdromMapping(ctx, CdromMapping{ID: "m3", VMID: "v1", CdromID: "c1", Slot: 2, CreatedAt: now, Name: "olcd"}),
				q.InsertNetwork(ctx, Network{ID: "n1", Name: "net", PoolID: "p1", Bridge: "xenbr0", CreatedAt: now}),
				q.InsertVnic(ctx, Vnic{ID: "e1", Name: "oleth0", VMID: "v1", NetworkID: "n1", MAC: "00:21:f6:00:00:01", CreatedAt: now}),
				q.InsertVMTemplate(ctx, VMTemplate{ID: "tp1", Name: "oltpl", PoolID: "p2", RepoID: "r2", MemoryMiB: 1, CPUCount: 1,
					DomainType: "xen_pvm", State: "Approved", CreatedBy: "admin", CreatedAt: now},
					[]TemplateDisk{{ID: "tm1", DiskID: "d3", RepoID: "r2", Name: "olt-xvda", SizeMiB: 1, CreatedAt: now}},
					[]TemplateVnic{{ID: "te1", Name: "olt-eth0", MAC: "00:21:f6:00:00:02", CreatedAt: now}}),
			} {
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			set   string
			pools []string
			want  string
		}{
			{NamesDiskMappings, nil, "[olcd oldata olvm/olroot]"},
			{NamesDiskMappings, []string{"p2"}, "[]"}, // a mapping is in its VM's pool, whatever its disk's
			{NamesCloneSourceDisks, nil, "[oldata oltpl/olt-xvda olvm/olroot]"},
			{NamesCloneSourceDisks, []string{"p2"}, "[oltpl/olt-xvda]"},
			{NamesCloneSourceVnics, nil, "[oleth0 olt-eth0]"},
			{NamesCloneSourceVnics, []string{"p1"}, "[oleth0]"},
			{NamesCloneSourceVnics, []string{}, "[]"},
		} {
			got, err := s.Read().NamesWithPrefix(ctx, c.set, "ol", 10, nil, c.pools)
			if err != nil || fmt.Sprint(got) != c.want && !(c.want == "[]" && len(got) == 0) {
				t.Errorf("%s in %v: %v, %v; want %s", c.set, c.pools, got, err, c.want)
			}
		}
	})
}

// A backup taken while the store runs is a database Open accepts, holding
// what was written; an existing file is not overwritten. On PostgreSQL
// backup refuses, naming pg_dump, and writes nothing.
func TestBackup(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		if err := s.Write(ctx, func(q *Queries) error {
			return q.InsertServerPool(ctx, ServerPool{ID: "p1", Name: "pool", CreatedAt: time.Now()})
		}); err != nil {
			t.Fatal(err)
		}
		dest := filepath.Join(t.TempDir(), "manager.db.backup")
		if db.engine == PostgreSQL {
			n, err := s.Backup(ctx, dest)
			if !errors.Is(err, ErrBackupOnPostgres) || !strings.Contains(err.Error(), "pg_dump") || n != 0 {
				t.Fatalf("Backup on PostgreSQL = %d, %v; want a refusal naming pg_dump", n, err)
			}
			if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("Backup on PostgreSQL left %s: %v", dest, err)
			}
			return
		}
		n, err := s.Backup(ctx, dest)
		if err != nil || n == 0 {
			t.Fatalf("Backup = %d, %v", n, err)
		}
		if _, err := s.Backup(ctx, dest); err == nil {
			t.Fatal("a second backup to the same file was taken")
		}
		b, err := Open(ctx, dest)
		if err != nil {
			t.Fatalf("open the backup: %v", err)
		}
		defer b.Close()
		if p, err := b.Read().ServerPool(ctx, "p1"); err != nil || p.Name != "pool" {
			t.Fatalf("the backup lacks the pool: %+v, %v", p, err)
		}
	})
}
