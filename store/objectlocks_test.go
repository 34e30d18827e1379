package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Object locks, one step after another on one database: each step locks
// objects for a job of a member (or unlocks a job's), and says which job
// holds each object after, and whose lock refused the step.
func TestObjectLockSteps(t *testing.T) {
	bothEngines(t, testObjectLockSteps)
}

func testObjectLockSteps(t *testing.T, db testDB) {
	s := db.open(t)
	ctx := context.Background()
	now := time.UnixMilli(1_700_000_000_000).UTC()
	write := func(fn func(q *Queries) error) {
		t.Helper()
		if err := s.Write(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	// Jobs j1..j4 of members a and b; j4 has ended (its manager died
	// before it deleted its row), so its row holds nothing.
	write(func(q *Queries) error {
		for _, id := range []string{"a", "b"} {
			if err := q.RenewMember(ctx, Member{ID: id, Hostname: "host-" + id, Started: now}, now); err != nil {
				return err
			}
		}
		for _, j := range []struct{ id, member, status string }{
			{"j1", "a", "Running"}, {"j2", "b", "Running"}, {"j3", "a", "Running"}, {"j4", "b", "Failure"}} {
			if err := q.InsertJob(ctx, Job{ID: j.id, Summary: "job " + j.id, User: "admin", Status: j.status, CreatedAt: now, ManagerID: j.member}); err != nil {
				return err
			}
		}
		return nil
	})
	type step struct {
		name    string
		op      string // lock, unlock
		job     string
		member  string
		objects []string
		refused string            // the job whose lock refused the step, "" when it locked
		holders map[string]string // object -> job after the step
	}
	steps := []step{
		{name: "free objects are locked", op: "lock", job: "j1", member: "a", objects: []string{"vm1", "vm2"},
			holders: map[string]string{"vm1": "j1", "vm2": "j1"}},
		{name: "another member's job is refused, naming the holder; nothing recorded", op: "lock", job: "j2", member: "b", objects: []string{"vm3", "vm2"},
			refused: "j1", holders: map[string]string{"vm1": "j1", "vm2": "j1"}},
		{name: "the same member takes over its own row (its process lock decides)", op: "lock", job: "j3", member: "a", objects: []string{"vm2"},
			holders: map[string]string{"vm1": "j1", "vm2": "j3"}},
		{name: "unlocking a job frees its objects alone", op: "unlock", job: "j3",
			holders: map[string]string{"vm1": "j1"}},
		{name: "a freed object is locked by another member", op: "lock", job: "j2", member: "b", objects: []string{"vm2", "vm3"},
			holders: map[string]string{"vm1": "j1", "vm2": "j2", "vm3": "j2"}},
		{name: "an ended job's row holds nothing", op: "lock", job: "j4", member: "b", objects: []string{"vm4"},
			holders: map[string]string{"vm1": "j1", "vm2": "j2", "vm3": "j2", "vm4": "j4"}},
		{name: "and is taken over by another member's job", op: "lock", job: "j1", member: "a", objects: []string{"vm4"},
			holders: map[string]string{"vm1": "j1", "vm2": "j2", "vm3": "j2", "vm4": "j1"}},
		{name: "unlocking every job empties the table", op: "unlock", job: "j1", holders: map[string]string{"vm2": "j2", "vm3": "j2"}},
		{name: "a new job is recorded with its locks", op: "insert and lock", job: "j5", member: "a", objects: []string{"vm5"},
			holders: map[string]string{"vm2": "j2", "vm3": "j2", "vm5": "j5"}},
		{name: "a new job refused is recorded all the same, locking nothing", op: "insert and lock", job: "j6", member: "b", objects: []string{"vm6", "vm5"},
			refused: "j5", holders: map[string]string{"vm2": "j2", "vm3": "j2", "vm5": "j5"}},
	}
	// The locks are taken at the database's clock: on this machine, within
	// the test's span (a second's slack for the rounding to milliseconds).
	began := time.Now().Add(-time.Second)
	for _, st := range steps {
		var held *ObjectLock
		write(func(q *Queries) error {
			var err error
			switch st.op {
			case "unlock":
				return q.UnlockJobObjects(ctx, st.job)
			case "insert and lock":
				held, err = q.InsertJobAndLock(ctx, Job{ID: st.job, Summary: "job " + st.job, User: "admin", Status: "Running",
					CreatedAt: now, ManagerID: st.member}, st.objects)
				return err
			}
			held, err = q.LockObjects(ctx, st.job, st.member, "job "+st.job, st.objects)
			return err
		})
		switch {
		case st.refused == "" && held != nil:
			t.Errorf("%s: refused by %+v", st.name, *held)
		case st.refused != "" && (held == nil || held.JobID != st.refused):
			t.Errorf("%s: refused by %+v; want %s", st.name, held, st.refused)
		case held != nil && (held.Summary != "job "+st.refused || held.Hostname != "host-a" || held.ManagerID != "a" ||
			held.Since.Before(began) || held.Since.After(time.Now().Add(time.Second))):
			t.Errorf("%s: the holder %+v does not name its job, manager and time", st.name, *held)
		}
		if st.op == "insert and lock" {
			if j, err := s.Read().Job(ctx, st.job); err != nil || j.Status != "Running" || j.ManagerID != st.member {
				t.Errorf("%s: the job's row is %+v, %v; want it Running, of %s", st.name, j, err, st.member)
			}
		}
		locks, err := s.Read().ObjectLocks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, l := range locks {
			got[l.ObjectID] = l.JobID
		}
		if len(got) != len(st.holders) {
			t.Errorf("%s: holders %v; want %v", st.name, got, st.holders)
			continue
		}
		for o, j := range st.holders {
			if got[o] != j {
				t.Errorf("%s: holders %v; want %v", st.name, got, st.holders)
				break
			}
		}
	}
	// The holder as another member sees it; its own manager sees none.
	l, err := s.Read().ObjectLockHolder(ctx, "a", "vm2")
	if err != nil || l.JobID != "j2" || l.Hostname != "host-b" {
		t.Errorf("holder of vm2 seen by a: %+v, %v", l, err)
	}
	if _, err := s.Read().ObjectLockHolder(ctx, "b", "vm2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("holder of vm2 seen by b, its holder: %v; want ErrNotFound", err)
	}
}

// EndJobAndUnlock ends a Running job and frees its locks in one step; a
// job that has ended already is ErrNotFound, its locks freed all the same.
func TestEndJobAndUnlock(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		now := time.Now()
		err := s.Write(ctx, func(q *Queries) error {
			if err := q.InsertJob(ctx, Job{ID: "j1", Summary: "job", User: "admin", Status: "Running", CreatedAt: now, ManagerID: "a"}); err != nil {
				return err
			}
			_, err := q.LockObjects(ctx, "j1", "a", "job", []string{"vm1", "vm2"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []error{nil, ErrNotFound} {
			err := s.Write(ctx, func(q *Queries) error { return q.EndJobAndUnlock(ctx, "j1", "Success", "done", "", now) })
			if !errors.Is(err, want) && err != want {
				t.Fatalf("EndJobAndUnlock #%d = %v; want %v", i+1, err, want)
			}
			if locks, err := s.Read().ObjectLocks(ctx); err != nil || len(locks) != 0 {
				t.Fatalf("after EndJobAndUnlock #%d the locks are %+v, %v; want none", i+1, locks, err)
			}
		}
		if j, err := s.Read().Job(ctx, "j1"); err != nil || j.Status != "Success" || j.Result != "done" || j.Progress != 100 {
			t.Fatalf("the job after EndJobAndUnlock: %+v, %v", j, err)
		}
	})
}

// SetVMStateAndEndJob records the VM where a job left it with the job's
// end, in one step: a Running job ends with its locks freed; a job the
// leader ended stays as it ended (running false), the VM recorded all the
// same; a VM not recorded fails it, and the write leaves the job Running.
func TestSetVMStateAndEndJob(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		now := time.UnixMilli(1_700_000_000_000)
		err := s.Write(ctx, func(q *Queries) error {
			for _, err := range []error{
				q.InsertServerPool(ctx, ServerPool{ID: "p1", Name: "pool1", CreatedAt: now}),
				q.InsertRepository(ctx, Repository{ID: "r1", Name: "repo", PoolID: "p1", FSLocation: "/x", MountPoint: "/m", CreatedAt: now}),
				q.InsertVM(ctx, VM{ID: "v1", Name: "vm1", PoolID: "p1", RepoID: "r1", Status: "Stopped", MemoryMiB: 1, CPUCount: 1, DomainType: "xen_pvm", CreatedAt: now}),
			} {
				if err != nil {
					return err
				}
			}
			if _, err := q.UpsertServer(ctx, Server{ID: "s1", Name: "ovs1", UniqueID: "u1", Address: "127.0.0.1", Port: 1,
				AgentPassword: []byte{1}, Status: "Running", CreatedAt: now}); err != nil {
				return err
			}
			for _, j := range []struct{ id, status string }{{"j1", "Running"}, {"j2", "Failure"}, {"j3", "Running"}} {
				if _, err := q.InsertJobAndLock(ctx, Job{ID: j.id, Summary: "job", User: "admin", Status: j.status, CreatedAt: now, ManagerID: "a"},
					[]string{"o-" + j.id}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name                   string
			vm, server, vmStatus   string
			job                    string
			wantRunning            bool
			wantErr                error
			wantVM                 string // the VM's status after
			wantJob, wantJobResult string // the job's status and result after
		}{
			{name: "a running job ends with the VM's state", vm: "v1", server: "s1", vmStatus: "Running", job: "j1",
				wantRunning: true, wantVM: "Running", wantJob: "Success", wantJobResult: "done"},
			{name: "a job the leader ended stays as it ended; the VM is recorded", vm: "v1", vmStatus: "Stopped", job: "j2",
				wantVM: "Stopped", wantJob: "Failure"},
			{name: "a VM not recorded fails it; the job stays Running", vm: "v-none", vmStatus: "Running", job: "j3",
				wantErr: ErrNotFound, wantVM: "Stopped", wantJob: "Running"},
		} {
			var running bool
			err := s.Write(ctx, func(q *Queries) error {
				var err error
				running, err = q.SetVMStateAndEndJob(ctx, tc.vm, tc.server, tc.vmStatus, tc.job, "Success", "done", "", now)
				return err
			})
			if !errors.Is(err, tc.wantErr) || (err != nil) != (tc.wantErr != nil) || running != tc.wantRunning {
				t.Fatalf("%s: running %v, %v; want %v, %v", tc.name, running, err, tc.wantRunning, tc.wantErr)
			}
			v, err := s.Read().VM(ctx, "v1")
			if err != nil || v.Status != tc.wantVM || v.ServerID != tc.server && tc.wantErr == nil {
				t.Errorf("%s: the VM after: %+v, %v; want %s on %q", tc.name, v, err, tc.wantVM, tc.server)
			}
			j, err := s.Read().Job(ctx, tc.job)
			if err != nil || j.Status != tc.wantJob || j.Result != tc.wantJobResult {
				t.Errorf("%s: the job after: %+v, %v; want %s %q", tc.name, j, err, tc.wantJob, tc.wantJobResult)
			}
			locks, err := s.Read().ObjectLocks(ctx)
			held := false
			for _, l := range locks {
				held = held || l.JobID == tc.job
			}
			if err != nil || held != (tc.wantErr != nil) {
				t.Errorf("%s: the job's locks after: %+v, %v; want them held only when it failed", tc.name, locks, err)
			}
		}
	})
}

// SetJobsProgress writes down the progress of several jobs at once; a job
// that has ended keeps what its end wrote, and one not recorded is skipped.
func TestSetJobsProgress(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		now := time.UnixMilli(1_700_000_000_000)
		err := s.Write(ctx, func(q *Queries) error {
			for _, j := range []struct{ id, status string }{{"j1", "Running"}, {"j2", "Running"}, {"j3", "Success"}} {
				if err := q.InsertJob(ctx, Job{ID: j.id, Summary: "job", User: "admin", Status: j.status, Progress: 7, Message: "m", CreatedAt: now}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Write(ctx, func(q *Queries) error {
			return q.SetJobsProgress(ctx, []JobProgress{{"j1", 10, "placing"}, {"j2", 50, "start on ovs1"}, {"j3", 20, "late"}, {"j-none", 1, "x"}})
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []struct {
			id       string
			progress int
			message  string
		}{{"j1", 10, "placing"}, {"j2", 50, "start on ovs1"}, {"j3", 7, "m"}} {
			j, err := s.Read().Job(ctx, want.id)
			if err != nil || j.Progress != want.progress || j.Message != want.message {
				t.Errorf("job %s: %+v, %v; want %d %q", want.id, j, err, want.progress, want.message)
			}
		}
	})
}
