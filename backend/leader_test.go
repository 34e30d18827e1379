package backend_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/managertest"
	"xenmanager/backend/membership"
	"xenmanager/store"
)

// Short membership times, so that a dead manager is seen in seconds.
const (
	testRenew   = 100 * time.Millisecond
	testTimeout = 3 * time.Second
	testLease   = time.Second
)

// runMember joins c's manager to its database's managers as cfg says
// (the test's short times when zero) and runs the membership until the
// test ends; it returns once the manager is ready to serve.
func runMember(t *testing.T, c *managertest.Core, cfg backend.MemberConfig) *backend.Member {
	t.Helper()
	if cfg.Renew == 0 {
		cfg.Renew, cfg.Timeout, cfg.Lease = testRenew, testTimeout, testLease
	}
	ctx, cancel := context.WithCancel(context.Background())
	j, err := c.Manager.Join(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		j.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	rctx, rcancel := context.WithTimeout(ctx, deadline)
	defer rcancel()
	if err := j.Ready(rctx); err != nil {
		t.Fatalf("the manager never got ready: %v", err)
	}
	return j
}

// A manager alone on its database (SQLite) leads at once, in the first
// term, and runs the fleet-wide work: its heartbeats find a hung server
// Unreachable. list Manager shows it alive and leading.
func TestSingleManagerLeadsAndRunsTheHeartbeats(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 2, AgentTimeout: 2 * time.Second})
	ctx := c.Admin()
	j := runMember(t, c, backend.MemberConfig{Hostname: "mgr1", Address: "mgr1:10000", PID: 7, Version: "test", Sole: true,
		Heartbeat: 500 * time.Millisecond})
	if term, leading := j.Leading(); !leading || term != 1 {
		t.Fatalf("leading %v in term %d once ready; want term 1", leading, term)
	}
	members, err := c.Manager.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 1 || !members[0].Alive || !members[0].Leader || !members[0].This || members[0].Term != 1 ||
		members[0].ID != c.Manager.MemberID() || members[0].Hostname != "mgr1" || members[0].Address != "mgr1:10000" || members[0].PID != 7 {
		t.Fatalf("members %+v", members)
	}
	info, err := c.Manager.Info(ctx)
	if err != nil || !info.Member.Leader || info.LeaderID != c.Manager.MemberID() {
		t.Fatalf("Info: %+v, %v", info, err)
	}

	if err := c.AgentClient(1).Call(context.Background(), agentapi.MethodSimSet, nil, map[string]any{"hang": true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the leader's heartbeats to find ovs2 Unreachable", func() bool {
		s, err := c.Manager.Server(ctx, backend.Ref{Name: "ovs2"})
		return err == nil && s.Status == backend.ServerUnreachable
	})
	if err := c.AgentClient(1).Call(context.Background(), agentapi.MethodSimSet, nil, map[string]any{"hang": false}); err != nil {
		t.Fatal(err)
	}
}

// silenceable is a store whose writes can be made to fail, as those of a
// manager cut off from its database or frozen.
type silenceable struct {
	st     *store.Store
	silent atomic.Bool
}

func (s *silenceable) Write(ctx context.Context, fn func(q *store.Queries) error) error {
	if s.silent.Load() {
		return errors.New("cut off from the database")
	}
	return s.st.Write(ctx, fn)
}

// The leader ends the Running jobs of dead managers (one that died long
// ago, jobs of before jobs named their manager) at its take-over, never a
// live manager's; when that manager goes silent, the leader ends its job
// too once its membership times out, naming it.
func TestLeaderEndsOnlyDeadManagersJobs(t *testing.T) {
	c := managertest.Open(t, managertest.Options{})
	ctx := context.Background()
	err := c.Store.Write(ctx, func(q *store.Queries) error {
		now, _ := q.Now(ctx)
		if err := q.RenewMember(ctx, store.Member{ID: "dead", Hostname: "gone-host", PID: 99, Started: now.Add(-2 * time.Hour)}, now.Add(-time.Hour)); err != nil {
			return err
		}
		for _, j := range []store.Job{{ID: "j-dead", ManagerID: "dead"}, {ID: "j-live", ManagerID: "live"}, {ID: "j-old"}} {
			j.Summary, j.User, j.Status, j.CreatedAt = "start Vm "+j.ID, "admin", backend.JobRunning, now
			if err := q.InsertJob(ctx, j); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Another manager, alive on the same database.
	peer := &silenceable{st: c.Store}
	live, err := membership.Join(ctx, membership.Config{Store: peer, Member: store.Member{ID: "live", Hostname: "peer-host", PID: 5},
		Renew: testRenew, Lease: testLease, Lead: func(ctx context.Context, term int64) { <-ctx.Done() }, Log: discardLog()})
	if err != nil {
		t.Fatal(err)
	}

	j := runMember(t, c, backend.MemberConfig{Hostname: "mgr1"})
	if _, leading := j.Leading(); !leading {
		t.Fatal("the manager does not lead")
	}
	peerCtx, stopPeer := context.WithCancel(ctx)
	peerDone := make(chan struct{})
	go func() {
		defer close(peerDone)
		live.Run(peerCtx)
	}()
	t.Cleanup(func() { stopPeer(); <-peerDone })

	job := func(id string) backend.Job {
		t.Helper()
		jb, err := c.Manager.Job(c.Admin(), id)
		if err != nil {
			t.Fatal(err)
		}
		return jb
	}
	// The take-over has ended the dead's jobs before the manager is ready.
	for _, tc := range []struct {
		id, status, says string
	}{
		{"j-dead", backend.JobFailure, "manager dead (gone-host, pid 99) has not been heard from for more than 3s while the job ran"},
		{"j-old", backend.JobFailure, "the manager stopped while the job ran"},
		{"j-live", backend.JobRunning, ""},
	} {
		jb := job(tc.id)
		if jb.Status != tc.status || !strings.Contains(jb.Error, tc.says) {
			t.Errorf("job %s: %s %q; want %s saying %q", tc.id, jb.Status, jb.Error, tc.status, tc.says)
		}
	}

	// The live manager goes silent: once its membership times out, the
	// leader's periodic recovery ends its job.
	peer.silent.Store(true)
	waitFor(t, "the silent manager's job to end", func() bool { return job("j-live").Status != backend.JobRunning })
	if jb := job("j-live"); jb.Status != backend.JobFailure || !strings.Contains(jb.Error, "manager live (peer-host, pid 5) has not been heard from") {
		t.Errorf("the silent manager's job: %s %q", jb.Status, jb.Error)
	}
}

// The heartbeats' writes check the term they run in: a leader whose lease
// another manager took, or whose lease lapsed, cannot record a server's
// state; the same write outside the fleet-wide work (a job's) can.
func TestOldLeaderCannotRecordServerStates(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 1})
	ctx := c.Admin()
	s, err := c.Manager.Server(ctx, backend.Ref{Name: "ovs1"})
	if err != nil {
		t.Fatal(err)
	}
	me := c.Manager.MemberID()
	take := func(id string) int64 {
		t.Helper()
		var l store.Lease
		var taken bool
		err := c.Store.Write(ctx, func(q *store.Queries) (err error) {
			now, _ := q.Now(ctx)
			l, taken, err = q.TakeLease(ctx, id, now, time.Hour)
			return err
		})
		if err != nil || !taken {
			t.Fatalf("%s could not take the lease: %v", id, err)
		}
		return l.Term
	}
	term := take(me)
	for _, tc := range []struct {
		name  string
		ctx   context.Context
		setup func()
		err   error
	}{
		{"the leader in its term", backend.AsLeaderOf(ctx, me, term), nil, nil},
		{"a term of the past", backend.AsLeaderOf(ctx, me, term-1), nil, store.ErrLeaseLost},
		{"another manager's term", backend.AsLeaderOf(ctx, "other", term), nil, store.ErrLeaseLost},
		{"outside the fleet-wide work", ctx, nil, nil},
		{"the lease taken by another manager", backend.AsLeaderOf(ctx, me, term), func() {
			if err := c.Store.Write(ctx, func(q *store.Queries) error { return q.ReleaseLease(ctx, me, term) }); err != nil {
				t.Fatal(err)
			}
			take("other")
		}, store.ErrLeaseLost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			want := backend.ServerUnreachable
			if cur, _ := c.Manager.Server(ctx, backend.Ref{Name: "ovs1"}); cur.Status == want {
				want = backend.ServerRunning
			}
			err := c.Manager.SetServerStatus(tc.ctx, s.ID, want)
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			cur, _ := c.Manager.Server(ctx, backend.Ref{Name: "ovs1"})
			if changed := cur.Status == want; changed != (tc.err == nil) {
				t.Fatalf("status %s after the write (wanted %s): changed %v", cur.Status, want, changed)
			}
		})
	}
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
