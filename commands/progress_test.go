package commands

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/managertest"
	"xenmanager/store/pgtest"
)

// wait Job draws the progress bar of the job it waits for, in an
// interactive session: a job of the session's own manager (SQLite), and
// one another manager on the same database runs (PostgreSQL), whose
// progress the session reads from the job's row. The job is a start whose
// agent call takes its time (sim_set latency_ms on start_vm).
func TestWaitJobDrawsItsProgress(t *testing.T) {
	for _, tc := range []struct {
		name   string
		shared bool // the job runs on another manager of one PostgreSQL database
	}{{"same manager", false}, {"another manager", true}} {
		t.Run(tc.name, func(t *testing.T) {
			opts := managertest.Options{Agents: 1}
			if tc.shared {
				opts.Database = pgtest.Database(t)
				opts.SecretKeyFile = filepath.Join(t.TempDir(), "secret.key")
			}
			a := managertest.Ready(t, opts)
			waiter := a
			if tc.shared {
				opts.Agents = 0
				waiter = managertest.Open(t, opts)
			}
			ctx := a.Admin()
			v, err := a.Manager.CreateVM(ctx, backend.CreateVMRequest{Name: "g", Repository: backend.Ref{Name: managertest.Repo}, MemoryMiB: 256, CPUCount: 1})
			if err != nil {
				t.Fatal(err)
			}
			if err := a.AgentClient(0).Call(context.Background(), agentapi.MethodSimSet, nil,
				map[string]any{"latency_ms": map[string]any{agentapi.MethodStartVM: int64(2000)}}); err != nil {
				t.Fatal(err)
			}
			_, err = a.Manager.With(backend.RunOptions{Async: true}).StartVM(ctx, backend.Ref{ID: v.ID})
			id := backend.JobIDOf(err)
			if id == "" {
				t.Fatalf("asynchronous start = %v; want the job started", err)
			}

			var mu sync.Mutex // guards bars: drawn from the session's goroutine
			var bars []string
			actor := backend.Actor{User: "admin", Role: backend.RoleAdministrator}
			sctx := backend.WithActor(context.Background(), actor)
			s := NewSession(sctx, Default, waiter.Manager, actor, io.Discard, Options{Interactive: true, Progress: func(line string) {
				mu.Lock()
				bars = append(bars, line)
				mu.Unlock()
			}})
			if out := s.RunLine(sctx, "wait Job id="+id); out != OK {
				t.Fatalf("wait Job = %v", out)
			}
			mu.Lock()
			defer mu.Unlock()
			drawn := false
			for _, b := range bars {
				drawn = drawn || strings.Contains(b, "% start Vm g")
			}
			if !drawn {
				t.Fatalf("wait Job drew no bar of the start it waited for: %q", bars)
			}
		})
	}
}
