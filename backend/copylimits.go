package backend

import (
	"context"
	"sync"
)

// copyLimiter bounds the copies of clones in flight, across every clone
// command at once: at most perServer copies on one server and perRepo
// copying into or out of one repository (the manager's
// cloneParallelismPerServer and cloneParallelismPerRepository). A copy
// takes a slot on its server and one on each repository it touches for
// as long as it runs, all at once or none, so that two copies never hold
// part of what each other waits for.
type copyLimiter struct {
	mu        sync.Mutex     // guards perServer, perRepo and freed
	perServer map[string]int // server id -> copies in flight there
	perRepo   map[string]int // repository id -> copies in flight touching it
	// freed is closed, and replaced, when a copy gives its slots back:
	// the waiters look again.
	freed chan struct{}
}

func newCopyLimiter() *copyLimiter {
	return &copyLimiter{perServer: map[string]int{}, perRepo: map[string]int{}, freed: make(chan struct{})}
}

// acquire waits until one of servers has fewer than serverLimit copies in
// flight and every one of repos fewer than repoLimit, then takes a slot on
// that server (the one with the fewest copies, the first of those in the
// order given) and on each repository. It returns the server's index in
// servers and the release of the slots, or ctx's end as an error.
func (l *copyLimiter) acquire(ctx context.Context, servers, repos []string, serverLimit, repoLimit int) (int, func(), error) {
	for {
		l.mu.Lock()
		best := -1
		for i, s := range servers {
			if l.perServer[s] < serverLimit && (best < 0 || l.perServer[s] < l.perServer[servers[best]]) {
				best = i
			}
		}
		reposFree := true
		for _, r := range repos {
			if l.perRepo[r] >= repoLimit {
				reposFree = false
			}
		}
		if best >= 0 && reposFree {
			server := servers[best]
			l.perServer[server]++
			for _, r := range repos {
				l.perRepo[r]++
			}
			l.mu.Unlock()
			var once sync.Once
			return best, func() { once.Do(func() { l.release(server, repos) }) }, nil
		}
		freed := l.freed
		l.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		}
	}
}

func (l *copyLimiter) release(server string, repos []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perServer[server]--; l.perServer[server] <= 0 {
		delete(l.perServer, server)
	}
	for _, r := range repos {
		if l.perRepo[r]--; l.perRepo[r] <= 0 {
			delete(l.perRepo, r)
		}
	}
	close(l.freed)
	l.freed = make(chan struct{})
}

// inFlight returns the copies in flight on server and touching repo.
func (l *copyLimiter) inFlight(server, repo string) (int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.perServer[server], l.perRepo[repo]
}
