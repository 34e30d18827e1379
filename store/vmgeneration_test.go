package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"xenmanager/store/pgtest"
)

// The VMs' generations follow every write to what show Vm reads: a VM's
// row updated with its name kept changes that VM's generation alone (on
// SQLite once while it runs and again after its commit, on PostgreSQL after
// its commit); a VM inserted, deleted or
// renamed and a device or tag changed change every VM's (the names'
// generation); a write to anything else changes none.
func TestVMGenerationFollowsWrites(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		now := time.Now()
		// Two VMs whose generations are counters of their own.
		v1, v2 := "vm1", "vm2"
		for i := 0; vmStripe(v1) == vmStripe(v2); i++ {
			v2 = "vm2-" + string(rune('a'+i))
		}
		if err := s.Write(ctx, func(q *Queries) error {
			for _, err := range []error{
				q.InsertServerPool(ctx, ServerPool{ID: "p1", Name: "pool", CreatedAt: now}),
				q.InsertRepository(ctx, Repository{ID: "r1", Name: "repo", PoolID: "p1", FSLocation: "/x", MountPoint: "/m", CreatedAt: now}),
				q.InsertNetwork(ctx, Network{ID: "n1", Name: "net", PoolID: "p1", Bridge: "xenbr0", CreatedAt: now}),
			} {
				if err != nil {
					return err
				}
			}
			if _, err := q.UpsertServer(ctx, Server{ID: "s1", Name: "ovs1", UniqueID: "uid-1", Address: "127.0.0.1", Port: 1,
				AgentPassword: []byte{1}, Status: "Running", CreatedAt: now}); err != nil {
				return err
			}
			for _, id := range []string{v1, v2} {
				if err := q.InsertVM(ctx, VM{ID: id, Name: "name-" + id, PoolID: "p1", RepoID: "r1", Status: "Stopped", MemoryMiB: 1,
					CPUCount: 1, DomainType: "xen_pvm", CreatedAt: now}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		const (
			none = iota // no VM's generation
			one         // v1's alone
			all         // every VM's
		)
		tests := []struct {
			name    string
			changes int
			op      func(q *Queries) error
		}{
			{"SetVMState", one, func(q *Queries) error { return q.SetVMState(ctx, v1, "s1", "Running") }},
			{"UpdateVM, name kept", one, func(q *Queries) error {
				return q.UpdateVM(ctx, VM{ID: v1, Name: "name-" + v1, MemoryMiB: 2, CPUCount: 1, DomainType: "xen_pvm"})
			}},
			{"UpdateVM, renamed", all, func(q *Queries) error {
				return q.UpdateVM(ctx, VM{ID: v1, Name: "renamed", MemoryMiB: 2, CPUCount: 1, DomainType: "xen_pvm"})
			}},
			{"InsertVM", all, func(q *Queries) error {
				return q.InsertVM(ctx, VM{ID: "vm3", Name: "vm3", PoolID: "p1", RepoID: "r1", Status: "Stopped", MemoryMiB: 1, CPUCount: 1,
					DomainType: "xen_pvm", CreatedAt: now})
			}},
			{"InsertVnic", all, func(q *Queries) error {
				return q.InsertVnic(ctx, Vnic{ID: "n1v", Name: "vnic", VMID: v1, NetworkID: "n1", MAC: "00:21:f6:00:00:01", CreatedAt: now})
			}},
			{"InsertVirtualDisk", all, func(q *Queries) error {
				return q.InsertVirtualDisk(ctx, VirtualDisk{ID: "d1", Name: "disk", RepoID: "r1", SizeMiB: 1, CreatedAt: now})
			}},
			{"InsertDiskMapping", all, func(q *Queries) error {
				return q.InsertDiskMapping(ctx, DiskMapping{ID: "dm1", VMID: v1, DiskID: "d1", Slot: 0, CreatedAt: now})
			}},
			{"InsertTag", all, func(q *Queries) error { return q.InsertTag(ctx, Tag{ID: "t1", Name: "prod", CreatedAt: now}) }},
			{"TagObject", all, func(q *Queries) error { return q.TagObject(ctx, "t1", v1, "Vm") }},
			{"InsertEvent", none, func(q *Queries) error {
				return q.InsertEvent(ctx, Event{ID: "e1", Severity: "Info", Kind: "test", Description: "d", CreatedAt: now})
			}},
			{"SetServerStatus", none, func(q *Queries) error { return q.SetServerStatus(ctx, "s1", "Stopped") }},
			{"DeleteVM", all, func(q *Queries) error { return q.DeleteVM(ctx, "vm3") }},
		}
		// SQLite's hook bumps a generation as the row changes and again
		// after the commit; PostgreSQL's trigger lists the VMs for the
		// bump after the commit alone (vmgeneration.go).
		asItChanges := db.engine == SQLite
		type gens struct{ v1, v2, names, changes int64 }
		now1 := func() gens {
			return gens{s.VMGeneration(v1), s.VMGeneration(v2), s.VMNamesGeneration(), s.VMChanges()}
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := now1()
				var during gens
				if err := s.Write(ctx, func(q *Queries) error {
					err := tc.op(q)
					during = now1()
					return err
				}); err != nil {
					t.Fatal(err)
				}
				after := now1()
				switch tc.changes {
				case none:
					if after != before {
						t.Errorf("generations %+v before, %+v after; want them unchanged", before, after)
					}
				case one:
					if after.v1 == before.v1 || after.changes == before.changes {
						t.Errorf("v1's generation %d before, %d after the commit; want a change", before.v1, after.v1)
					}
					if asItChanges && (during.v1 == before.v1 || after.v1 == during.v1 || during.changes == before.changes || after.changes == during.changes) {
						t.Errorf("v1's generation %d, %d while writing, %d after the commit; want a change at each", before.v1, during.v1, after.v1)
					}
					if after.v2 != before.v2 || after.names != before.names {
						t.Errorf("v2's and the names' generations %d, %d before, %d, %d after; want them unchanged",
							before.v2, before.names, after.v2, after.names)
					}
				case all:
					if after.names == before.names {
						t.Errorf("the names' generation %d before, %d after the commit; want a change", before.names, after.names)
					}
					if asItChanges && (during.names == before.names || after.names == during.names) {
						t.Errorf("the names' generation %d, %d while writing, %d after the commit; want a change at each",
							before.names, during.names, after.names)
					}
				}
			})
		}
	})
}

// Another manager's change to a VM is heard: its row changes that VM's
// generation, a new VM the names'.
func TestVMGenerationFollowsOtherManagers(t *testing.T) {
	db := testDB{engine: PostgreSQL, target: pgtest.Database(t)}
	a, b := db.open(t), db.open(t)
	ctx := context.Background()
	write := func(fn func(q *Queries) error) {
		t.Helper()
		if err := a.Write(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	names := b.VMNamesGeneration()
	writeVMs(t, a, "vm1")
	waitFor(t, "the other manager's new VM left the names' generation as it was", func() bool { return b.VMNamesGeneration() != names })
	g := b.VMGeneration("vm1")
	write(func(q *Queries) error { return q.SetVMState(ctx, "vm1", "", "Suspended") })
	waitFor(t, "the other manager's change to the VM left its generation as it was", func() bool { return b.VMGeneration("vm1") != g })
}

// While no listener listens, nothing read of the VMs may be kept.
func TestVMGenerationWithoutListener(t *testing.T) {
	s := testDB{engine: PostgreSQL, target: pgtest.Database(t)}.open(t)
	s.pg.listening.Store(false)
	defer s.pg.listening.Store(true)
	if g := s.VMGeneration("vm1"); s.VMGeneration("vm1") == g {
		t.Fatal("a VM's generation stays while nothing listens")
	}
	if g := s.VMChanges(); s.VMChanges() == g {
		t.Fatal("the VMs' changes stay while nothing listens")
	}
}

// Every VM a write changes has its generation bumped, or the names' (every
// VM's), however many: on PostgreSQL the triggers' list of a transaction's
// VMs becomes "every VM" past 8 KiB of ids (migration 0028), which must
// lose none of them.
func TestVMGenerationOfManyVMsInOneWrite(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		ids := make([]string, 400)
		for i := range ids {
			ids[i] = fmt.Sprintf("vm-%032d", i) // 35 characters: 400 of them make 14 KiB
		}
		writeVMs(t, s, ids...)
		// A VM's read is current while its generation and the names' are
		// unchanged (vmRead, shownVMCache): one of them must move.
		before, names := make([]int64, len(ids)), s.VMNamesGeneration()
		for i, id := range ids {
			before[i] = s.VMGeneration(id)
		}
		if err := s.Write(ctx, func(q *Queries) error {
			for _, id := range ids {
				if err := q.SetVMState(ctx, id, "", "Suspended"); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for i, id := range ids {
			if s.VMGeneration(id) == before[i] && s.VMNamesGeneration() == names {
				t.Fatalf("VM %d of %d changed in one write kept its generation", i+1, len(ids))
			}
		}
	})
}

// A writer's session that does not ask for the list of migration 0028
// (that of a manager of an older binary, still running while a newer one
// migrated the database) still gets a notice for each VM row it changes,
// as migration 0025 sent them; one that asks gets none.
func TestVMNoticesForOlderWriters(t *testing.T) {
	db := testDB{engine: PostgreSQL, target: pgtest.Database(t)}
	s := db.open(t)
	ctx := context.Background()
	writeVMs(t, s, "vm1")
	for _, tc := range []struct {
		params map[string]string
		want   []string // the notices' details
	}{
		{map[string]string{"xenmanager.writer": "on"}, []string{"vm1"}},
		{map[string]string{"xenmanager.writer": "on", "xenmanager.vm_list": "on"}, nil},
	} {
		cfg, err := pgx.ParseConfig(db.target)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range tc.params {
			cfg.RuntimeParams[k] = v
		}
		var got []string
		cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
			if n.Message == "xenmanager: vm changed" {
				got = append(got, n.Detail)
			}
		}
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Exec(ctx, `UPDATE vms SET status = 'Suspended' WHERE id = 'vm1'`)
		c.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("a session with %v got the notices %q, want %q", tc.params, got, tc.want)
		}
	}
}

// writeVMs writes, in one write to s, pool p1, repository r1 and a stopped
// VM in them for each of ids, named after its id.
func writeVMs(t *testing.T, s *Store, ids ...string) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	if err := s.Write(ctx, func(q *Queries) error {
		if err := q.InsertServerPool(ctx, ServerPool{ID: "p1", Name: "pool", CreatedAt: now}); err != nil {
			return err
		}
		if err := q.InsertRepository(ctx, Repository{ID: "r1", Name: "repo", PoolID: "p1", FSLocation: "/x", MountPoint: "/m", CreatedAt: now}); err != nil {
			return err
		}
		for _, id := range ids {
			if err := q.InsertVM(ctx, VM{ID: id, Name: id, PoolID: "p1", RepoID: "r1", Status: "Stopped", MemoryMiB: 1, CPUCount: 1,
				DomainType: "xen_pvm", CreatedAt: now}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
