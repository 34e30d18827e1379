package agent

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// authBackoff slows password guessing against the agent down, per source
// address. After freeAuthFailures wrong passwords from an address, each
// within authFailureWindow of the one before, the address must wait before
// its next call is even checked: firstAuthBackoff after the next failure,
// doubling with every further one, up to maxAuthBackoff. While it waits,
// every call from it is refused with 429 Too Many Requests and
// Retry-After, the password unchecked: however many connections a guesser
// opens, a right guess cannot show, so it gets one guess per wait. The
// agent has one user, so a right password clears its address.
//
// The manager, the agent's only client, is never slowed down unless it
// sends wrong passwords itself, from its own address.
type authBackoff struct {
	// tracked is len(byAddr), read without mu: the common case (no failure
	// recorded) costs every call one atomic load and no lock.
	tracked atomic.Int64

	mu     sync.Mutex // guards byAddr
	byAddr map[string]*authFailures
	now    func() time.Time
}

// authFailures are the recent wrong passwords of one address.
type authFailures struct {
	count int
	last  time.Time
	until time.Time // calls before this are refused unchecked
}

const (
	freeAuthFailures  = 5 // a person's typos at discoverServer cost nothing
	authFailureWindow = 10 * time.Minute
	firstAuthBackoff  = time.Second
	maxAuthBackoff    = 30 * time.Second
	maxAuthTracked    = 10000
)

func newAuthBackoff() *authBackoff {
	return &authBackoff{byAddr: map[string]*authFailures{}, now: time.Now}
}

// idle reports whether no address has failures recorded, without a lock:
// then no call need wait and none need be forgotten.
func (b *authBackoff) idle() bool { return b.tracked.Load() == 0 }

// wait is how long addr must still wait before a call of its is checked;
// 0 when it need not.
func (b *authBackoff) wait(addr string) time.Duration {
	if b.tracked.Load() == 0 {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.byAddr[addr]
	if r == nil {
		return 0
	}
	return max(r.until.Sub(b.now()), 0)
}

// fail records a wrong password from addr; it reports whether addr starts
// waiting only now (for the log: one line per address, not per guess).
func (b *authBackoff) fail(addr string) (startsWaiting bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	r := b.byAddr[addr]
	if r == nil {
		if len(b.byAddr) >= maxAuthTracked {
			for k, old := range b.byAddr {
				if now.Sub(old.last) > authFailureWindow && !old.until.After(now) {
					delete(b.byAddr, k)
				}
			}
			if len(b.byAddr) >= maxAuthTracked {
				b.tracked.Store(int64(len(b.byAddr)))
				return false
			}
		}
		r = &authFailures{}
		b.byAddr[addr] = r
		b.tracked.Store(int64(len(b.byAddr)))
	}
	if now.Sub(r.last) > authFailureWindow {
		r.count = 0
	}
	r.count++
	r.last = now
	over := r.count - freeAuthFailures
	if over <= 0 {
		return false
	}
	d := maxAuthBackoff
	if over <= 6 { // 1 s << 5 = 32 s is past the cap already
		d = min(firstAuthBackoff<<(over-1), maxAuthBackoff)
	}
	r.until = now.Add(d)
	return over == 1
}

// succeed forgets addr's failures: it knows the password.
func (b *authBackoff) succeed(addr string) {
	if b.tracked.Load() == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.byAddr, addr)
	b.tracked.Store(int64(len(b.byAddr)))
}

// sourceOf is the source the back-off counts a request under: its IPv4
// address, or the /64 network of its IPv6 address (one host commonly
// holds a whole /64).
func sourceOf(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	return netip.PrefixFrom(ip.WithZone(""), 64).Masked().String()
}
