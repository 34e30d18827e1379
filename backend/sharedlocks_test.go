package backend

import (
	"context"
	"strings"
	"testing"
	"time"

	"xenmanager/store"
	"xenmanager/store/pgtest"
)

// An internal operation's lock (reconcile, the heartbeats, a device job's
// second object) on a shared store: it waits while a Running job of
// another manager holds the object, and gives up when its time is out
// naming that job and manager; its own manager's rows and an ended job's
// do not hold it back.
func TestInternalLockOnSharedStore(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, pgtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now()
	err = st.Write(ctx, func(q *store.Queries) error {
		if err := q.RenewMember(ctx, store.Member{ID: "other", Hostname: "host-o", Started: now}, now); err != nil {
			return err
		}
		for _, j := range []struct{ id, member, status, object string }{
			{"j-other", "other", JobRunning, "vm-other"}, {"j-self", "self", JobRunning, "vm-self"},
			{"j-ended", "other", JobFailure, "vm-ended"}} {
			if err := q.InsertJob(ctx, store.Job{ID: j.id, Summary: "start Vm " + j.object, User: "admin", Status: j.status,
				CreatedAt: now, ManagerID: j.member}); err != nil {
				return err
			}
			if held, err := q.LockObjects(ctx, j.id, j.member, "start Vm "+j.object, []string{j.object}); err != nil || held != nil {
				t.Fatalf("lock %s: %+v, %v", j.object, held, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	l := &lockTable{shared: &sharedLocks{st: st, member: "self"}}
	for _, c := range []struct {
		object string
		held   string // what the error names; "" when the lock is had
	}{
		{"vm-free", ""},
		{"vm-self", ""},
		{"vm-ended", ""},
		{"vm-other", "object vm-other is locked by job j-other (start Vm vm-other, running for *) on manager other (host-o); gave up after waiting"},
	} {
		t.Run(c.object, func(t *testing.T) {
			// Long enough for a few reads on a loaded machine; the wait for
			// vm-other lasts all of it.
			lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			unlock, err := l.lock(lctx, c.object)
			if c.held == "" {
				if err != nil {
					t.Fatalf("lock: %v", err)
				}
				unlock()
				return
			}
			head, tail, _ := strings.Cut(c.held, "*")
			if KindOf(err) != KindConflict || !strings.Contains(err.Error(), head) || !strings.Contains(err.Error(), tail) {
				t.Fatalf("lock: %v; want a conflict saying %q", err, c.held)
			}
			// The process lock was given back with the failure.
			again, cancel2 := context.WithTimeout(ctx, time.Second)
			defer cancel2()
			unlock, err = l.lockFor(again, c.object, holder{})
			if err != nil {
				t.Fatalf("process lock after the failure: %v", err)
			}
			unlock()
		})
	}

	// A waiter with time enough has the object once the other job's rows go.
	got := make(chan error, 1)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	go func() {
		unlock, err := l.lock(wctx, "vm-other")
		if err == nil {
			unlock()
		}
		got <- err
	}()
	if err := st.Write(ctx, func(q *store.Queries) error { return q.UnlockJobObjects(ctx, "j-other") }); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("lock after the holder's rows went: %v", err)
	}
}
