package store

import (
	"context"
	"testing"
)

// The settings row exists from the migration on, with its defaults (no
// import networks, 4 evacuation migrations at once), keeps what is written
// across a reopen, and refuses an evacuation parallelism out of 1..64.
func TestManagerSettings(t *testing.T) {
	s, path := openTemp(t)
	ctx := context.Background()
	got, err := s.Read().ManagerSettings(ctx)
	if err != nil || got != (ManagerSettings{EvacuationParallelism: 4}) {
		t.Fatalf("settings of a new database = %+v, %v; want the defaults", got, err)
	}
	for _, bad := range []int{0, 65} {
		err := s.Write(ctx, func(q *Queries) error {
			return q.UpdateManagerSettings(ctx, ManagerSettings{EvacuationParallelism: bad})
		})
		if err == nil {
			t.Fatalf("evacuation parallelism %d was written", bad)
		}
	}
	want := ManagerSettings{ImportAllowedNetworks: "10.1.0.0/16,fd00:1::/64", EvacuationParallelism: 9}
	if err := s.Write(ctx, func(q *Queries) error { return q.UpdateManagerSettings(ctx, want) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got, err := s2.Read().ManagerSettings(ctx); err != nil || got != want {
		t.Fatalf("settings after reopen = %+v, %v; want %+v", got, err, want)
	}
}
