package backend

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"xenmanager/backend/membership"
	"xenmanager/store"
)

// MemberConfig says how this manager is a member of its database's
// managers and leads the fleet-wide work when it holds the lease.
type MemberConfig struct {
	// Hostname, Address (the SSH address it listens on), PID and Version
	// are what list Manager shows of it.
	Hostname, Address, Version string
	PID                        int
	// Renew, Timeout and Lease: the membership's renewal interval, the
	// silence after which a member is dead (its Running jobs are then
	// ended by the leader), the leader lease's length. The membership
	// package's defaults when zero.
	Renew, Timeout, Lease time.Duration
	// Heartbeat is the interval of the heartbeats the leader runs;
	// DefaultHeartbeatInterval when zero.
	Heartbeat time.Duration
	// Sole says that no other manager can run on the database (the
	// store's lock: SQLite): the members recorded are previous runs, dead.
	Sole bool
}

// memberState is what Join recorded of the membership, shared by every
// copy of the Manager (With).
type memberState struct {
	mu      sync.Mutex // guards the fields below
	timeout time.Duration
	renew   time.Duration
	sole    bool               // MemberConfig.Sole: no other manager runs on the database
	joined  *membership.Member // nil before Join
}

// checkAlive fails when this manager's membership has gone unrenewed for
// so long (the member timeout less a renewal interval) that the leader may
// take it for dead and end its jobs by what the agents report: a job then
// must not make its next agent call, which could land after the leader's
// decision (a start the leader found not made, made after all, while
// another manager starts the VM elsewhere). A manager that has not joined
// passes, and so does one alone on its database (SQLite: Sole), which no
// other manager can take for dead while it runs.
func (s *memberState) checkAlive() error {
	s.mu.Lock()
	joined, timeout, renew, sole := s.joined, s.timeout, s.renew, s.sole
	s.mu.Unlock()
	if joined == nil || sole {
		return nil
	}
	if ago := joined.RenewedAgo(); ago >= timeout-renew {
		return errorf(KindInvalidState, "this manager has not renewed its membership of the database for %s (member timeout %s): "+
			"the leader may take it for dead and end its jobs, so the job makes no further agent call", ago.Round(time.Millisecond), timeout)
	}
	return nil
}

// timeoutOr is the silence after which a member counts as dead: the
// member timeout Join was given, or the default.
func (s *memberState) timeoutOr() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timeout <= 0 {
		return membership.DefaultTimeout
	}
	return s.timeout
}

// Member is this manager's membership of its database: Run keeps it and
// leads the fleet-wide work while it holds the lease.
type Member struct {
	m        *Manager
	cfg      MemberConfig
	mb       *membership.Member
	tookOver chan struct{} // closed when the first take-over's recovery and reconciliation are done
	once     sync.Once
}

// Join records this manager among the managers of its database (a member
// with the id jobs record, MemberID); Run then keeps it. Join comes before
// the manager runs any job.
func (m *Manager) Join(ctx context.Context, cfg MemberConfig) (*Member, error) {
	if cfg.Renew <= 0 {
		cfg.Renew = membership.DefaultRenew
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = membership.DefaultTimeout
	}
	if cfg.Lease <= 0 {
		cfg.Lease = membership.DefaultLease
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeatInterval
	}
	if err := membership.CheckTimes(cfg.Renew, cfg.Timeout, cfg.Lease); err != nil {
		return nil, err
	}
	j := &Member{m: m, cfg: cfg, tookOver: make(chan struct{})}
	mb, err := membership.Join(ctx, membership.Config{Store: m.st,
		Member: store.Member{ID: m.member, Hostname: cfg.Hostname, Address: cfg.Address, PID: cfg.PID, Version: cfg.Version},
		Renew:  cfg.Renew, Lease: cfg.Lease, Sole: cfg.Sole, Lead: j.lead, Log: m.log})
	if err != nil {
		return nil, err
	}
	j.mb = mb
	m.membership.mu.Lock()
	m.membership.timeout, m.membership.renew, m.membership.sole, m.membership.joined = cfg.Timeout, cfg.Renew, cfg.Sole, mb
	m.membership.mu.Unlock()
	return j, nil
}

// MemberID is this manager's id among the managers of its database.
func (m *Manager) MemberID() string { return m.member }

// Run keeps the membership until ctx ends (see membership.Member.Run),
// leading the fleet-wide work while this manager holds the lease; when it
// returns, the fleet-wide work has stopped and the lease is released.
func (j *Member) Run(ctx context.Context) { j.mb.Run(ctx) }

// Ready waits until the first attempt at the lease has come back and, if
// this manager took it, its take-over has ended the dead managers' jobs
// and reconciled the VMs with the agents: then the manager may serve.
func (j *Member) Ready(ctx context.Context) error {
	select {
	case <-j.mb.Settled():
	case <-ctx.Done():
		return ctx.Err()
	}
	if _, leading := j.mb.Leading(); !leading {
		return nil
	}
	select {
	case <-j.tookOver:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// Leading reports whether this manager leads now, and in which term.
func (j *Member) Leading() (term int64, ok bool) { return j.mb.Leading() }

// membersPruneEvery is how often the leader deletes the rows of managers
// dead for longer than membersKeep.
const (
	membersPruneEvery = time.Hour
	membersKeep       = 24 * time.Hour
)

// lead is the fleet-wide work of term, run while this manager leads: at
// the take-over it ends the Running jobs of dead managers and reconciles
// the VMs with the agents, then runs the heartbeats (with the periodic
// reconciliation and the HA rounds they start) and, every renewal
// interval, the recovery of jobs whose manager died since; every hour it
// prunes the managers dead for a day. It returns once ctx ends and all of
// that has stopped. The work's context carries the term, which the writes
// an old leader must not make check (asLeader).
func (j *Member) lead(ctx context.Context, term int64) {
	m := j.m
	defer j.once.Do(func() { close(j.tookOver) })
	m.metrics.Leading(true)
	defer m.metrics.Leading(false)
	ctx = context.WithValue(ctx, leadershipKey{}, leadership{member: m.member, term: term})
	m.forgetFleetState()
	if n, err := m.recoverJobs(ctx); err != nil {
		m.log.Warn("end the jobs of managers that stopped", "err", err)
	} else if n > 0 {
		m.log.Warn("jobs left running by managers that stopped were ended", "jobs", n)
	}
	// VMs recorded running may have stopped while no manager led.
	if n, err := m.Reconcile(ctx); err != nil {
		m.log.Warn("reconcile at the take-over failed", "err", err)
	} else if n > 0 {
		m.log.Info("reconciled VM states with the agents", "changed", n)
	}
	m.pruneMembers(ctx)
	j.once.Do(func() { close(j.tookOver) })

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.Watch(ctx, j.cfg.Heartbeat)
	}()
	tick := time.NewTicker(j.cfg.Renew)
	defer tick.Stop()
	lastPrune := time.Now()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			m.ha.wg.Wait() // the HA round the last heartbeat started
			return
		case <-tick.C:
		}
		if n, err := m.recoverJobs(ctx); err != nil {
			if ctx.Err() == nil {
				m.log.Warn("end the jobs of managers that stopped", "err", err)
			}
		} else if n > 0 {
			m.log.Warn("jobs left running by managers that stopped were ended; reconciling", "jobs", n)
			if _, err := m.Reconcile(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("reconcile after ending the jobs of managers that stopped", "err", err)
			}
		}
		if time.Since(lastPrune) >= membersPruneEvery {
			lastPrune = time.Now()
			m.pruneMembers(ctx)
		}
	}
}

// forgetFleetState drops what the heartbeats and the HA rounds remember
// between rounds, at a take-over: another manager may have led since this
// one last did, and the fleet-wide work starts afresh from the store and
// the agents, as in a new process.
func (m *Manager) forgetFleetState() {
	m.hb.mu.Lock()
	m.hb.cursor, m.hb.misses, m.hb.pending, m.hb.instance, m.hb.resync = nil, nil, nil, nil, nil
	m.hb.probed = nil // held (holdEvents) is emptied by the last Watch's end
	m.hb.beats = 0
	m.hb.mu.Unlock()
	m.ha.mu.Lock()
	clear(m.ha.fenced)
	clear(m.ha.failed)
	clear(m.ha.waiting)
	m.ha.mu.Unlock()
}

// leadershipKey is the context key of the term a leader's work runs in.
type leadershipKey struct{}

type leadership struct {
	member string
	term   int64
}

// asLeader fails, with store.ErrLeaseLost, when ctx is the fleet-wide work
// of a term this manager no longer leads by the database (another took the
// lease, or it lapsed); any other context passes. The leader's own clock
// stops that work before its lease can lapse, but a write already on its
// way may land after; these writes check the term in their transaction:
// a server's state set by the heartbeats (Unreachable and Running again),
// the move of a pool's master, the end of a dead manager's job; and an HA
// restart checks it before it starts a VM elsewhere, the HA round before
// it records a fenced server's VM where its lease is or Stopped.
func asLeader(ctx context.Context, q *store.Queries) error {
	l, ok := ctx.Value(leadershipKey{}).(leadership)
	if !ok {
		return nil
	}
	now, err := q.Now(ctx)
	if err != nil {
		return err
	}
	return q.CheckLease(ctx, l.member, l.term, now)
}

// recoverJobs ends the Running jobs of the managers that are dead (stopped
// cleanly, silent for longer than the member timeout, or of before jobs
// named their manager), never a live manager's: each by the step it
// recorded (settleOrphan asks the agents how far it got, and the job ends
// Success with the VM recorded where the call left it, or Failure with
// the VM recorded as before it), each with a message naming its manager;
// it frees their object locks and returns how many it ended.
// Reconciliation then brings the other VMs in line with the agents. The
// agents are asked outside any transaction, while the dead job's object
// locks still keep other jobs off its VM; the job's end and the VM's state
// are then written in one transaction, if the job is still Running.
func (m *Manager) recoverJobs(ctx context.Context) (int, error) {
	timeout := m.membership.timeoutOr()
	q := m.st.Read()
	now, err := q.Now(ctx)
	if err != nil {
		return 0, err
	}
	jobs, err := q.OrphanedJobs(ctx, m.member, now, timeout)
	if err != nil || len(jobs) == 0 {
		return 0, err // a read first: no write while no manager died
	}
	members, err := q.Members(ctx)
	if err != nil {
		return 0, err
	}
	outcomes := make([]orphanOutcome, len(jobs))
	for i, job := range jobs {
		outcomes[i] = m.settleOrphan(ctx, job, orphanWho(job.ManagerID, members, timeout))
	}
	var ended []int
	err = m.st.Write(ctx, func(q *store.Queries) error {
		ended = ended[:0]
		if err := asLeader(ctx, q); err != nil {
			return err
		}
		now, err := q.Now(ctx)
		if err != nil {
			return err
		}
		for i, job := range jobs {
			o := outcomes[i]
			err := q.EndJob(ctx, job.ID, o.status, o.result, o.errText, now)
			if errors.Is(err, store.ErrNotFound) {
				continue // it ended meanwhile
			}
			if err != nil {
				return err
			}
			if o.vm != "" {
				if err := q.SetVMState(ctx, o.vm, o.server, o.vmStatus); err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
			}
			// The objects it held are free for the other managers' jobs.
			if err := q.UnlockJobObjects(ctx, job.ID); err != nil {
				return err
			}
			ended = append(ended, i)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, i := range ended {
		job, o := jobs[i], outcomes[i]
		m.metrics.JobRecovered(o.status)
		for _, id := range o.touched {
			m.place.capacity.forget(id) // the VM may have moved behind the placement cache
		}
		if o.status == JobFailure {
			m.log.Warn("a dead manager's job ended Failure", "job", job.ID, "summary", job.Summary, "error", o.errText)
			m.jobFailed(ctx, job.ID, job.PoolID, job.Summary, o.errText)
			continue
		}
		m.log.Info("a dead manager's job finished by the leader", "job", job.ID, "summary", job.Summary, "result", o.result)
	}
	return len(ended), nil
}

// orphanWho names the manager, id, of a job whose manager died, and how
// it died: "manager X (host, pid N) stopped".
func orphanWho(id string, members []store.Member, timeout time.Duration) string {
	if id == "" {
		return "the manager stopped"
	}
	i := slices.IndexFunc(members, func(mb store.Member) bool { return mb.ID == id })
	if i < 0 {
		return "manager " + id + " stopped"
	}
	mb := members[i]
	how := fmt.Sprintf("has not been heard from for more than %s", timeout)
	if mb.Ended {
		how = "stopped"
	}
	return fmt.Sprintf("manager %s (%s, pid %d) %s", id, mb.Hostname, mb.PID, how)
}

// pruneMembers deletes the rows of managers not seen for membersKeep.
func (m *Manager) pruneMembers(ctx context.Context) {
	err := m.st.Write(ctx, func(q *store.Queries) error {
		now, err := q.Now(ctx)
		if err != nil {
			return err
		}
		n, err := q.PruneMembers(ctx, now.Add(-membersKeep))
		if n > 0 {
			m.log.Info("forgot managers not seen for a day", "managers", n)
		}
		return err
	})
	if err != nil && ctx.Err() == nil {
		m.log.Warn("forget managers not seen for a day", "err", err)
	}
}

// ManagerMember is one manager process of the database, as list Manager
// shows it.
type ManagerMember struct {
	ID, Hostname, Address, Version string
	PID                            int
	Started, LastSeen              time.Time
	// Alive: renewed within the member timeout and not stopped. Leader:
	// holds the lease, in Term (0 for the others). This: the manager
	// answering.
	Alive, Leader bool
	Term          int64
	This          bool
}

// Members lists the managers of the database, the earliest started first.
func (m *Manager) Members(ctx context.Context) ([]ManagerMember, error) {
	q := m.st.Read()
	now, err := q.Now(ctx)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read the database's clock", Cause: err}
	}
	rows, err := q.Members(ctx)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read managers", Cause: err}
	}
	lease, err := q.Lease(ctx)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read the leader lease", Cause: err}
	}
	timeout := m.membership.timeoutOr()
	out := make([]ManagerMember, 0, len(rows))
	for _, r := range rows {
		mm := ManagerMember{ID: r.ID, Hostname: r.Hostname, Address: r.Address, Version: r.Version, PID: r.PID,
			Started: r.Started, LastSeen: r.LastSeen, Alive: r.Alive(now, timeout), Leader: lease.HeldBy(r.ID, now), This: r.ID == m.member}
		if mm.Leader {
			mm.Term = lease.Term
		}
		out = append(out, mm)
	}
	return out, nil
}

// thisMember is this manager's entry of members: the zero value, but for
// its id, before it joined.
func thisMember(m *Manager, members []ManagerMember) ManagerMember {
	for _, mm := range members {
		if mm.This {
			return mm
		}
	}
	return ManagerMember{ID: m.member, This: true}
}

// leaderOf is the id of the member that leads, or "".
func leaderOf(members []ManagerMember) string {
	for _, mm := range members {
		if mm.Leader {
			return mm.ID
		}
	}
	return ""
}
