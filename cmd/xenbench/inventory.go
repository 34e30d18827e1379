package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"xenmanager/backend"
	"xenmanager/store"
)

const (
	benchPool = "bench-pool"
	benchRepo = "bench-repo"
)

// populateVMs writes VMs vm-from .. vm-(to-1), Stopped, straight into the
// manager's database (a SQLite file in the directory data, or the
// PostgreSQL database of the URL dsn; the manager must not be running),
// with a pool and a repository (in data) to hold them (created on first
// use). Writing rows directly is what lets the harness build 100,000 VMs
// in seconds; the manager reads them as its own. On PostgreSQL it then
// analyses the database (analyze).
func populateVMs(ctx context.Context, data, dsn string, from, to int) error {
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	target := dsn
	if target == "" {
		target = filepath.Join(data, "manager.db")
	}
	st, err := store.Open(ctx, target)
	if err != nil {
		return err
	}
	defer st.Close()
	var poolID, repoID string
	pools, err := st.Read().ServerPoolsByName(ctx, benchPool)
	if err != nil {
		return err
	}
	if len(pools) > 0 {
		poolID = pools[0].ID
		repos, err := st.Read().RepositoriesByName(ctx, benchRepo)
		if err != nil || len(repos) == 0 {
			return fmt.Errorf("repository %s: %v", benchRepo, err)
		}
		repoID = repos[0].ID
	} else {
		poolID, repoID = backend.NewID(backend.TypeServerPool), backend.NewID(backend.TypeRepository)
		now := time.Now()
		err := st.Write(ctx, func(q *store.Queries) error {
			if err := q.InsertServerPool(ctx, store.ServerPool{ID: poolID, Name: benchPool, CreatedAt: now}); err != nil {
				return err
			}
			dir := filepath.Join(data, "bench-repository")
			return q.InsertRepository(ctx, store.Repository{ID: repoID, Name: benchRepo, PoolID: poolID,
				FSLocation: dir, MountPoint: dir, CreatedAt: now})
		})
		if err != nil {
			return fmt.Errorf("pool and repository: %w", err)
		}
	}
	const chunk = 10000
	for lo := from; lo < to; lo += chunk {
		hi := min(lo+chunk, to)
		now := time.Now()
		err := st.Write(ctx, func(q *store.Queries) error {
			for i := lo; i < hi; i++ {
				if err := q.InsertVM(ctx, store.VM{ID: backend.NewID(backend.TypeVM), Name: fmt.Sprintf("vm-%d", i),
					PoolID: poolID, RepoID: repoID, Status: backend.VMStopped, MemoryMiB: 1024, CPUCount: 1,
					DomainType: "XEN_HVM", CreatedAt: now}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("insert VMs %d-%d: %w", lo, hi-1, err)
		}
	}
	if dsn != "" {
		return analyze(ctx, dsn)
	}
	return nil
}
