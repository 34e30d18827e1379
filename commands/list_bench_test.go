package commands

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
	"xenmanager/store"
)

// openManager returns a manager core (managertest.Open, without agents)
// logging to log, with the production agent timeout, and the store under
// it: the in-process figures measure what xenmanager serve runs.
func openManager(tb testing.TB, log *slog.Logger) (*backend.Manager, *store.Store) {
	tb.Helper()
	c := managertest.Open(tb, managertest.Options{Logger: log, AgentTimeout: 30 * time.Second})
	return c.Manager, c.Store
}

// benchManager returns a manager over a new database holding n Stopped VMs
// in one pool and repository, and its administrator.
func benchManager(b *testing.B, n int) (*backend.Manager, backend.Actor) {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	m, st := openManager(b, slog.New(slog.NewTextHandler(io.Discard, nil)))
	poolID, repoID, now := backend.NewID(backend.TypeServerPool), backend.NewID(backend.TypeRepository), time.Now()
	err := st.Write(ctx, func(q *store.Queries) error {
		if err := q.InsertServerPool(ctx, store.ServerPool{ID: poolID, Name: "pool", CreatedAt: now}); err != nil {
			return err
		}
		if err := q.InsertRepository(ctx, store.Repository{ID: repoID, Name: "repo", PoolID: poolID, FSLocation: dir, MountPoint: dir, CreatedAt: now}); err != nil {
			return err
		}
		for i := range n {
			if err := q.InsertVM(ctx, store.VM{ID: backend.NewID(backend.TypeVM), Name: fmt.Sprintf("vm-%d", i), PoolID: poolID, RepoID: repoID,
				Status: backend.VMStopped, MemoryMiB: 1024, CPUCount: 1, DomainType: "XEN_HVM", CreatedAt: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return m, backend.Actor{User: "admin", Role: backend.RoleAdministrator, Remote: "127.0.0.1"}
}

// BenchmarkListVMs is figure 3 of make bench without SSH: list Vm over
// 10,000 VMs in each output mode (and Json's version 2), written to
// io.Discard.
func BenchmarkListVMs(b *testing.B) {
	m, _ := benchManager(b, 10000)
	benchListing(b, m, "list Vm")
}

// padding makes an event's description as long as a real one that quotes
// an agent's fault.
var padding = strings.Repeat("the agent reported the domain's state as it found it; ", 6)

// seedEvents records n events of no pool, newest last.
func seedEvents(t testing.TB, st *store.Store, n int) {
	t.Helper()
	ctx := context.Background()
	at := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	err := st.Write(ctx, func(q *store.Queries) error {
		for i := range n {
			if err := q.InsertEvent(ctx, store.Event{ID: fixedID(backend.TypeEvent, i+1), Severity: "Info", Kind: "VmStateChanged",
				ObjectType: "Vm", ObjectID: fixedID(backend.TypeVM, i%97), ObjectName: fmt.Sprintf("vm-%d", i%97),
				Description: fmt.Sprintf("the VM vm-%d changed state outside the manager (event %d): %s", i%97, i, padding),
				CreatedAt:   at.Add(time.Duration(i) * time.Second)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkListEvents is figure 3's measure for another listing: list
// Event over 10,000 events (list Event's largest limit) in Sparse and
// Json, written to io.Discard.
func BenchmarkListEvents(b *testing.B) {
	m, st := openManager(b, slog.New(slog.NewTextHandler(io.Discard, nil)))
	seedEvents(b, st, 10000)
	benchListing(b, m, "list Event all=Yes limit=10000")
}

// BenchmarkListVirtualDisks: list VirtualDisk over 10,000 disks, half of
// them in a VM: a listing that reads more for each row (the disk's VMs).
func BenchmarkListVirtualDisks(b *testing.B) {
	m, st := openManager(b, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	at := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	err := st.Write(ctx, func(q *store.Queries) error {
		pool, repo, err := insertPoolAndRepo(ctx, q, at)
		if err != nil {
			return err
		}
		for i := range 10000 {
			d := store.VirtualDisk{ID: fixedID(backend.TypeVirtualDisk, i+1), Name: fmt.Sprintf("disk-%05d", i), RepoID: repo, SizeMiB: 1024, CreatedAt: at}
			if err := q.InsertVirtualDisk(ctx, d); err != nil {
				return err
			}
			if i%2 == 1 {
				continue
			}
			vm := fixedID(backend.TypeVM, i+1)
			if err := q.InsertVM(ctx, store.VM{ID: vm, Name: fmt.Sprintf("vm-%05d", i), PoolID: pool, RepoID: repo, Status: backend.VMStopped,
				MemoryMiB: 1024, CPUCount: 1, DomainType: "XEN_HVM", CreatedAt: at}); err != nil {
				return err
			}
			if err := q.InsertDiskMapping(ctx, store.DiskMapping{ID: fixedID(backend.TypeDiskMapping, i+1), VMID: vm, DiskID: d.ID, CreatedAt: at}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	benchListing(b, m, "list VirtualDisk")
}

// benchListing runs line in Sparse, Json and Json version 2 as an
// administrator, to io.Discard.
func benchListing(b *testing.B, m *backend.Manager, line string) {
	actor := backend.Actor{User: "admin", Role: backend.RoleAdministrator, Remote: "127.0.0.1"}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, mode := range []struct{ name, set string }{
		{ModeSparse, "set outputMode=Sparse"}, {ModeJSON, "set outputMode=Json"}, {"Json2", "set outputMode=Json; set jsonVersion=2"},
	} {
		b.Run(mode.name, func(b *testing.B) {
			ctx := backend.WithActor(context.Background(), actor)
			s := NewSession(ctx, Default, m, actor, io.Discard, Options{Log: quiet})
			s.RunLine(ctx, mode.set)
			b.ReportAllocs()
			for b.Loop() {
				if o := s.RunLine(ctx, line); o != 0 {
					b.Fatalf("%s: outcome %d", line, o)
				}
			}
		})
	}
}
