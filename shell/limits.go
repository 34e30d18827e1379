package shell

import (
	"net"
	"sync"
	"time"
)

// connLimits counts open connections, in all and per source address.
type connLimits struct {
	mu        sync.Mutex // guards total and perIP
	total     int
	perIP     map[string]int
	max, maxI int
}

func newConnLimits(max, maxPerIP int) *connLimits {
	return &connLimits{perIP: map[string]int{}, max: max, maxI: maxPerIP}
}

// acquire takes a slot for ip, or reports that none is free.
func (l *connLimits) acquire(ip string) (release func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.max || l.perIP[ip] >= l.maxI {
		return nil, false
	}
	l.total++
	l.perIP[ip]++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.total--
		if l.perIP[ip]--; l.perIP[ip] <= 0 {
			delete(l.perIP, ip)
		}
	}, true
}

// loginFailures remembers recent failed logins per address, to slow down
// password guessing: each failure within failureWindow adds failureStep to
// the next attempt's delay, up to maxFailureDelay.
type loginFailures struct {
	mu   sync.Mutex // guards byIP
	byIP map[string]failureRecord
	now  func() time.Time
}

type failureRecord struct {
	count int
	last  time.Time
}

const (
	failureWindow   = 10 * time.Minute
	failureStep     = 500 * time.Millisecond
	maxFailureDelay = 5 * time.Second
	freeFailures    = 3 // failures before any delay: typos cost nothing
	maxTrackedIPs   = 10000
)

func newLoginFailures() *loginFailures {
	return &loginFailures{byIP: map[string]failureRecord{}, now: time.Now}
}

func (f *loginFailures) delay(ip string) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.byIP[ip]
	if !ok || f.now().Sub(r.last) > failureWindow || r.count <= freeFailures {
		return 0
	}
	return min(time.Duration(r.count-freeFailures)*failureStep, maxFailureDelay)
}

func (f *loginFailures) fail(ip string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.byIP) >= maxTrackedIPs {
		// Forget stale entries rather than grow without bound.
		for k, r := range f.byIP {
			if f.now().Sub(r.last) > failureWindow {
				delete(f.byIP, k)
			}
		}
	}
	r := f.byIP[ip]
	if f.now().Sub(r.last) > failureWindow {
		r.count = 0
	}
	r.count++
	r.last = f.now()
	f.byIP[ip] = r
}

func (f *loginFailures) succeed(ip string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.byIP, ip)
}

func hostOf(a net.Addr) string {
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
