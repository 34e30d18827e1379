package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"xenmanager/backend"
	"xenmanager/commands"
	"xenmanager/store"
)

// typedLine is what the operator types, one keystroke at a time.
const typedLine = "start Vm name=vm-99"

// completion is the second half of figure 5: the manager's side of live
// completion per keystroke with 100,000 VMs, timed in-process against the
// same database (the manager stopped): for each prefix of typedLine, what
// the manager does for a front-end's completion request
// (shell/interactive.go): commands.Default.Complete with names from
// backend.Manager.ObjectNames. The termproto round trip and go-prompt's
// rendering in the front-end are not included.
func (b *bench) completion(ctx context.Context, data string) {
	measure := "completion per keystroke, 100,000 VMs (manager side, in-process)"
	fmt.Println("\n== figure 5:", measure)
	st, err := store.Open(ctx, filepath.Join(data, "manager.db"))
	if err != nil {
		b.res.fail("5", measure, err)
		return
	}
	defer st.Close()
	sealer, err := backend.LoadOrCreateSealer(filepath.Join(data, "secret.key"))
	if err != nil {
		b.res.fail("5", measure, err)
		return
	}
	mgr, err := backend.New(ctx, backend.Config{Store: st, Sealer: sealer, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.res.fail("5", measure, err)
		return
	}
	defer mgr.Close()
	actx := backend.WithActor(ctx, backend.Actor{User: "admin", Role: backend.RoleAdministrator, Remote: "xenbench"})
	names := func(q commands.NameQuery) []string {
		return mgr.ObjectNames(actx, q.Type, q.Prefix, q.Limit, q.States)
	}
	// Warm-up: page cache and statement caches.
	for i := 1; i <= len(typedLine); i++ {
		commands.Default.Complete(typedLine[:i], names)
	}
	if b.profile != "" {
		f, err := os.Create(filepath.Join(b.profile, "completion.cpu.pprof"))
		if err == nil {
			pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	var times []float64
	offered := 0
	for range b.plan.keystrokes {
		for i := 1; i <= len(typedLine); i++ {
			t0 := time.Now()
			_, sugs := commands.Default.Complete(typedLine[:i], names)
			times = append(times, ms(time.Since(t0)))
			if i == len("start Vm name=") {
				offered = len(sugs)
			}
		}
		if ctx.Err() != nil {
			return
		}
	}
	med, p99 := median(times), percentile(times, 99)
	b.res.add(row{Fig: "5", Measure: measure + ", median", Value: fmtMS(med), Target: "< 10 ms", Met: yesNo(med < 10)})
	b.res.add(row{Fig: "5", Measure: measure + ", p99", Value: fmtMS(p99), Target: "< 10 ms", Met: yesNo(p99 < 10)})
	b.res.note("figure 5 completion: %d keystrokes (the line %q typed %d times); `start Vm name=` offers %d names; "+
		"excludes the termproto socket round trip and go-prompt's rendering in the front-end", len(times), typedLine,
		b.plan.keystrokes, offered)
}
