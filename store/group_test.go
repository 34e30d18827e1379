package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// Writes that run in one group still fail alone: a write whose fn fails
// leaves nothing (not even what it wrote before failing), a constraint
// violation fails only its write, a panic reaches only its caller, and
// the others are committed.
func TestGroupedWritesFailAlone(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		now := time.Now()
		if err := s.Write(ctx, func(q *Queries) error {
			return q.InsertServerPool(ctx, ServerPool{ID: "taken", Name: "taken", CreatedAt: now})
		}); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		const n = 200
		errs := make([]error, n)
		panics := make([]any, n)
		// Hold the writer in a write of its own while the others queue, so
		// that they make one group.
		hold, held := make(chan struct{}), make(chan struct{})
		go s.Write(ctx, func(q *Queries) error { close(held); <-hold; return nil })
		<-held
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { panics[i] = recover() }()
				id := fmt.Sprintf("p%03d", i)
				errs[i] = s.Write(ctx, func(q *Queries) error {
					if err := q.InsertServerPool(ctx, ServerPool{ID: id, Name: id, CreatedAt: now}); err != nil {
						return err
					}
					switch i % 4 {
					case 1: // fails after writing: its pool must not stay
						return boom
					case 2: // a constraint violation in the group
						return q.InsertServerPool(ctx, ServerPool{ID: "taken", Name: "again", CreatedAt: now})
					case 3:
						if i == 3 {
							panic("fn panicked")
						}
					}
					return nil
				})
			}()
		}
		time.Sleep(50 * time.Millisecond) // let them queue
		close(hold)
		wg.Wait()
		w, tx := s.WriteStats()
		if tx >= w {
			t.Errorf("%d writes in %d transactions: no group formed", w, tx)
		}
		for i := range n {
			id := fmt.Sprintf("p%03d", i)
			_, rerr := s.Read().ServerPool(ctx, id)
			switch {
			case i == 3:
				if panics[i] != "fn panicked" {
					t.Errorf("write %d: panic %v reached its caller, want fn panicked", i, panics[i])
				}
				if !errors.Is(rerr, ErrNotFound) {
					t.Errorf("write %d panicked, but its pool is there (%v)", i, rerr)
				}
			case i%4 == 1:
				if !errors.Is(errs[i], boom) || !errors.Is(rerr, ErrNotFound) {
					t.Errorf("write %d: err %v, pool %v; want boom and no pool", i, errs[i], rerr)
				}
			case i%4 == 2:
				if !errors.Is(errs[i], ErrConflict) || !errors.Is(rerr, ErrNotFound) {
					t.Errorf("write %d: err %v, pool %v; want a conflict and no pool", i, errs[i], rerr)
				}
			default:
				if errs[i] != nil || panics[i] != nil || rerr != nil {
					t.Errorf("write %d: err %v, panic %v, pool %v; want it written", i, errs[i], panics[i], rerr)
				}
			}
		}
	})
}

// A write returns only once it is committed: what it wrote is visible to
// the readers as soon as Write returns, and one caller's writes keep their
// order.
func TestWriteIsCommittedWhenItReturns(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 20 {
					v := fmt.Sprintf("%d", i)
					key := fmt.Sprintf("k%d", g)
					if err := s.Write(ctx, func(q *Queries) error { return q.SetMeta(ctx, key, v) }); err != nil {
						errs <- err
						return
					}
					if got, err := s.Read().GetMeta(ctx, key); err != nil || got != v {
						errs <- fmt.Errorf("%s after its write = %q, %v; want %q", key, got, err, v)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

// A write whose context ends while it waits for its turn does not run; one
// after Close fails.
func TestWriteCancelledAndClosed(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		hold, held := make(chan struct{}), make(chan struct{})
		go s.Write(ctx, func(q *Queries) error { close(held); <-hold; return nil })
		<-held
		cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		ran := false
		err := s.Write(cctx, func(q *Queries) error { ran = true; return q.SetMeta(ctx, "k", "v") })
		close(hold)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Write with an ended context = %v, want DeadlineExceeded", err)
		}
		s.Write(ctx, func(q *Queries) error { return nil }) // the writer has passed the abandoned one
		if ran {
			t.Fatal("the abandoned write ran")
		}
		if _, err := s.Read().GetMeta(ctx, "k"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("the abandoned write left k: %v", err)
		}
		s.Close()
		if err := s.Write(ctx, func(q *Queries) error { return nil }); err == nil || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("Write after Close = %v, want an error", err)
		}
	})
}
