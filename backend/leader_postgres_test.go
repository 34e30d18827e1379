package backend_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
	"xenmanager/store"
	"xenmanager/store/pgtest"
)

// Two manager cores on one PostgreSQL database: the first to start leads,
// the other follows and leaves the leader's running job alone. The
// leader's core is then cut off from the database (its store closed under
// it): it stops leading before its lease ends by the database's clock, the
// other takes over in the next term within the bound, and ends the dead
// leader's job once its membership has timed out, naming it.
func TestTwoManagersOnPostgresTakeOver(t *testing.T) {
	dsn := pgtest.Database(t)
	key := filepath.Join(t.TempDir(), "secret.key") // one key for both, as managers of one database share
	a := managertest.Open(t, managertest.Options{Database: dsn, SecretKeyFile: key})
	ja := runMember(t, a, backend.MemberConfig{Hostname: "host-a"})
	b := managertest.Open(t, managertest.Options{Database: dsn, SecretKeyFile: key})
	jb := runMember(t, b, backend.MemberConfig{Hostname: "host-b"})
	termA, leadingA := ja.Leading()
	if _, leadingB := jb.Leading(); !leadingA || leadingB {
		t.Fatalf("a leads %v, b leads %v; want a alone", leadingA, leadingB)
	}
	ctx := context.Background()
	members, err := b.Manager.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 2 || !members[0].Alive || !members[0].Leader || members[0].This || !members[1].Alive || members[1].Leader || !members[1].This {
		t.Fatalf("list Manager on b: %+v", members)
	}
	const jobID = "0004fb0000090000e2e0000000000003"
	err = a.Store.Write(ctx, func(q *store.Queries) error {
		return q.InsertJob(ctx, store.Job{ID: jobID, Summary: "start Vm of a", User: "admin", Status: backend.JobRunning,
			CreatedAt: time.Now(), ManagerID: a.Manager.MemberID()})
	})
	if err != nil {
		t.Fatal(err)
	}

	cut := time.Now()
	if err := a.Store.Close(); err != nil {
		t.Fatal(err)
	}
	// a stops on its own clock; polled, so noticed no earlier than it
	// happened.
	var stopped time.Time
	waitFor(t, "a to stop leading", func() bool {
		_, leading := ja.Leading()
		stopped = time.Now()
		return !leading
	})
	waitFor(t, "b to lead", func() bool { _, leading := jb.Leading(); return leading })
	took := time.Since(cut)
	lease, err := b.Store.Read().Lease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if lease.ManagerID != b.Manager.MemberID() || lease.Term != termA+1 {
		t.Fatalf("lease %+v after the take-over; want b's in term %d", lease, termA+1)
	}
	t.Logf("a cut off at 0: a stopped leading by %s, b led by %s (lease %s, renewal %s)", stopped.Sub(cut).Round(time.Millisecond),
		took.Round(time.Millisecond), testLease, testRenew)

	waitFor(t, "b to end a's job", func() bool {
		j, err := b.Manager.Job(b.Admin(), jobID)
		return err == nil && j.Status != backend.JobRunning
	})
	j, _ := b.Manager.Job(b.Admin(), jobID)
	if j.Status != backend.JobFailure || !strings.Contains(j.Error, "manager "+a.Manager.MemberID()+" (host-a, pid ") {
		t.Fatalf("a's job: %s %q", j.Status, j.Error)
	}
}

// A leader whose database connection is cut (its store's pools closed)
// stops leading before its lease ends by the database's clock, which a
// second manager on the same database reads.
func TestLeaderCutOffFromPostgresStopsBeforeItsLeaseEnds(t *testing.T) {
	dsn := pgtest.Database(t)
	key := filepath.Join(t.TempDir(), "secret.key") // one key for both, as managers of one database share
	a := managertest.Open(t, managertest.Options{Database: dsn, SecretKeyFile: key})
	ja := runMember(t, a, backend.MemberConfig{Hostname: "host-a"})
	b := managertest.Open(t, managertest.Options{Database: dsn, SecretKeyFile: key}) // only to read the database afterwards
	if _, leading := ja.Leading(); !leading {
		t.Fatal("a does not lead")
	}
	if err := a.Store.Close(); err != nil {
		t.Fatal(err)
	}
	var stopped time.Time
	waitFor(t, "a to stop leading", func() bool {
		_, leading := ja.Leading()
		stopped = time.Now()
		return !leading
	})
	ctx := context.Background()
	var now time.Time
	var lease store.Lease
	before := time.Now()
	err := b.Store.Write(ctx, func(q *store.Queries) (err error) {
		if now, err = q.Now(ctx); err != nil {
			return err
		}
		lease, err = q.Lease(ctx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// The lease's end on this process's clock: the database's now was
	// read after before, so this end is no later than the true one.
	end := before.Add(lease.Expires.Sub(now))
	if lease.ManagerID != a.Manager.MemberID() || !stopped.Before(end) {
		t.Fatalf("a stopped leading at %s, not before its lease (%+v) ended at %s", stopped.Format(time.StampMilli), lease, end.Format(time.StampMilli))
	}
	t.Logf("a stopped leading %s before its lease ended", end.Sub(stopped).Round(time.Millisecond))
}
