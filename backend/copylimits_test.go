package backend

import (
	"context"
	"sync"
	"testing"
	"time"
)

// The copy limiter takes a slot on the least busy server that has room
// and on every repository at once, or waits: for a server, for any
// repository the copy touches, and never holds part of what it waits for.
func TestCopyLimiter(t *testing.T) {
	type take struct {
		servers, repos []string
		want           int // the server's index; -1: it must wait
	}
	for _, tc := range []struct {
		name                   string
		serverLimit, repoLimit int
		takes                  []take
	}{
		{"spreads over servers", 2, 8, []take{
			{[]string{"s1", "s2"}, []string{"r1"}, 0},
			{[]string{"s1", "s2"}, []string{"r1"}, 1},
			{[]string{"s1", "s2"}, []string{"r1"}, 0},
			{[]string{"s1", "s2"}, []string{"r1"}, 1},
			{[]string{"s1", "s2"}, []string{"r1"}, -1}, // both servers full
		}},
		{"a repository full", 4, 2, []take{
			{[]string{"s1"}, []string{"r1"}, 0},
			{[]string{"s2"}, []string{"r1", "r2"}, 0},
			{[]string{"s3"}, []string{"r2"}, 0},
			{[]string{"s4"}, []string{"r2"}, -1},       // r2 has 2
			{[]string{"s4"}, []string{"r1", "r3"}, -1}, // r1 has 2, and r3 is not taken alone
			{[]string{"s4"}, []string{"r3"}, 0},
		}},
		{"one per server", 1, 64, []take{
			{[]string{"s1"}, []string{"r1"}, 0},
			{[]string{"s1"}, []string{"r2"}, -1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newCopyLimiter()
			for i, tk := range tc.takes {
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				got, release, err := l.acquire(ctx, tk.servers, tk.repos, tc.serverLimit, tc.repoLimit)
				cancel()
				switch {
				case tk.want < 0 && err == nil:
					t.Fatalf("take %d got server %d; want it to wait", i, got)
				case tk.want >= 0 && (err != nil || got != tk.want):
					t.Fatalf("take %d = %d, %v; want server %d", i, got, err, tk.want)
				case err == nil && release == nil:
					t.Fatalf("take %d has no release", i)
				}
			}
			if n, _ := l.inFlight("s4", ""); n > 1 {
				t.Fatalf("s4 has %d copies", n)
			}
		})
	}
}

// A copy waiting for a slot takes it when one is given back, and never
// more copies run at once than the limits allow.
func TestCopyLimiterWaitsForRelease(t *testing.T) {
	l := newCopyLimiter()
	var mu sync.Mutex // guards running and most
	running, most := 0, 0
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, release, err := l.acquire(context.Background(), []string{"s1", "s2"}, []string{"r1"}, 4, 3)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			running++
			most = max(most, running)
			mu.Unlock()
			time.Sleep(time.Millisecond) // holds the slot a while, so that others wait
			mu.Lock()
			running--
			mu.Unlock()
			release()
			release() // a second release gives back nothing
		}()
	}
	wg.Wait()
	if most > 3 {
		t.Fatalf("%d copies ran at once; the repository allows 3", most)
	}
	if s1, r1 := l.inFlight("s1", "r1"); s1 != 0 || r1 != 0 {
		t.Fatalf("slots left taken after every release: s1 %d, r1 %d", s1, r1)
	}
}
