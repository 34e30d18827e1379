package backend_test

import (
	"context"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
)

// BenchmarkJobLocksOnPostgres: one job after another on one object, doing
// nothing, on a PostgreSQL store: with the object locks shared between
// managers (a write per job to record them, their delete in the job's end)
// and with the process's lock table alone: what a job pays for sharing.
func BenchmarkJobLocksOnPostgres(b *testing.B) {
	for _, shared := range []bool{true, false} {
		name := "shared"
		if !shared {
			name = "process-only"
		}
		b.Run(name, func(b *testing.B) {
			c := managertest.Open(b, managertest.Options{Postgres: true})
			if !shared {
				c.Manager.DropSharedLocks()
			}
			ctx := c.Admin()
			op := func(context.Context, backend.JobRun) (any, error) { return nil, nil }
			for b.Loop() {
				if _, err := c.Manager.RunJob(ctx, "bench", []string{"vm-1"}, op); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
