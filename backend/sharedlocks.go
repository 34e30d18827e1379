package backend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"xenmanager/store"
)

// sharedLocks is the second level of the object locks on a store several
// managers share: the rows of object_locks. A job records the objects it
// holds in one write, which checks first that no Running job of another
// manager holds one (writes of every manager serialise, so the check and
// the insert are one step); its rows go when it ends, or when the leader
// ends the job of a dead manager. A waiter polls: the rows of another
// manager change without telling this one, and a poll with a bounded
// backoff (pollFirst doubling up to pollMax) costs one write or read per
// step without a connection per waiter.
type sharedLocks struct {
	st     *store.Store
	member string // this manager's member id, recorded in its jobs' rows
}

const (
	// sharedPollFirst and sharedPollMax bound the backoff of a wait for
	// another manager's job: quick at first (most jobs are short), then no
	// more than two polls a second per waiter.
	sharedPollFirst = 20 * time.Millisecond
	sharedPollMax   = 500 * time.Millisecond
)

// lockJob records that job h holds keys, waiting until ctx ends while a
// Running job of another manager holds one of them; the error of a wait
// that gives up names that job and its manager.
func (s *sharedLocks) lockJob(ctx context.Context, keys []string, h holder) error {
	return s.poll(ctx, func() (*store.ObjectLock, error) {
		var held *store.ObjectLock
		err := s.st.Write(ctx, func(q *store.Queries) error {
			var err error
			held, err = q.LockObjects(ctx, h.jobID, s.member, h.summary, keys)
			return err
		})
		return held, err
	})
}

// waitFree waits until no Running job of another manager holds key, or
// ctx ends.
func (s *sharedLocks) waitFree(ctx context.Context, key string) error {
	return s.poll(ctx, func() (*store.ObjectLock, error) {
		l, err := s.st.Read().ObjectLockHolder(ctx, s.member, key)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return &l, nil
	})
}

// poll runs try until it finds no holder, with a backoff between tries,
// until ctx ends: then the error names the last holder found.
func (s *sharedLocks) poll(ctx context.Context, try func() (*store.ObjectLock, error)) error {
	start := time.Now()
	wait := sharedPollFirst
	var last *store.ObjectLock
	for {
		held, err := try()
		if err == nil && held == nil {
			return nil
		}
		if err != nil && ctx.Err() == nil {
			return &Error{Kind: KindInternal, Msg: "take the object locks shared by the managers", Cause: err}
		}
		if held != nil {
			last = held
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return s.gaveUp(last, start)
		case <-t.C:
		}
		wait = min(2*wait, sharedPollMax)
	}
}

// gaveUp is the error of a wait for a lock of another manager's job,
// begun at start, naming the job as the process lock's error does, and
// its manager.
func (s *sharedLocks) gaveUp(l *store.ObjectLock, start time.Time) error {
	waited := time.Since(start).Round(time.Millisecond)
	if l == nil {
		// The wait ended before the store said who holds them.
		return errorf(KindConflict, "gave up waiting for the object locks the managers share after %s", waited)
	}
	running := ""
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if now, err := s.st.Read().Now(ctx); err == nil { // since is the database's clock
		running = fmt.Sprintf(", running for %s", now.Sub(l.Since).Round(time.Second))
	}
	manager := "manager " + l.ManagerID
	if l.Hostname != "" {
		manager += " (" + l.Hostname + ")"
	}
	return errorf(KindConflict, "object %s is locked by job %s (%s%s) on %s; gave up after waiting %s",
		l.ObjectID, l.JobID, l.Summary, running, manager, waited)
}
