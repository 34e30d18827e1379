package backend_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
	"xenmanager/store"
)

// TestStreamVMsScopeAndFilter: list Vm's stream passes each row through
// the filter and the actor's pools as it reads it, on both engines: an
// Operator sees the VMs of their pool only, a filter narrows the rows,
// a filter naming nothing fails before any row, and a consumer that
// stops early ends the listing.
func TestStreamVMsScopeAndFilter(t *testing.T) {
	for _, pg := range []bool{false, true} {
		t.Run(map[bool]string{false: "sqlite", true: "postgres"}[pg], func(t *testing.T) {
			c := managertest.Open(t, managertest.Options{Postgres: pg})
			admin, m := c.Admin(), c.Manager
			// A repository needs a server to be created through the
			// manager: the rows go behind its back.
			now := time.Now()
			pools := map[string]string{}
			for _, name := range []string{"poolA", "poolB"} {
				pools[name] = c.CreatePool(name).ID
			}
			err := c.Store.Write(context.Background(), func(q *store.Queries) error {
				for name, pid := range pools {
					if err := q.InsertRepository(context.Background(), store.Repository{ID: "r" + pid, Name: "repo" + name, PoolID: pid,
						FSLocation: "/x/" + name, MountPoint: "/OVS/Repositories/" + name, CreatedAt: now}); err != nil {
						return err
					}
				}
				for i := range 30 {
					pid := pools[[]string{"poolA", "poolB"}[i%2]]
					rid := "r" + pid
					v := store.VM{ID: fmt.Sprintf("vm%04d", i), Name: fmt.Sprintf("vm-%02d", i), PoolID: pid, RepoID: rid,
						Status: "Stopped", MemoryMiB: 512, CPUCount: 1, DomainType: "xen_pvm", CreatedAt: now}
					if err := q.InsertVM(context.Background(), v); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.CreateUser(admin, "op", "a long password", backend.RoleOperator); err != nil {
				t.Fatal(err)
			}
			if _, err := m.AddUserToPool(admin, backend.Ref{Name: "op"}, backend.Ref{Name: "poolA"}); err != nil {
				t.Fatal(err)
			}
			op := backend.WithActor(context.Background(), backend.Actor{User: "op", Role: backend.RoleOperator})
			names := func(ctx context.Context, f backend.Filter, limit int) ([]string, error) {
				l, err := m.StreamVMs(ctx, f)
				if err != nil {
					return nil, err
				}
				var out []string
				for v, err := range l.All(context.Background()) {
					if err != nil {
						return out, err
					}
					out = append(out, v.Name+"@"+v.Pool.Name)
					if len(out) == limit {
						break
					}
				}
				return out, nil
			}
			for _, tc := range []struct {
				name   string
				ctx    context.Context
				f      backend.Filter
				limit  int
				want   int
				first  string
				failed bool
			}{
				{name: "admin sees every VM", ctx: admin, want: 30, first: "vm-00@poolA"},
				{name: "operator sees their pool's", ctx: op, want: 15, first: "vm-00@poolA"},
				{name: "filter by name", ctx: admin, f: backend.Filter{Name: "vm-1*"}, want: 10, first: "vm-10@poolA"},
				{name: "operator and a filter", ctx: op, f: backend.Filter{Name: "vm-1*"}, want: 5, first: "vm-10@poolA"},
				{name: "pool the operator does not see", ctx: op, f: backend.Filter{Pool: backend.Ref{Name: "poolB"}}, failed: true},
				{name: "stopped early", ctx: admin, limit: 3, want: 3, first: "vm-00@poolA"},
				{name: "filter naming nothing", ctx: admin, f: backend.Filter{Server: backend.Ref{Name: "nosuch"}}, failed: true},
			} {
				got, err := names(tc.ctx, tc.f, tc.limit)
				if tc.failed {
					if err == nil || backend.KindOf(err) != backend.KindNotFound {
						t.Errorf("%s: %d rows, error %v; want NotFound before any row", tc.name, len(got), err)
					}
					continue
				}
				if err != nil || len(got) != tc.want || tc.want > 0 && got[0] != tc.first {
					t.Errorf("%s: %v, %v; want %d rows from %s", tc.name, got, err, tc.want, tc.first)
				}
				if tc.ctx == op {
					for _, g := range got {
						if g[len(g)-5:] != "poolA" {
							t.Errorf("%s: the operator was shown %s, of a pool not theirs", tc.name, g)
						}
					}
				}
			}
		})
	}
}
