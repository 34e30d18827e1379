package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestMigrationsApplyOnceAndReopen(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		v, err := s.SchemaVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		migs, err := loadMigrations(db.engine)
		if err != nil {
			t.Fatal(err)
		}
		if v != len(migs) {
			t.Fatalf("schema version = %d, want %d", v, len(migs))
		}
		if err := s.Write(ctx, func(q *Queries) error { return q.SetMeta(ctx, "manager_uuid", "abc") }); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s2, err := Open(ctx, db.target)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer s2.Close()
		got, err := s2.Read().GetMeta(ctx, "manager_uuid")
		if err != nil || got != "abc" {
			t.Fatalf("GetMeta after reopen = %q, %v; want abc", got, err)
		}
	})
}

func TestWriteRollsBackOnError(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		boom := errors.New("boom")
		err := s.Write(ctx, func(q *Queries) error {
			if err := q.InsertServerPool(ctx, ServerPool{ID: "p1", Name: "pool", CreatedAt: time.Now()}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Write error = %v, want boom", err)
		}
		if _, err := s.Read().ServerPool(ctx, "p1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("pool after rollback: err = %v, want ErrNotFound", err)
		}
	})
}

func TestReadPoolIsQueryOnly(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		if err := s.Read().SetMeta(ctx, "k", "v"); err == nil {
			t.Fatal("write through the reader pool succeeded; want an error")
		}
	})
}

func TestConstraints(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		now := time.Now()
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(s.Write(ctx, func(q *Queries) error {
			must(q.InsertServerPool(ctx, ServerPool{ID: "p1", Name: "pool", CreatedAt: now}))
			must(q.InsertRepository(ctx, Repository{ID: "r1", Name: "repo", PoolID: "p1", FSLocation: "/x", MountPoint: "/OVS/Repositories/r1", CreatedAt: now}))
			return q.InsertUser(ctx, User{ID: "u1", Name: "admin", PasswordHash: "h", Role: "Administrator", CreatedAt: now})
		}))
		tests := []struct {
			name string
			op   func(q *Queries) error
			want error
		}{
			{"duplicate user name", func(q *Queries) error {
				return q.InsertUser(ctx, User{ID: "u2", Name: "admin", PasswordHash: "h", Role: "Viewer", CreatedAt: now})
			}, ErrConflict},
			{"vm in unknown repository", func(q *Queries) error {
				return q.InsertVM(ctx, VM{ID: "v1", Name: "vm", PoolID: "p1", RepoID: "nope", Status: "Stopped", MemoryMiB: 1, CPUCount: 1, DomainType: "xen_pvm", CreatedAt: now})
			}, ErrConflict},
			{"vm ok", func(q *Queries) error {
				return q.InsertVM(ctx, VM{ID: "v1", Name: "vm", PoolID: "p1", RepoID: "r1", Status: "Stopped", MemoryMiB: 1, CPUCount: 1, DomainType: "xen_pvm", CreatedAt: now})
			}, nil},
			{"state of unknown vm", func(q *Queries) error { return q.SetVMState(ctx, "nope", "", "Stopped") }, ErrNotFound},
			{"delete unknown vm", func(q *Queries) error { return q.DeleteVM(ctx, "nope") }, ErrNotFound},
			{"count of an unknown column", func(q *Queries) error { _, err := q.Count(ctx, "vms", "name", "x"); return err }, nil},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				err := s.Write(ctx, tc.op)
				if tc.name == "count of an unknown column" {
					if err == nil {
						t.Fatal("Count on an uncountable column succeeded")
					}
					return
				}
				if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
			})
		}
		n, err := s.Read().Count(ctx, "vms", "repo_id", "r1")
		if err != nil || n != 1 {
			t.Fatalf("Count(vms.repo_id) = %d, %v; want 1", n, err)
		}
	})
}

func TestUpsertServerKeepsIdentity(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		first := Server{ID: "s1", Name: "ovs1", UniqueID: "uid-1", Hostname: "ovs1", Address: "127.0.0.1", Port: 1000,
			AgentPassword: []byte{1}, CertSPKISHA256: "aa", Status: "Running", TotalMemoryMiB: 8192, CreatedAt: time.Now(),
			HypervisorType: "xen"}
		var got Server
		err := s.Write(ctx, func(q *Queries) error {
			if _, err := q.UpsertServer(ctx, first); err != nil {
				return err
			}
			again := first
			again.ID, again.Name, again.Port = "s2", "other", 2000
			again.HypervisorType, again.HypervisorVersion = "qemu", "8.2.2"
			var err error
			got, err = q.UpsertServer(ctx, again)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != "s1" || got.Name != "ovs1" || got.Port != 2000 {
			t.Fatalf("after rediscovery got id=%s name=%s port=%d; want s1 ovs1 2000", got.ID, got.Name, got.Port)
		}
		if got.HypervisorType != "qemu" || got.HypervisorVersion != "8.2.2" {
			t.Fatalf("after rediscovery the hypervisor is %q %q; want what the agent reports now, qemu 8.2.2", got.HypervisorType, got.HypervisorVersion)
		}
		all, err := s.Read().Servers(ctx)
		if err != nil || len(all) != 1 {
			t.Fatalf("servers = %d, %v; want 1", len(all), err)
		}
	})
}

// A data directory with URI-special characters keeps its database where it
// belongs, private. (SQLite's file.)
func TestOpenPathWithSpecialCharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a#b?c%41 d")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "manager.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Write(ctx, func(q *Queries) error { return q.SetMeta(ctx, "k", "v") }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	fi, err := os.Stat(path)
	if err != nil || fi.Size() == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("database at %s: %v, size %d, mode %v", path, err, fi.Size(), fi.Mode())
	}
	entries, err := os.ReadDir(filepath.Dir(dir))
	if err != nil || len(entries) != 1 {
		t.Fatalf("files beside the data directory: %v, %v", entries, err)
	}
}
