package commands

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"

	"xenmanager/backend"
)

// BenchmarkAuditedCommands is the audit log's share of the commands that
// sessions run at once: each of 64 sessions runs a change (edit ServerPool
// description=, one write, no agent) or a read (show ServerPool), each
// audited. It reports the process's CPU time and the store's write
// transactions per command.
func BenchmarkAuditedCommands(b *testing.B) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	m, st := openManager(b, quiet)
	actor := backend.Actor{User: "admin", Role: backend.RoleAdministrator, Remote: "127.0.0.1"}
	if _, err := m.CreateServerPool(backend.WithActor(context.Background(), actor), "pool", ""); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, line string }{
		{"change", "edit ServerPool name=pool description=d%d"},
		{"read", "show ServerPool name=pool"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := backend.WithActor(context.Background(), actor)
			_, t0 := st.WriteStats()
			c0 := cpuTime()
			var n atomic.Int64
			b.SetParallelism(32) // 64 sessions on 2 cores
			b.RunParallel(func(pb *testing.PB) {
				s := NewSession(ctx, Default, m, actor, io.Discard, Options{Log: quiet})
				for pb.Next() {
					i := n.Add(1)
					line := bc.line
					if bc.name == "change" {
						line = fmt.Sprintf(line, i)
					}
					if o := s.RunLine(ctx, line); o != OK {
						b.Errorf("%s: outcome %d", line, o)
						return
					}
				}
			})
			b.ReportMetric(float64((cpuTime()-c0).Microseconds())/float64(b.N), "cpu-us/cmd")
			_, t1 := st.WriteStats()
			b.ReportMetric(float64(t1-t0)/float64(b.N), "tx/cmd")
		})
	}
}
