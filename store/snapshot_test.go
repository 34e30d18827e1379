package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestSnapshotStreamsOneMoment: the VMs a Snapshot streams are those of
// the moment its first read saw, though other writes commit while it
// reads (and are not held up by it); stopping early ends the iteration;
// the next Snapshot sees the writes.
func TestSnapshotStreamsOneMoment(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		now := time.Now()
		const n = 50
		err := s.Write(ctx, func(q *Queries) error {
			if err := q.InsertServerPool(ctx, ServerPool{ID: "p1", Name: "pool", CreatedAt: now}); err != nil {
				return err
			}
			if err := q.InsertRepository(ctx, Repository{ID: "r1", Name: "repo", PoolID: "p1", FSLocation: "/x", MountPoint: "/OVS/Repositories/r1", CreatedAt: now}); err != nil {
				return err
			}
			for i := range n {
				v := VM{ID: fmt.Sprintf("v%03d", i), Name: fmt.Sprintf("vm-%03d", i), PoolID: "p1", RepoID: "r1", Status: "Stopped",
					MemoryMiB: int64(i + 1), CPUCount: 1, DomainType: "xen_pvm", CreatedAt: now}
				if err := q.InsertVM(ctx, v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var names, statuses []string
		err = s.Snapshot(ctx, func(q *Queries) error {
			for v, err := range q.EachVMSummary(ctx) {
				if err != nil {
					return err
				}
				names, statuses = append(names, v.Name), append(statuses, v.Status)
				if len(names) == 1 {
					// Another writer deletes one VM, adds one and changes
					// one while the listing reads.
					err := s.Write(ctx, func(w *Queries) error {
						if err := w.DeleteVM(ctx, "v010"); err != nil {
							return err
						}
						if err := w.SetVMState(ctx, "v020", "", "Running"); err != nil {
							return err
						}
						return w.InsertVM(ctx, VM{ID: "new", Name: "a-new", PoolID: "p1", RepoID: "r1", Status: "Stopped",
							MemoryMiB: 1, CPUCount: 1, DomainType: "xen_pvm", CreatedAt: now})
					})
					if err != nil {
						return fmt.Errorf("write during the snapshot: %w", err)
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(names) != n || names[10] != "vm-010" || names[20] != "vm-020" {
			t.Fatalf("snapshot listed %d VMs (%v ...), want the %d of its moment in order", len(names), names[:min(len(names), 25)], n)
		}
		for i, name := range names {
			if want := fmt.Sprintf("vm-%03d", i); name != want {
				t.Fatalf("row %d is %s, want %s", i, name, want)
			}
		}
		if statuses[20] != "Stopped" {
			t.Fatalf("vm-020 listed %s, want Stopped, its state at the snapshot's moment", statuses[20])
		}
		// Stopping early: the rows are closed and the next snapshot sees
		// the writes.
		var first string
		err = s.Snapshot(ctx, func(q *Queries) error {
			for v, err := range q.EachVMSummary(ctx) {
				if err != nil {
					return err
				}
				first = v.Name
				break
			}
			count := 0
			for _, err := range q.EachVMSummary(ctx) {
				if err != nil {
					return err
				}
				count++
			}
			if count != n {
				return fmt.Errorf("second read in the snapshot: %d VMs, want %d", count, n)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if first != "a-new" {
			t.Fatalf("a later snapshot starts at %q, want the VM written meanwhile, a-new", first)
		}
	})
}

// TestSnapshotIsReadOnly: a write through a Snapshot's queries fails,
// on both engines, and leaves nothing.
func TestSnapshotIsReadOnly(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		err := s.Snapshot(ctx, func(q *Queries) error {
			return q.InsertServerPool(ctx, ServerPool{ID: "p1", Name: "pool", CreatedAt: time.Now()})
		})
		if err == nil {
			t.Fatal("a write inside a Snapshot succeeded")
		}
		pools, err := s.Read().ServerPools(ctx)
		if err != nil || len(pools) != 0 {
			t.Fatalf("after the refused write: %d pools, %v", len(pools), err)
		}
	})
}
