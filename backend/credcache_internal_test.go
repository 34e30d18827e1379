package backend

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestCredentialCache checks, one login after another, when a login is
// served from the cache and when it pays bcrypt: a verified password is
// remembered for its user and stored hash, for the TTL read at each
// login; a wrong password, another user, a changed hash, the TTL's end
// and a TTL of 0 all pay bcrypt, and a failure is never remembered.
func TestCredentialCache(t *testing.T) {
	ctx := context.Background()
	hashOf := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	h1, h2 := hashOf("correct horse"), hashOf("battery staple")
	const ttl = 5 * time.Minute
	type login struct {
		user, hash, password string
		ttl                  time.Duration
		after                time.Duration // the clock moves on by this before the login
		ok, bcrypt           bool          // the login passes; it paid bcrypt
	}
	for _, tc := range []struct {
		name   string
		logins []login
	}{
		{"hit", []login{
			{"alice", h1, "correct horse", ttl, 0, true, true},
			{"alice", h1, "correct horse", ttl, time.Minute, true, false},
			{"alice", h1, "correct horse", ttl, 3 * time.Minute, true, false},
		}},
		{"miss: another password, another user", []login{
			{"alice", h1, "correct horse", ttl, 0, true, true},
			{"alice", h1, "correct horsf", ttl, 0, false, true},
			{"bob", h1, "correct horse", ttl, 0, true, true}, // bob's entry is his own
			{"alice", h1, "correct horse", ttl, 0, true, false},
			{"bob", h1, "correct horse", ttl, 0, true, false},
		}},
		{"wrong password never cached", []login{
			{"alice", h1, "wrong", ttl, 0, false, true},
			{"alice", h1, "wrong", ttl, 0, false, true},
			{"alice", h1, "correct horse", ttl, 0, true, true},
			{"alice", h1, "wrong", ttl, 0, false, true}, // a right one remembered does not spare a wrong one
			{"alice", h1, "correct horse", ttl, 0, true, false},
		}},
		{"changed password", []login{
			{"alice", h1, "correct horse", ttl, 0, true, true},
			{"alice", h2, "correct horse", ttl, 0, false, true}, // the stored hash changed: the old password is checked, and fails
			{"alice", h2, "battery staple", ttl, 0, true, true},
			{"alice", h2, "battery staple", ttl, 0, true, false},
			{"alice", h1, "correct horse", ttl, 0, true, true}, // changed back: its entry was dropped
		}},
		{"ttl", []login{
			{"alice", h1, "correct horse", ttl, 0, true, true},
			{"alice", h1, "correct horse", ttl, ttl - time.Second, true, false},
			{"alice", h1, "correct horse", ttl, time.Second, true, true}, // verified ttl ago: bcrypt again, remembered anew
			{"alice", h1, "correct horse", ttl, time.Second, true, false},
			{"alice", h1, "correct horse", time.Second, time.Second, true, true}, // a lower TTL ends it at once
		}},
		{"disabled", []login{
			{"alice", h1, "correct horse", 0, 0, true, true},
			{"alice", h1, "correct horse", 0, 0, true, true},
			{"alice", h1, "correct horse", ttl, 0, true, true},
			{"alice", h1, "correct horse", 0, 0, true, true}, // 0 ends the entry made meanwhile
			{"alice", h1, "correct horse", ttl, 0, true, true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCredentialCache()
			now := time.Unix(1_000_000, 0)
			c.now = func() time.Time { return now }
			slots := newPasswordSlots(1)
			for i, l := range tc.logins {
				now = now.Add(l.after)
				before := c.bcrypts.Load()
				err := c.check(ctx, slots, l.user, l.hash, l.password, l.ttl)
				if (err == nil) != l.ok {
					t.Fatalf("login %d (%+v): %v", i, l, err)
				}
				if err != nil && !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
					t.Fatalf("login %d: %v, want a mismatch", i, err)
				}
				if paid := c.bcrypts.Load() - before; paid != map[bool]int64{true: 1, false: 0}[l.bcrypt] {
					t.Fatalf("login %d (%+v) paid %d bcrypts", i, l, paid)
				}
			}
		})
	}
}

// TestCredentialCacheConcurrent checks that logins of one user with one
// password at once share one bcrypt, that wrong passwords at once each pay
// their own, and that with the cache disabled every login pays.
func TestCredentialCacheConcurrent(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	for _, tc := range []struct {
		name     string
		password string
		ttl      time.Duration
		ok       bool
		bcrypts  int64
	}{
		{"right password", "correct horse", time.Minute, true, 1},
		{"wrong password", "wrong horse", time.Minute, false, n},
		{"disabled", "correct horse", 0, true, n},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCredentialCache()
			began := make(chan struct{}, n)
			c.began = func() { began <- struct{}{} }
			slots := newPasswordSlots(1)
			// Hold the only slot until every login is checking, so that
			// they meet (in the flight, or at the slot without the cache).
			hold, held := make(chan struct{}), make(chan struct{})
			go slots.do(context.Background(), func() { close(held); <-hold })
			<-held
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for range n {
				wg.Go(func() { errs <- c.check(context.Background(), slots, "alice", string(h), tc.password, tc.ttl) })
			}
			for range n {
				<-began
			}
			close(hold)
			wg.Wait()
			close(errs)
			for err := range errs {
				if (err == nil) != tc.ok {
					t.Fatalf("a login: %v, want ok %v", err, tc.ok)
				}
			}
			if got := c.bcrypts.Load(); got != tc.bcrypts {
				t.Fatalf("%d logins at once paid %d bcrypts, want %d", n, got, tc.bcrypts)
			}
		})
	}
}

// TestCredentialCacheSharedFailure checks that a login which shared a
// check whose first caller gave up (its connection closed while it
// waited for a slot) runs its own check rather than fail. Which of the two
// runs the shared check is the scheduler's choice (each signals began
// before it joins); when the second does, the first must still give up at
// once rather than wait for it (with a wait that ignored the caller's
// context, this test hung until its timeout in that order).
func TestCredentialCacheSharedFailure(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	c := newCredentialCache()
	began := make(chan struct{}, 2)
	c.began = func() { began <- struct{}{} }
	slots := newPasswordSlots(1)
	hold, held := make(chan struct{}), make(chan struct{})
	go slots.do(context.Background(), func() { close(held); <-hold })
	<-held
	gone, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { first <- c.check(gone, slots, "alice", string(h), "correct horse", time.Minute) }()
	<-began
	second := make(chan error, 1)
	go func() {
		second <- c.check(context.Background(), slots, "alice", string(h), "correct horse", time.Minute)
	}()
	<-began
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("the login whose connection closed: %v, want context.Canceled", err)
	}
	close(hold)
	if err := <-second; err != nil {
		t.Fatalf("the login that shared its check: %v", err)
	}
}
