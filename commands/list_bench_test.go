package commands

import (
	"context"
	"fmt"
	"io"
	"log/slog"
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
	m, actor := benchManager(b, 10000)
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
				if o := s.RunLine(ctx, "list Vm"); o != 0 {
					b.Fatalf("list Vm: outcome %d", o)
				}
			}
		})
	}
}
