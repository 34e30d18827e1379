package store

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"
)

// The leader lease, one step after another on one database: each step
// takes, renews, releases or checks the lease as member who at a time
// given from t0, and says what it must find. Times are given, not read
// from a clock, so that "late" and "expired" are exact.
func TestLeaseSteps(t *testing.T) {
	bothEngines(t, testLeaseSteps)
}

func testLeaseSteps(t *testing.T, db testDB) {
	s := db.open(t)
	ctx := context.Background()
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	const lease = 5 * time.Second
	type step struct {
		name   string
		op     string // take, renew, release, check
		who    string
		term   int64 // of renew, release and check
		at     time.Duration
		taken  bool  // take: whether who took it
		err    error // renew, check
		holder string
		want   int64 // the term after the step
	}
	steps := []step{
		{name: "free: the first member takes it", op: "take", who: "a", at: 0, taken: true, holder: "a", want: 1},
		{name: "held: another member cannot take it", op: "take", who: "b", at: time.Second, holder: "a", want: 1},
		{name: "the holder checks it", op: "check", who: "a", term: 1, at: 2 * time.Second, holder: "a", want: 1},
		{name: "another member's check fails", op: "check", who: "b", term: 1, at: 2 * time.Second, err: ErrLeaseLost, holder: "a", want: 1},
		{name: "renewed in time", op: "renew", who: "a", term: 1, at: 4 * time.Second, holder: "a", want: 1},
		{name: "held past the first end thanks to the renewal", op: "take", who: "b", at: 6 * time.Second, holder: "a", want: 1},
		{name: "renewed late: the lease lapsed at 9s", op: "renew", who: "a", term: 1, at: 10 * time.Second, err: ErrLeaseLost, holder: "a", want: 1},
		{name: "a lapsed lease fails the check", op: "check", who: "a", term: 1, at: 10 * time.Second, err: ErrLeaseLost, holder: "a", want: 1},
		{name: "expired: another member takes it, in a new term", op: "take", who: "b", at: 10 * time.Second, taken: true, holder: "b", want: 2},
		{name: "the old leader's renewal of its term fails", op: "renew", who: "a", term: 1, at: 11 * time.Second, err: ErrLeaseLost, holder: "b", want: 2},
		{name: "the old leader's check fails", op: "check", who: "a", term: 1, at: 11 * time.Second, err: ErrLeaseLost, holder: "b", want: 2},
		{name: "the old leader's release changes nothing", op: "release", who: "a", term: 1, at: 11 * time.Second, holder: "b", want: 2},
		{name: "a renewal with a stale term of the holder fails", op: "renew", who: "b", term: 1, at: 11 * time.Second, err: ErrLeaseLost, holder: "b", want: 2},
		{name: "the holder taking it again starts a new term", op: "take", who: "b", at: 12 * time.Second, taken: true, holder: "b", want: 3},
		{name: "the old term's check fails after", op: "check", who: "b", term: 2, at: 12 * time.Second, err: ErrLeaseLost, holder: "b", want: 3},
		{name: "released: free at once", op: "release", who: "b", term: 3, at: 13 * time.Second, holder: "b", want: 3},
		{name: "a released lease is not renewed", op: "renew", who: "b", term: 3, at: 13 * time.Second, err: ErrLeaseLost, holder: "b", want: 3},
		{name: "released: taken before it would have lapsed", op: "take", who: "a", at: 13 * time.Second, taken: true, holder: "a", want: 4},
	}
	for _, st := range steps {
		now := t0.Add(st.at)
		var taken bool
		var err error
		werr := s.Write(ctx, func(q *Queries) error {
			switch st.op {
			case "take":
				_, taken, err = q.TakeLease(ctx, st.who, now, lease)
			case "renew":
				var l Lease
				l, err = q.RenewLease(ctx, st.who, st.term, now, lease)
				if err == nil && !l.Expires.Equal(now.Add(lease)) {
					t.Errorf("%s: renewed until %s, want %s", st.name, l.Expires, now.Add(lease))
				}
			case "release":
				err = q.ReleaseLease(ctx, st.who, st.term)
			case "check":
				err = q.CheckLease(ctx, st.who, st.term, now)
			}
			return nil
		})
		if werr != nil {
			t.Fatalf("%s: %v", st.name, werr)
		}
		if taken != st.taken || !errors.Is(err, st.err) || (err != nil) != (st.err != nil) {
			t.Errorf("%s: taken %v, err %v; want %v, %v", st.name, taken, err, st.taken, st.err)
		}
		l, lerr := s.Read().Lease(ctx)
		if lerr != nil {
			t.Fatal(lerr)
		}
		if l.ManagerID != st.holder || l.Term != st.want {
			t.Errorf("%s: lease held by %q in term %d; want %q in term %d", st.name, l.ManagerID, l.Term, st.holder, st.want)
		}
	}
}

// Membership: a member's row is written at its first renewal and moved on
// after; a member that left, one not seen within the timeout and one no
// longer recorded are dead, and their Running jobs (and those of before
// jobs named their manager) are orphaned; a live member's and this
// member's are not. Pruning deletes old rows but the lease holder's.
func TestMembersAndOrphanedJobs(t *testing.T) {
	bothEngines(t, testMembersAndOrphanedJobs)
}

func testMembersAndOrphanedJobs(t *testing.T, db testDB) {
	s := db.open(t)
	ctx := context.Background()
	now := time.UnixMilli(1_700_000_000_000).UTC()
	const timeout = 5 * time.Second
	member := func(id string) Member {
		return Member{ID: id, Hostname: "host-" + id, Address: "h:10000", PID: 42, Version: "1.0", Started: now.Add(-time.Hour)}
	}
	write := func(fn func(q *Queries) error) {
		t.Helper()
		if err := s.Write(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	write(func(q *Queries) error {
		for _, m := range []struct {
			id   string
			seen time.Duration // before now
		}{{"self", 0}, {"live", 4 * time.Second}, {"late", 6 * time.Second}, {"left", 0}, {"ancient", 48 * time.Hour}} {
			if err := q.RenewMember(ctx, member(m.id), now.Add(-m.seen)); err != nil {
				return err
			}
		}
		if err := q.LeaveMember(ctx, "left", now); err != nil {
			return err
		}
		for _, j := range []struct{ id, manager, status string }{
			{"j-self", "self", "Running"}, {"j-live", "live", "Running"}, {"j-late", "late", "Running"},
			{"j-left", "left", "Running"}, {"j-old", "", "Running"}, {"j-gone", "pruned", "Running"},
			{"j-late-done", "late", "Success"},
		} {
			if err := q.InsertJob(ctx, Job{ID: j.id, Summary: "s", User: "admin", Status: j.status, CreatedAt: now, ManagerID: j.manager}); err != nil {
				return err
			}
		}
		return nil
	})
	// The renewal moved last_seen, not the row's other columns.
	write(func(q *Queries) error { return q.RenewMember(ctx, Member{ID: "self", Hostname: "other"}, now) })
	members, err := s.Read().Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	alive := map[string]bool{}
	for _, m := range members {
		alive[m.ID] = m.Alive(now, timeout)
		if m.ID == "self" && (m.Hostname != "host-self" || m.PID != 42 || !m.Started.Equal(now.Add(-time.Hour)) || !m.LastSeen.Equal(now)) {
			t.Errorf("member self after a renewal: %+v", m)
		}
	}
	if want := map[string]bool{"self": true, "live": true, "late": false, "left": false, "ancient": false}; !maps.Equal(alive, want) {
		t.Errorf("alive = %v, want %v", alive, want)
	}

	jobs, err := s.Read().OrphanedJobs(ctx, "self", now, timeout)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, j := range jobs {
		ids = append(ids, j.ID+"@"+j.ManagerID)
	}
	slices.Sort(ids)
	if want := []string{"j-gone@pruned", "j-late@late", "j-left@left", "j-old@"}; !slices.Equal(ids, want) {
		t.Errorf("orphaned jobs = %v, want %v", ids, want)
	}

	write(func(q *Queries) error {
		if err := q.SetJobStep(ctx, "j-late", `{"call":"start_vm"}`); err != nil {
			return err
		}
		if err := q.EndJob(ctx, "j-late", "Failure", "", "its manager died", now); err != nil {
			return err
		}
		if err := q.EndJob(ctx, "j-late-done", "Failure", "", "its manager died", now); !errors.Is(err, ErrNotFound) {
			t.Errorf("EndJob of an ended job: %v, want ErrNotFound", err)
		}
		if err := q.SetJobStep(ctx, "j-late-done", "late"); !errors.Is(err, ErrNotFound) {
			t.Errorf("SetJobStep of an ended job: %v, want ErrNotFound", err)
		}
		return nil
	})
	if j, err := s.Read().Job(ctx, "j-late-done"); err != nil || j.Status != "Success" {
		t.Errorf("an ended job after EndJob: %+v, %v", j, err)
	}
	if j, err := s.Read().Job(ctx, "j-late"); err != nil || j.Status != "Failure" || j.Error != "its manager died" || j.EndedAt.IsZero() || j.Step != `{"call":"start_vm"}` {
		t.Errorf("a failed orphan: %+v, %v", j, err)
	}

	// Pruning: members not seen for a day go, but the lease holder's row.
	write(func(q *Queries) error {
		_, _, err := q.TakeLease(ctx, "ancient", now.Add(-48*time.Hour), time.Second)
		return err
	})
	var pruned int64
	write(func(q *Queries) (err error) { pruned, err = q.PruneMembers(ctx, now.Add(-24*time.Hour)); return err })
	if pruned != 0 {
		t.Errorf("pruned %d members while the only old one holds the lease", pruned)
	}
	write(func(q *Queries) error {
		_, _, err := q.TakeLease(ctx, "self", now, time.Second)
		return err
	})
	write(func(q *Queries) (err error) { pruned, err = q.PruneMembers(ctx, now.Add(-24*time.Hour)); return err })
	if members, _ := s.Read().Members(ctx); pruned != 1 || len(members) != 4 {
		t.Errorf("pruned %d, %d members left; want 1 and 4", pruned, len(members))
	}

	// A manager that holds the database alone ends the others and frees
	// their lease.
	write(func(q *Queries) error {
		_, _, err := q.TakeLease(ctx, "live", now, time.Hour)
		return err
	})
	write(func(q *Queries) error { return q.EndOtherMembers(ctx, "self") })
	members, _ = s.Read().Members(ctx)
	for _, m := range members {
		if m.Ended != (m.ID != "self") {
			t.Errorf("after EndOtherMembers: %s ended %v", m.ID, m.Ended)
		}
	}
	write(func(q *Queries) error {
		_, taken, err := q.TakeLease(ctx, "self", now, time.Second)
		if !taken {
			t.Error("the lease of an ended member was not freed")
		}
		return err
	})
}

// Now is the database's clock, and it moves on within a transaction (a
// lease set late in a long write must not end early): two readings in one
// write differ once the clock has ticked.
func TestNowMovesWithinAWrite(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		err := s.Write(ctx, func(q *Queries) error {
			first, err := q.Now(ctx)
			if err != nil {
				return err
			}
			if d := time.Since(first); d > time.Hour || d < -time.Hour {
				t.Errorf("the database's clock reads %s, this machine's %s", first, time.Now().UTC())
			}
			for range 100000 {
				now, err := q.Now(ctx)
				if err != nil || now.After(first) {
					return err
				}
			}
			t.Error("the database's clock did not move within a write")
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
