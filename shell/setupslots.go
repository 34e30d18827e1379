package shell

import (
	"context"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
)

// DefaultSessionSetups is how many login checks and interactive session
// setups run at once when Limits.SessionSetups is zero: one fewer than the
// processors Go runs on, at least one. A password check is tens of
// milliseconds of bcrypt; a setup (the key checked again, the front-end
// process started, its first prompt answered) a few milliseconds of the
// manager's CPU and tens of the new process's. A storm of logins that
// check and set up all at once takes every processor, and the jobs in
// flight (a batch's store writes and agent calls, each a short turn on a
// processor) queue behind them at every step. In slots the storm queues
// instead, and a processor stays with the jobs.
func DefaultSessionSetups() int { return max(1, runtime.GOMAXPROCS(0)-1) }

// maxSetupHold bounds how long one setup keeps its slot: a front-end that
// has not asked for its first prompt by then (a machine so loaded that it
// has not run yet) lets the next setup begin, and goes on outside the slot.
const maxSetupHold = 5 * time.Second

// setupSlots bounds the interactive session setups in progress.
type setupSlots struct {
	sem  *semaphore.Weighted // a unit per setup in progress
	hold time.Duration       // how long a setup keeps its slot at most (maxSetupHold)
}

func newSetupSlots(n int) setupSlots {
	return setupSlots{sem: semaphore.NewWeighted(int64(n)), hold: maxSetupHold}
}

// take waits for a slot, or until ctx ends (false). release gives the slot
// back; it may be called more than once, and is called by itself after
// hold.
func (s setupSlots) take(ctx context.Context) (release func(), ok bool) {
	if s.sem.Acquire(ctx, 1) != nil {
		return func() {}, false
	}
	var once sync.Once
	free := func() { once.Do(func() { s.sem.Release(1) }) }
	t := time.AfterFunc(s.hold, free)
	return func() {
		t.Stop()
		free()
	}, true
}

// do runs f in a slot, or returns false without running it once ctx ends.
func (s setupSlots) do(ctx context.Context, f func()) bool {
	release, ok := s.take(ctx)
	if !ok {
		return false
	}
	defer release()
	f()
	return true
}
