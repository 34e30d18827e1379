package commands

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"xenmanager/backend"
)

// BenchmarkShowVM is figure 2 of make bench without SSH: show Vm by name,
// one command after another in one session over 10,000 VMs, written to
// io.Discard: the manager's own share of a batch line.
func BenchmarkShowVM(b *testing.B) {
	m, actor := benchManager(b, 10000)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := backend.WithActor(context.Background(), actor)
	s := NewSession(ctx, Default, m, actor, io.Discard, Options{Log: quiet})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if o := s.RunLine(ctx, fmt.Sprintf("show Vm name=vm-%d", i%10000)); o != OK {
			b.Fatalf("show Vm: outcome %d", o)
		}
	}
}
