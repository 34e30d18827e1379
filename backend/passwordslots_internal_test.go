package backend

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestPasswordSlotsBound checks that no more computations than slots run
// at once, that every caller gets its turn, and that the results are
// bcrypt's.
func TestPasswordSlotsBound(t *testing.T) {
	for _, n := range []int{1, 3} {
		s := newPasswordSlots(n)
		var running, peak atomic.Int64
		var wg sync.WaitGroup
		for range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := s.do(context.Background(), func() {
					now := running.Add(1)
					for p := peak.Load(); now > p && !peak.CompareAndSwap(p, now); p = peak.Load() {
					}
					time.Sleep(time.Millisecond) // let the others pile up at the slots
					running.Add(-1)
				})
				if err != nil {
					t.Errorf("slots %d: %v", n, err)
				}
			}()
		}
		wg.Wait()
		if got := peak.Load(); got > int64(n) || got < 1 {
			t.Errorf("slots %d: %d ran at once", n, got)
		}
	}

	s := newPasswordSlots(1)
	h, err := s.generate(context.Background(), "correct horse", bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.compare(context.Background(), h, "correct horse"); err != nil {
		t.Errorf("the right password: %v", err)
	}
	if err := s.compare(context.Background(), h, "wrong horse"); !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
		t.Errorf("a wrong password: %v, want a mismatch", err)
	}
}

// TestPasswordSlotsWaitEnds checks that a caller waiting for a slot gives
// up when its context ends (a connection that closes during its login),
// and is refused as a wrong password would be.
func TestPasswordSlotsWaitEnds(t *testing.T) {
	s := newPasswordSlots(1)
	held, release := make(chan struct{}), make(chan struct{})
	go s.do(context.Background(), func() { close(held); <-release })
	<-held
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.compare(ctx, []byte("$2a$04$unused"), "pw") }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the waiting comparison did not give up when its context ended")
	}
}
