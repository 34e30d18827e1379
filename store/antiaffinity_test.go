package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// The peers of a VM are the other members of each of its groups, with
// where they are; memberships go with their VM, and groups with their
// pool; a member added twice or of a VM that is not there is a conflict.
// The VMs in a group are those with a membership, and a membership that
// goes with its VM or group changes the inventory's generation, which
// placement keeps that set under.
func TestAntiAffinityMembership(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		now := time.Now()
		must := func(what string, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		}
		must("seed", s.Write(ctx, func(q *Queries) error {
			for _, err := range []error{
				q.InsertServerPool(ctx, ServerPool{ID: "p1", Name: "pool1", CreatedAt: now}),
				q.InsertRepository(ctx, Repository{ID: "r1", Name: "repo", PoolID: "p1", FSLocation: "/x", MountPoint: "/m", CreatedAt: now}),
			} {
				if err != nil {
					return err
				}
			}
			for _, id := range []string{"s1", "s2"} {
				if _, err := q.UpsertServer(ctx, Server{ID: id, Name: "ovs-" + id, UniqueID: "u-" + id, Address: "127.0.0.1", Port: 1,
					AgentPassword: []byte{1}, Status: "Running", CreatedAt: now}); err != nil {
					return err
				}
			}
			for _, v := range []struct{ id, server string }{{"a", "s1"}, {"b", "s2"}, {"c", ""}, {"d", "s1"}} {
				if err := q.InsertVM(ctx, VM{ID: v.id, Name: "vm-" + v.id, PoolID: "p1", RepoID: "r1", ServerID: v.server, Status: "Running",
					MemoryMiB: 1, CPUCount: 1, DomainType: "xen_pvm", CreatedAt: now}); err != nil {
					return err
				}
			}
			for _, g := range []string{"g1", "g2"} {
				if err := q.InsertAntiAffinityGroup(ctx, AntiAffinityGroup{ID: g, Name: "grp-" + g, PoolID: "p1", CreatedAt: now}); err != nil {
					return err
				}
			}
			for _, m := range [][2]string{{"g1", "a"}, {"g1", "b"}, {"g1", "c"}, {"g2", "a"}, {"g2", "d"}} {
				if err := q.AddAntiAffinityMember(ctx, m[0], m[1], now); err != nil {
					return err
				}
			}
			if err := q.InsertTag(ctx, Tag{ID: "t1", Name: "prod", CreatedAt: now}); err != nil {
				return err
			}
			return q.TagObject(ctx, "t1", "g2", "AntiAffinityGroup")
		}))

		peers := func(vm string) []string {
			t.Helper()
			l, err := s.Read().AntiAffinityPeers(ctx, vm)
			must("peers", err)
			var out []string
			for _, p := range l {
				out = append(out, p.GroupName+":"+p.VMName+"@"+p.ServerID)
			}
			return out
		}
		for _, c := range []struct {
			vm   string
			want []string
		}{
			{"a", []string{"grp-g1:vm-b@s2", "grp-g1:vm-c@", "grp-g2:vm-d@s1"}},
			{"b", []string{"grp-g1:vm-a@s1", "grp-g1:vm-c@"}},
			{"d", []string{"grp-g2:vm-a@s1"}},
			{"nobody", nil},
		} {
			if got := peers(c.vm); !slices.Equal(got, c.want) {
				t.Errorf("peers of %s = %q, want %q", c.vm, got, c.want)
			}
		}

		grouped := func() []string {
			t.Helper()
			ids, err := s.Read().AntiAffinityGroupedVMs(ctx)
			must("grouped VMs", err)
			slices.Sort(ids)
			return ids
		}
		if got, want := grouped(), []string{"a", "b", "c", "d"}; !slices.Equal(got, want) {
			t.Errorf("grouped VMs = %q, want %q", got, want)
		}

		for _, c := range []struct {
			what string
			err  error
			want error
		}{
			{"a member added twice", s.Write(ctx, func(q *Queries) error { return q.AddAntiAffinityMember(ctx, "g1", "a", now) }), ErrConflict},
			{"a VM that is not there", s.Write(ctx, func(q *Queries) error { return q.AddAntiAffinityMember(ctx, "g1", "zz", now) }), ErrConflict},
			{"a group that is not there", s.Write(ctx, func(q *Queries) error { return q.AddAntiAffinityMember(ctx, "gz", "a", now) }), ErrConflict},
			{"a group in no pool", s.Write(ctx, func(q *Queries) error {
				return q.InsertAntiAffinityGroup(ctx, AntiAffinityGroup{ID: "g3", Name: "x", PoolID: "pz", CreatedAt: now})
			}), ErrConflict},
			{"removing a non-member", s.Write(ctx, func(q *Queries) error { return q.RemoveAntiAffinityMember(ctx, "g2", "b") }), ErrNotFound},
		} {
			if !errors.Is(c.err, c.want) {
				t.Errorf("%s = %v, want %v", c.what, c.err, c.want)
			}
		}

		// Deleting a VM takes it out of its groups, and that changes the
		// generation (a foreign key's cascade, seen by SQLite's hook and
		// PostgreSQL's trigger alike).
		gen := s.InventoryGeneration()
		must("delete vm-b", s.Write(ctx, func(q *Queries) error { return q.DeleteVM(ctx, "b") }))
		if s.InventoryGeneration() == gen {
			t.Errorf("deleting a member VM left the inventory's generation at %d", gen)
		}
		if got, want := peers("a"), []string{"grp-g1:vm-c@", "grp-g2:vm-d@s1"}; !slices.Equal(got, want) {
			t.Errorf("peers of a after vm-b was deleted = %q, want %q", got, want)
		}
		if n, err := s.Read().CountAntiAffinityMembers(ctx, "g1"); err != nil || n != 2 {
			t.Errorf("members of g1 after vm-b was deleted = %d, %v; want 2", n, err)
		}
		// Deleting a group takes its tags off, and its members out.
		must("delete g2", s.Write(ctx, func(q *Queries) error { return q.DeleteAntiAffinityGroup(ctx, "g2") }))
		if got, want := grouped(), []string{"a", "c"}; !slices.Equal(got, want) {
			t.Errorf("grouped VMs after vm-b and g2 were deleted = %q, want %q", got, want)
		}
		if tags, err := s.Read().ObjectTags(ctx, "g2"); err != nil || len(tags) != 0 {
			t.Errorf("tags of the deleted group = %q, %v; want none", tags, err)
		}
		// A pool emptied of VMs and repositories goes with its groups.
		must("empty the pool", s.Write(ctx, func(q *Queries) error {
			for _, id := range []string{"a", "c", "d"} {
				if err := q.DeleteVM(ctx, id); err != nil {
					return err
				}
			}
			if err := q.DeleteRepository(ctx, "r1"); err != nil {
				return err
			}
			for _, id := range []string{"s1", "s2"} {
				if err := q.DeleteServer(ctx, id); err != nil {
					return err
				}
			}
			return q.DeleteServerPool(ctx, "p1")
		}))
		if groups, err := s.Read().AntiAffinityGroups(ctx); err != nil || len(groups) != 0 {
			t.Errorf("groups after their pool was deleted = %v, %v; want none", groups, err)
		}
	})
}
