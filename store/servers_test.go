package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// SetPoolMaster leaves exactly one master in the pool, touches no other
// pool, and changes nothing for a server that is not a member.
func TestSetPoolMaster(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		now := time.Now()
		err := s.Write(ctx, func(q *Queries) error {
			for _, p := range []string{"p1", "p2"} {
				if err := q.InsertServerPool(ctx, ServerPool{ID: p, Name: p, CreatedAt: now}); err != nil {
					return err
				}
			}
			for _, m := range []struct{ id, pool string }{{"s1", "p1"}, {"s2", "p1"}, {"s3", "p2"}, {"s4", ""}} {
				if _, err := q.UpsertServer(ctx, Server{ID: m.id, Name: m.id, UniqueID: "uid-" + m.id, Address: "127.0.0.1", Port: 1,
					AgentPassword: []byte{1}, Status: "Running", CreatedAt: now}); err != nil {
					return err
				}
				if err := q.SetServerPool(ctx, m.id, m.pool); err != nil {
					return err
				}
			}
			return q.UpdateServerSettings(ctx, Server{ID: "s3", Name: "s3", IsMaster: true})
		})
		if err != nil {
			t.Fatal(err)
		}
		masters := func() map[string]bool {
			t.Helper()
			all, err := s.Read().Servers(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]bool{}
			for _, srv := range all {
				if srv.IsMaster {
					out[srv.ID] = true
				}
			}
			return out
		}
		tests := []struct {
			pool, server string
			err          error
			want         []string
		}{
			{"p1", "s1", nil, []string{"s1", "s3"}},
			{"p1", "s2", nil, []string{"s2", "s3"}},
			{"p1", "s3", ErrNotFound, []string{"s2", "s3"}}, // a member of another pool
			{"p1", "s4", ErrNotFound, []string{"s2", "s3"}}, // in no pool
			{"p1", "nope", ErrNotFound, []string{"s2", "s3"}},
		}
		for _, tc := range tests {
			err := s.Write(ctx, func(q *Queries) error { return q.SetPoolMaster(ctx, tc.pool, tc.server) })
			if !errors.Is(err, tc.err) {
				t.Fatalf("SetPoolMaster(%s, %s) = %v, want %v", tc.pool, tc.server, err, tc.err)
			}
			got := masters()
			if len(got) != len(tc.want) || !got[tc.want[0]] || !got[tc.want[1]] {
				t.Fatalf("after SetPoolMaster(%s, %s) the masters are %v, want %v", tc.pool, tc.server, got, tc.want)
			}
		}
	})
}
