package membership_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"xenmanager/backend/membership"
	"xenmanager/store"
)

// Short times, so that a test waits a few seconds at most; the waits
// themselves are bounded by deadline, far longer.
const (
	renew    = 100 * time.Millisecond
	lease    = time.Second
	deadline = 30 * time.Second
)

func openStore(t *testing.T) (*store.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "manager.db")
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, path
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// leads records when each member starts and stops leading, by the
// monotonic clock of this process, which every member of a test shares.
type leads struct {
	mu     sync.Mutex // guards events
	events []lead
	change chan struct{} // a token per event
}

type lead struct {
	member string
	term   int64
	start  time.Time
	stop   time.Time // zero while it leads
}

func newLeads() *leads { return &leads{change: make(chan struct{}, 1000)} }

// fn is the Lead of member id: it records its term's start and stop.
func (l *leads) fn(id string) func(ctx context.Context, term int64) {
	return func(ctx context.Context, term int64) {
		l.mu.Lock()
		i := len(l.events)
		l.events = append(l.events, lead{member: id, term: term, start: time.Now()})
		l.mu.Unlock()
		l.change <- struct{}{}
		<-ctx.Done()
		l.mu.Lock()
		l.events[i].stop = time.Now()
		l.mu.Unlock()
		l.change <- struct{}{}
	}
}

// waitFor waits until cond holds of the events, failing after deadline.
func (l *leads) waitFor(t *testing.T, what string, cond func(events []lead) bool) []lead {
	t.Helper()
	timeout := time.After(deadline)
	for {
		l.mu.Lock()
		events := append([]lead(nil), l.events...)
		l.mu.Unlock()
		if cond(events) {
			return events
		}
		select {
		case <-l.change:
		case <-timeout:
			t.Fatalf("gave up after %s waiting for %s; leads: %+v", deadline, what, events)
		}
	}
}

// join joins member id to the store and runs it until the test ends (or
// the cancel returned is called).
func join(t *testing.T, st membership.Store, id string, sole bool, l *leads) (*membership.Member, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	m, err := membership.Join(ctx, membership.Config{Store: st, Member: store.Member{ID: id, Hostname: "host-" + id, PID: 1},
		Renew: renew, Lease: lease, Sole: sole, Lead: l.fn(id), Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Run(ctx)
	}()
	stop := func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return m, stop
}

// A manager alone on its database (SQLite's lock) leads at its first
// attempt even when a previous run, killed, left the lease held; one that
// shares its database waits for that lease to lapse.
func TestSoleMemberLeadsAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sole    bool
		leading bool
	}{
		{"alone on the database: the previous run is dead", true, true},
		{"sharing the database: the holder may be alive", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, _ := openStore(t)
			ctx := context.Background()
			// A previous run: a member that took the lease for an hour and
			// was killed.
			err := st.Write(ctx, func(q *store.Queries) error {
				now, _ := q.Now(ctx)
				if err := q.RenewMember(ctx, store.Member{ID: "old", Hostname: "h", Started: now}, now); err != nil {
					return err
				}
				_, _, err := q.TakeLease(ctx, "old", now, time.Hour)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			l := newLeads()
			m, _ := join(t, st, "new", tc.sole, l)
			select {
			case <-m.Settled():
			case <-time.After(deadline):
				t.Fatal("the first attempt at the lease never came back")
			}
			term, leading := m.Leading()
			if leading != tc.leading {
				t.Fatalf("leading after the first attempt: %v (term %d), want %v", leading, term, tc.leading)
			}
			if leading && term != 2 {
				t.Errorf("term %d, want 2: the take-over of the previous run's term 1", term)
			}
			members, err := st.Read().Members(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, mb := range members {
				if mb.ID == "old" && mb.Ended != tc.sole {
					t.Errorf("the previous run's member ended: %v, want %v", mb.Ended, tc.sole)
				}
			}
		})
	}
}

// A leader cut off from its database (its store closed under it) stops
// leading before the lease it last renewed ends, by the database's clock:
// by then another manager could take it.
func TestLeaderCutOffStopsBeforeItsLeaseEnds(t *testing.T) {
	st, path := openStore(t)
	l := newLeads()
	join(t, st, "a", true, l)
	l.waitFor(t, "a leads", func(ev []lead) bool { return len(ev) == 1 })
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	ev := l.waitFor(t, "a stops leading", func(ev []lead) bool { return !ev[0].stop.IsZero() })
	stopped := ev[0].stop

	st2, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	ls, err := st2.Read().Lease(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ls.ManagerID != "a" || ls.Term != ev[0].term {
		t.Fatalf("lease %+v; want a's term %d", ls, ev[0].term)
	}
	// On SQLite the database's clock is this process's.
	if !stopped.Before(ls.Expires) {
		t.Fatalf("a stopped leading at %s, not before its lease ended at %s", stopped.UTC().Format(time.StampMilli), ls.Expires.Format(time.StampMilli))
	}
	t.Logf("a stopped leading %s before its lease ended", ls.Expires.Sub(stopped).Round(time.Millisecond))
}

// cuttable is a store that can be cut off: its writes fail from then on,
// as a manager's whose network to the database is gone.
type cuttable struct {
	st  *store.Store
	cut atomic.Bool
}

func (c *cuttable) Write(ctx context.Context, fn func(q *store.Queries) error) error {
	if c.cut.Load() {
		return errors.New("cut off from the database")
	}
	return c.st.Write(ctx, fn)
}

// Two members on one database: one leads. When the leader is cut off from
// the database, the other takes over in a new term, and only after the
// first has stopped; when a leader stops cleanly it releases the lease and
// the other leads without waiting for it to lapse.
func TestTakeOver(t *testing.T) {
	st, _ := openStore(t)
	l := newLeads()
	a := &cuttable{st: st}
	join(t, a, "a", false, l)
	l.waitFor(t, "a leads", func(ev []lead) bool { return len(ev) == 1 })
	stops := map[string]func(){}
	for _, id := range []string{"b", "c"} {
		_, stops[id] = join(t, st, id, false, l)
	}

	cutAt := time.Now()
	a.cut.Store(true)
	ev := l.waitFor(t, "another member leads", func(ev []lead) bool { return len(ev) == 2 })
	first, second := ev[0], ev[1]
	if first.member != "a" || second.member == "a" || second.term != first.term+1 {
		t.Fatalf("leads %+v: want a, then b or c in the next term", ev)
	}
	if first.stop.IsZero() || !first.stop.Before(second.start) {
		t.Fatalf("%s started leading at %s while a still led (stopped %s)", second.member, second.start.Format(time.StampMilli), first.stop.Format(time.StampMilli))
	}
	t.Logf("cut at 0, a stopped at %s, %s took over at %s (lease %s, renewal %s)", first.stop.Sub(cutAt).Round(time.Millisecond),
		second.member, second.start.Sub(cutAt).Round(time.Millisecond), lease, renew)

	// A clean stop releases the lease: once the leader's Run has returned,
	// the lease is either free (its end at 0) or taken by the other.
	other := map[string]string{"b": "c", "c": "b"}[second.member]
	stops[second.member]()
	ls, err := st.Read().Lease(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !(ls.ManagerID == second.member && ls.Expires.Equal(time.UnixMilli(0).UTC())) && ls.ManagerID != other {
		t.Fatalf("lease after %s stopped cleanly: %+v; want it released", second.member, ls)
	}
	ev = l.waitFor(t, other+" leads", func(ev []lead) bool { return len(ev) == 3 })
	if ev[2].member != other || ev[2].term != second.term+1 || ev[1].stop.IsZero() || !ev[1].stop.Before(ev[2].start) {
		t.Fatalf("leads %+v: want %s after %s", ev, other, second.member)
	}
	members, _ := st.Read().Members(context.Background())
	for _, m := range members {
		if m.ID == second.member && !m.Ended {
			t.Errorf("%s stopped cleanly and is not recorded as ended", m.ID)
		}
	}
}
