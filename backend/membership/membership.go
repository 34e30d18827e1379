// Package membership keeps one manager process a member of its database
// and, while it can, the leader of the fleet's work. Several managers may
// serve one database (PostgreSQL); each is a member, a row of managers that
// it renews every second. One of them holds the leader lease, the one row
// of leader, and runs what must run once for the whole fleet (heartbeats,
// reconciliation, HA decisions, the recovery of dead members' jobs): the
// Lead function of its Config, from when it takes the lease until it loses
// it.
//
// No split brain: a leader leads only while its own monotonic clock says
// that its lease has not lapsed. A renewal sent at time s sets the lease's
// end to the database's now+Lease, which is no earlier than s+Lease; the
// leader stops leading (cancels Lead's context and waits for Lead to
// return) at s+Lease-Renew unless a later renewal came back before, so a
// leader cut off from its database, or one whose renewals hang, stops a
// renewal interval before any other member can take the lease. Every
// take-over starts a new term, which the fleet-wide writes that an old
// leader must not make check (store.Queries.CheckLease).
package membership

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"xenmanager/store"
)

// Defaults of the process flags --member-renew, --member-timeout and
// --leader-lease.
const (
	DefaultRenew   = time.Second
	DefaultTimeout = 5 * time.Second
	DefaultLease   = 5 * time.Second
)

// CheckTimes checks the renewal interval, the member timeout and the
// lease length against each other: a member must be able to miss two
// renewals before it counts as dead, and a leader two before it stops.
func CheckTimes(renew, timeout, lease time.Duration) error {
	switch {
	case renew <= 0:
		return fmt.Errorf("member renewal interval %s: use a positive duration, as 1s", renew)
	case timeout < 3*renew:
		return fmt.Errorf("member timeout %s: use at least 3 renewal intervals (%s)", timeout, 3*renew)
	case lease < 3*renew:
		return fmt.Errorf("leader lease %s: use at least 3 renewal intervals (%s)", lease, 3*renew)
	}
	return nil
}

// Store is the store as membership uses it: *store.Store.
type Store interface {
	Write(ctx context.Context, fn func(q *store.Queries) error) error
}

// Config says who the member is and how it keeps its membership and the
// lease.
type Config struct {
	Store Store
	// Member is the member's row: ID, Hostname, Address, PID, Version.
	// Join sets Started.
	Member store.Member
	// Renew is how often the member renews its row and, leading, the
	// lease; Lease how long a lease lasts from a renewal. DefaultRenew
	// and DefaultLease when zero.
	Renew, Lease time.Duration
	// Sole says that no other manager can be running on the database:
	// the store's own lock says so (SQLite). Every other member recorded
	// is then a previous run, dead however it died: Join ends them and
	// frees a lease one of them held, so that this one leads at once.
	Sole bool
	// Lead runs while the member leads, from the take-over of term until
	// ctx ends; it must return soon after.
	Lead func(ctx context.Context, term int64)
	// Log is where the member says when it leads and stops leading, and
	// why; slog.Default when nil.
	Log *slog.Logger
}

// Member is this manager's membership of its database: Run keeps it.
type Member struct {
	cfg       Config
	first     chan struct{} // closed once the first attempt at the lease has settled
	firstOnce sync.Once

	mu      sync.Mutex // guards leading, term and renewed
	leading bool
	term    int64 // the term led, or last led
	// renewed is when (monotonic) the last renewal of the member's row
	// that the database took was sent: the other members count this one
	// alive until about a timeout after it (RenewedAgo).
	renewed time.Time
}

// Join records the member on the database (its row, alive as of the
// database's now), ending the others when cfg.Sole; Run then keeps it. Join
// comes before the manager runs any job: a job whose member has no row
// counts as orphaned.
func Join(ctx context.Context, cfg Config) (*Member, error) {
	if cfg.Renew <= 0 {
		cfg.Renew = DefaultRenew
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if err := CheckTimes(cfg.Renew, 3*cfg.Renew, cfg.Lease); err != nil {
		return nil, err
	}
	if cfg.Store == nil || cfg.Lead == nil || cfg.Member.ID == "" {
		return nil, errors.New("membership: a store, a member id and a Lead function are required")
	}
	sent := time.Now()
	err := cfg.Store.Write(ctx, func(q *store.Queries) error {
		now, err := q.Now(ctx)
		if err != nil {
			return err
		}
		cfg.Member.Started = now
		if err := q.RenewMember(ctx, cfg.Member, now); err != nil {
			return err
		}
		if cfg.Sole {
			return q.EndOtherMembers(ctx, cfg.Member.ID)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record this manager among the database's managers: %w", err)
	}
	return &Member{cfg: cfg, first: make(chan struct{}), renewed: sent}, nil
}

// RenewedAgo is how long ago (by this process's monotonic clock) the last
// renewal of the member's row that the database took was sent. Once it
// nears the member timeout, the leader may take this member for dead and
// end its jobs: a job must not then make an agent call.
func (m *Member) RenewedAgo() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return time.Since(m.renewed)
}

// ID is the member's id.
func (m *Member) ID() string { return m.cfg.Member.ID }

// Leading reports whether the member leads now, and in which term.
func (m *Member) Leading() (term int64, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.term, m.leading
}

// Settled is closed once the member's first attempt at the lease has come
// back (or Run has returned): by then, if it took the lease, Lead has
// started.
func (m *Member) Settled() <-chan struct{} { return m.first }

// attempt is what one renewal came back with: the lease as it is after
// it, whether this member holds it (took it, or renewed it), or why not.
type attempt struct {
	lease store.Lease
	holds bool
	err   error // the write failed; or store.ErrLeaseLost from a renewal
}

// attempt renews the member's row and, in one write, the lease it holds
// in term (leading) or tries to take it (not leading).
func (m *Member) attempt(ctx context.Context, leading bool, term int64) attempt {
	var a attempt
	err := m.cfg.Store.Write(ctx, func(q *store.Queries) error {
		now, err := q.Now(ctx)
		if err != nil {
			return err
		}
		if err := q.RenewMember(ctx, m.cfg.Member, now); err != nil {
			return err
		}
		if leading {
			a.lease, a.err = q.RenewLease(ctx, m.cfg.Member.ID, term, now, m.cfg.Lease)
			a.holds = a.err == nil
			if errors.Is(a.err, store.ErrLeaseLost) {
				return nil // the membership's renewal stands
			}
			return a.err
		}
		a.lease, a.holds, err = q.TakeLease(ctx, m.cfg.Member.ID, now, m.cfg.Lease)
		return err
	})
	if err != nil {
		a.holds, a.err = false, err
	}
	return a
}

// leadership is the Lead that runs: cancel ends it, done is closed when it
// has returned.
type leadership struct {
	term   int64
	cancel context.CancelFunc
	done   chan struct{}
}

// Run keeps the membership until ctx ends: it renews the member's row every
// Renew and takes the lease when it is free or lapsed, runs Lead while it
// holds it, and stops Lead at the end the monotonic clock gives the lease
// (see the package's doc) or when a renewal finds it taken. When ctx ends it
// stops Lead, releases the lease, so that another member may lead at once,
// and records the member as ended.
func (m *Member) Run(ctx context.Context) {
	var (
		cur      *leadership // nil while not leading
		held     int64       // the term of the lease the database says this member holds; 0 for none known
		holder   string      // the other member last seen leading, to log a change once
		lastErr  string      // the last renewal error logged, to log a change once
		deadline = time.NewTimer(time.Hour)
	)
	deadline.Stop()
	defer deadline.Stop()
	settled := func() { m.firstOnce.Do(func() { close(m.first) }) }
	defer settled()
	stop := func(why string) {
		if cur == nil {
			return
		}
		deadline.Stop()
		cur.cancel()
		<-cur.done
		m.mu.Lock()
		m.leading = false
		m.mu.Unlock()
		level := slog.LevelWarn
		if ctx.Err() != nil {
			level = slog.LevelInfo // the manager stops: nothing went wrong
		}
		m.cfg.Log.Log(context.WithoutCancel(ctx), level, "stopped leading the fleet-wide work", "member", m.ID(), "term", cur.term, "why", why)
		cur = nil
	}
	tick := time.NewTicker(m.cfg.Renew)
	defer tick.Stop()
	for {
		sent := time.Now()
		leading := cur != nil
		var term int64
		if leading {
			term = cur.term
		}
		res := make(chan attempt, 1)
		go func() { res <- m.attempt(ctx, leading, term) }()
		var a attempt
	wait:
		for {
			select {
			case a = <-res:
				break wait
			case <-deadline.C:
				stop("no renewal of the lease came back in time")
			case <-ctx.Done():
				stop("the manager is stopping")
				// The attempt's write is abandoned if it has not started;
				// one under way is waited for, a lease length at most.
				select {
				case a = <-res:
					if a.holds {
						held = a.lease.Term
					}
				case <-time.After(m.cfg.Lease):
				}
				m.leave(ctx, held)
				return
			}
		}
		if a.err == nil || errors.Is(a.err, store.ErrLeaseLost) {
			m.mu.Lock()
			m.renewed = sent // the member's row was renewed
			m.mu.Unlock()
		}
		// What the attempt came back with.
		switch {
		case a.holds && leading && cur == nil:
			// A renewal that came back after this member stopped leading
			// on its clock: it leads again only from a take-over, in a
			// new term, at the next attempt.
			held = a.lease.Term
		case a.holds:
			held = a.lease.Term
			lapse := sent.Add(m.cfg.Lease - m.cfg.Renew) // monotonic
			if time.Until(lapse) <= 0 {
				// Too late to lead on this renewal: stop, and take the
				// lease again (a new term) at the next attempt.
				stop("the renewal of the lease came back too late")
				break
			}
			deadline.Reset(time.Until(lapse))
			if cur == nil {
				cur = m.lead(ctx, a.lease.Term)
				holder = ""
			}
			lastErr = ""
		case errors.Is(a.err, store.ErrLeaseLost):
			held = 0
			stop("another manager took the lease, or it lapsed")
		case a.err != nil:
			if a.err.Error() != lastErr {
				m.cfg.Log.Warn("renew this manager's membership and the leader lease", "member", m.ID(), "err", a.err)
				lastErr = a.err.Error()
			}
		default: // another member leads
			held = 0
			if a.lease.ManagerID != holder {
				holder = a.lease.ManagerID
				m.cfg.Log.Info("another manager leads the fleet-wide work", "member", m.ID(), "leader", holder, "term", a.lease.Term)
			}
			lastErr = ""
		}
		settled()
		select {
		case <-tick.C:
		case <-deadline.C:
			stop("no renewal of the lease came back in time")
		case <-ctx.Done():
			stop("the manager is stopping")
			m.leave(ctx, held)
			return
		}
	}
}

// lead starts Lead for term.
func (m *Member) lead(ctx context.Context, term int64) *leadership {
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l := &leadership{term: term, cancel: cancel, done: make(chan struct{})}
	m.mu.Lock()
	m.leading, m.term = true, term
	m.mu.Unlock()
	m.cfg.Log.Info("leading the fleet-wide work", "member", m.ID(), "term", term)
	go func() {
		defer close(l.done)
		m.cfg.Lead(lctx, term)
	}()
	return l
}

// leave releases the lease of term (0: none held) and records the member
// as ended, within a lease length.
func (m *Member) leave(ctx context.Context, term int64) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.Lease)
	defer cancel()
	err := m.cfg.Store.Write(wctx, func(q *store.Queries) error {
		now, err := q.Now(wctx)
		if err != nil {
			return err
		}
		if term != 0 {
			if err := q.ReleaseLease(wctx, m.cfg.Member.ID, term); err != nil {
				return err
			}
		}
		return q.LeaveMember(wctx, m.cfg.Member.ID, now)
	})
	if err != nil {
		m.cfg.Log.Warn("record this manager's leaving; the others see it as dead once its membership times out", "member", m.ID(), "err", err)
	}
}
