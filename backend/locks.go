package backend

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// lockTable serialises operations on one object (a VM being started is not
// deleted at the same time). Each key holds a one-slot channel and, while
// taken, who holds it, so that a waiter that gives up can say. Jobs take
// its locks, and so do heartbeats and reconciliation, outside any job: it
// is the piece the job runner shares with them.
//
// On a store several managers share (PostgreSQL) the table is the first
// level only: a job, once it holds its objects here, also records them in
// the store (object_locks), and an operation waits for, or skips, objects
// a Running job of another manager holds there (see sharedLocks).
type lockTable struct {
	mu      sync.Mutex // guards slots and holders
	slots   map[string]chan struct{}
	holders map[string]holder
	// shared is the second level on a shared store; nil on SQLite, where
	// one manager runs. Set at construction, never changed.
	shared *sharedLocks
}

// holder is the job that holds a lock.
type holder struct {
	jobID, summary string
	since          time.Time
}

// lockWait bounds how long an operation waits for another one on the same
// object before it gives up (the caller's context may end it sooner: the
// command layer gives it commandTimeout).
const lockWait = 5 * time.Minute

// lock takes key for an operation that is not a job. On a shared store it
// then waits, as long as ctx allows, until no Running job of another
// manager holds key: the heartbeats and reconciliation give it a moment
// and skip the object (until the next round) when it is held, an operation
// within a job waits as for its own locks.
func (l *lockTable) lock(ctx context.Context, key string) (func(), error) {
	start := time.Now()
	unlock, err := l.lockFor(ctx, key, holder{summary: "an internal operation", since: start})
	if err != nil || l.shared == nil {
		return unlock, err
	}
	wctx, cancel := context.WithDeadline(ctx, start.Add(lockWait))
	defer cancel()
	if err := l.shared.waitFree(wctx, key); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

// slot returns key's slot, made on first use.
func (l *lockTable) slot(key string) chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.slots == nil {
		l.slots = map[string]chan struct{}{}
		l.holders = map[string]holder{}
	}
	slot, ok := l.slots[key]
	if !ok {
		slot = make(chan struct{}, 1)
		l.slots[key] = slot
	}
	return slot
}

// taken records h as the holder of key, whose slot h has just filled, and
// returns the func that releases it.
func (l *lockTable) taken(key string, slot chan struct{}, h holder) func() {
	l.mu.Lock()
	l.holders[key] = h
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		delete(l.holders, key)
		l.mu.Unlock()
		<-slot
	}
}

// tryLockAll takes the locks of keys for h if every one is free now,
// without waiting, and returns the func that releases them; nil, holding
// none, when one is taken. It takes the process locks only: a job on a
// shared store records them in the store itself (jobRunner.run, with its
// row).
func (l *lockTable) tryLockAll(keys []string, h holder) func() {
	var unlocks []func()
	release := func() {
		for i := len(unlocks) - 1; i >= 0; i-- {
			unlocks[i]()
		}
	}
	for _, k := range keys {
		slot := l.slot(k)
		select {
		case slot <- struct{}{}:
			unlocks = append(unlocks, l.taken(k, slot, h))
		default:
			release()
			return nil
		}
	}
	return release
}

// lockFor waits until key is free, ctx ends or lockWait passes; the
// returned func releases it. The error of a wait that gives up names the job
// that holds the lock.
func (l *lockTable) lockFor(ctx context.Context, key string, h holder) (func(), error) {
	slot := l.slot(key)
	timer := time.NewTimer(lockWait)
	defer timer.Stop()
	start := time.Now()
	select {
	case slot <- struct{}{}:
		return l.taken(key, slot, h), nil
	case <-ctx.Done():
	case <-timer.C:
	}
	l.mu.Lock()
	cur, held := l.holders[key]
	l.mu.Unlock()
	by := "another operation"
	if held && cur.jobID != "" {
		by = fmt.Sprintf("job %s (%s, running for %s)", cur.jobID, cur.summary, time.Since(cur.since).Round(time.Second))
	}
	return nil, errorf(KindConflict, "object %s is locked by %s; gave up after waiting %s", key, by, time.Since(start).Round(time.Millisecond))
}

// lockAll takes the locks of keys (sorted, so that two jobs never wait for
// each other) and returns one func that releases them all. On a shared
// store a job (h.jobID set) then records them in the store, waiting while
// another manager's job holds one of them; the records go when the job
// ends (jobRunner.end).
func (l *lockTable) lockAll(ctx context.Context, keys []string, h holder) (func(), error) {
	start := time.Now()
	var unlocks []func()
	release := func() {
		for i := len(unlocks) - 1; i >= 0; i-- {
			unlocks[i]()
		}
	}
	for _, k := range keys {
		unlock, err := l.lockFor(ctx, k, h)
		if err != nil {
			release()
			return nil, err
		}
		unlocks = append(unlocks, unlock)
	}
	if l.shared != nil && h.jobID != "" && len(keys) > 0 {
		sctx, cancel := context.WithDeadline(ctx, start.Add(lockWait))
		defer cancel()
		if err := l.shared.lockJob(sctx, keys, h); err != nil {
			release()
			return nil, err
		}
	}
	return release, nil
}
