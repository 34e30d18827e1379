package shell

import (
	"sync"
	"time"
)

// loginFailures remembers recent failed password logins per source address
// and per user, to slow password guessing down: after freeFailures, each
// failure within failureWindow of the one before adds failureStep to the
// delay of the next password attempt from that address (up to
// maxAddressDelay) and for that user from anywhere (up to maxUserDelay).
// Counting per user catches guessing spread over many addresses; its cap is
// lower because it delays the real user too, wherever they log in from.
// Key logins are never delayed, so that nobody can lock an administrator
// with a key out by failing their password.
//
// A success clears only the failures of the same user from the same
// address (typos): a viewer's login never clears what an attacker failed
// from the same address on admin, nor does the admin's own login clear
// what was failed on admin elsewhere.
type loginFailures struct {
	mu     sync.Mutex                // guards byAddr and byUser
	byAddr map[string]*failureRecord // by address; breakdown by user
	byUser map[string]*failureRecord // by user; breakdown by address
	now    func() time.Time
}

// failureRecord counts the recent failures of one address (or one user).
type failureRecord struct {
	count int
	last  time.Time
	// by breaks count down by user (of an address) or by address (of a
	// user), for succeed to take off the right ones; at most maxBreakdown
	// names: failures beyond stay counted until the window passes.
	by map[string]int
}

const (
	failureWindow   = 10 * time.Minute
	failureStep     = 500 * time.Millisecond
	maxAddressDelay = 5 * time.Second
	maxUserDelay    = 3 * time.Second
	freeFailures    = 3 // failures before any delay: typos cost nothing
	maxTracked      = 10000
	maxBreakdown    = 64
)

func newLoginFailures() *loginFailures {
	return &loginFailures{byAddr: map[string]*failureRecord{}, byUser: map[string]*failureRecord{}, now: time.Now}
}

// delay is how long a password attempt of user from addr waits before it
// is checked.
func (f *loginFailures) delay(user, addr string) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	return max(f.byAddr[addr].delay(now, maxAddressDelay), f.byUser[user].delay(now, maxUserDelay))
}

func (r *failureRecord) delay(now time.Time, limit time.Duration) time.Duration {
	if r == nil || now.Sub(r.last) > failureWindow || r.count <= freeFailures {
		return 0
	}
	return min(time.Duration(r.count-freeFailures)*failureStep, limit)
}

// fail records a failed password attempt of user from addr.
func (f *loginFailures) fail(user, addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	record(f.byAddr, addr, user, now)
	record(f.byUser, user, addr, now)
}

// record counts a failure of key (broken down under by) in m.
func record(m map[string]*failureRecord, key, by string, now time.Time) {
	r := m[key]
	if r == nil {
		if len(m) >= maxTracked {
			forgetStale(m, now)
		}
		if len(m) >= maxTracked {
			// Every entry is recent: the other map (by user, or by
			// address) still counts this failure.
			return
		}
		r = &failureRecord{}
		m[key] = r
	}
	if now.Sub(r.last) > failureWindow {
		r.count, r.by = 0, nil
	}
	r.count++
	r.last = now
	if _, ok := r.by[by]; ok || len(r.by) < maxBreakdown {
		if r.by == nil {
			r.by = map[string]int{}
		}
		r.by[by]++
	}
}

func forgetStale(m map[string]*failureRecord, now time.Time) {
	for k, r := range m {
		if now.Sub(r.last) > failureWindow {
			delete(m, k)
		}
	}
}

// succeed clears the failures of user from addr, and only those.
func (f *loginFailures) succeed(user, addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	forget(f.byAddr, addr, user)
	forget(f.byUser, user, addr)
}

func forget(m map[string]*failureRecord, key, by string) {
	r := m[key]
	if r == nil {
		return
	}
	r.count -= r.by[by]
	delete(r.by, by)
	if r.count <= 0 {
		delete(m, key)
	}
}
