package store

import (
	"context"
	"testing"
)

// The settings row exists from the migration on, with its defaults (no
// import networks, 4 evacuation migrations at once, 4 copies of clones at
// once per server and 8 per repository, passwords remembered 300 s), keeps
// what is written across a reopen, and refuses a parallelism out of 1..64
// and a password cache out of 0..86400 s.
func TestManagerSettings(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		defaults := ManagerSettings{EvacuationParallelism: 4, CloneParallelismPerServer: 4, CloneParallelismPerRepository: 8, PasswordCacheSeconds: 300}
		got, err := s.Read().ManagerSettings(ctx)
		if err != nil || got != defaults {
			t.Fatalf("settings of a new database = %+v, %v; want the defaults", got, err)
		}
		for _, bad := range []int{0, 65} {
			for _, set := range []func(*ManagerSettings){
				func(s *ManagerSettings) { s.EvacuationParallelism = bad },
				func(s *ManagerSettings) { s.CloneParallelismPerServer = bad },
				func(s *ManagerSettings) { s.CloneParallelismPerRepository = bad },
			} {
				settings := defaults
				set(&settings)
				err := s.Write(ctx, func(q *Queries) error { return q.UpdateManagerSettings(ctx, settings) })
				if err == nil {
					t.Fatalf("settings %+v were written", settings)
				}
			}
		}
		for _, bad := range []int{-1, 86401} {
			settings := defaults
			settings.PasswordCacheSeconds = bad
			if err := s.Write(ctx, func(q *Queries) error { return q.UpdateManagerSettings(ctx, settings) }); err == nil {
				t.Fatalf("settings %+v were written", settings)
			}
		}
		want := ManagerSettings{ImportAllowedNetworks: "10.1.0.0/16,fd00:1::/64", EvacuationParallelism: 9,
			CloneParallelismPerServer: 2, CloneParallelismPerRepository: 3, PasswordCacheSeconds: 0}
		if err := s.Write(ctx, func(q *Queries) error { return q.UpdateManagerSettings(ctx, want) }); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s2, err := Open(ctx, db.target)
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		if got, err := s2.Read().ManagerSettings(ctx); err != nil || got != want {
			t.Fatalf("settings after reopen = %+v, %v; want %+v", got, err, want)
		}
	})
}
