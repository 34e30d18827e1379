package commands

// This file times a command: its handler runs under commandTimeout and
// the session waits for it, drawing progress, at most that long.

import (
	"context"
	"sync"
	"time"

	"xenmanager/backend"
)

// execute runs cmd's handler on behalf of the session's user and waits for
// it at most commandTimeout. Changes run as backend jobs, detached from the
// session: a client that goes away or stops waiting never leaves one
// half-done. finished is false when the handler did not return in time
// (it was not a job, or did not honour its context).
func (s *Session) execute(ctx context.Context, cmd *Command) (res *Result, err error, finished bool) {
	type outcome struct {
		res *Result
		err error
	}
	done := make(chan outcome, 1)
	settings := s.settings
	var run backend.RunOptions
	if settings.CommandMode == "Asynchronous" {
		run.Async = true
	}
	var jobsMu sync.Mutex // guards jobs: the observer runs in the handler's goroutines
	var jobs []string
	if s.opts.Progress != nil {
		run.Observe = func(id string) {
			jobsMu.Lock()
			jobs = append(jobs, id)
			jobsMu.Unlock()
		}
	}
	b := s.backend
	if b != nil {
		b = b.With(run)
	}
	x := &Exec{Cmd: cmd, Backend: b, Actor: s.actor, Registry: s.reg, Session: s, Settings: &settings, Terminal: s.opts.Terminal}
	hctx := backend.WithActor(ctx, s.actor)
	if s.running != nil {
		hctx = backend.WithAudit(hctx, s.running)
	}
	timeout := settings.CommandTimeout // read before the handler may change its copy
	hctx, cancel := context.WithTimeout(hctx, timeout)
	defer cancel()
	go func() {
		r, e := cmd.Spec.Run(hctx, x)
		done <- outcome{r, e}
	}()
	// Handlers end soon after their context; the grace covers one that
	// does not, so that the session never hangs on it.
	grace := time.NewTimer(timeout + 5*time.Second)
	defer grace.Stop()
	var tick <-chan time.Time
	if s.opts.Progress != nil {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		tick = t.C
		defer s.opts.Progress("")
	}
	for {
		select {
		case o := <-done:
			s.settings = *x.Settings
			return o.res, o.err, true
		case <-tick:
			jobsMu.Lock()
			watched := append([]string(nil), jobs...)
			jobsMu.Unlock()
			s.drawProgress(ctx, watched)
		case <-grace.C:
			return nil, nil, false
		case <-ctx.Done():
			// Interrupted (Ctrl-C) or the client left: the handler ends soon
			// after its context, naming the job that goes on; wait for that.
			select {
			case o := <-done:
				s.settings = *x.Settings
				return o.res, o.err, true
			case <-time.After(2 * time.Second):
				return nil, nil, false
			}
		}
	}
}
