package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"xenmanager/store/pgtest"
)

// Jobs of another manager: an abort asked through a manager that does not
// run the job is recorded in its row and found by the manager that runs
// it, only while the job runs; JobsEnded counts the ended jobs of a list in
// one read, however long the list.
func TestJobsOfAnotherManager(t *testing.T) {
	bothEngines(t, testJobsOfAnotherManager)
}

func testJobsOfAnotherManager(t *testing.T, db testDB) {
	s := db.open(t)
	ctx := context.Background()
	now := time.UnixMilli(1_700_000_000_000)
	jobs := []struct{ id, manager, status string }{
		{"j-a1", "a", "Running"}, {"j-a2", "a", "Running"}, {"j-a-done", "a", "Success"},
		{"j-b1", "b", "Running"},
	}
	err := s.Write(ctx, func(q *Queries) error {
		for _, j := range jobs {
			if err := q.InsertJob(ctx, Job{ID: j.id, Summary: "s", User: "admin", Status: j.status, CreatedAt: now, ManagerID: j.manager}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		id      string
		wantErr error
	}{
		{"a running job of a", "j-a2", nil},
		{"a running job of b", "j-b1", nil},
		{"again: the flag stays", "j-a2", nil},
		{"an ended job", "j-a-done", ErrNotFound},
		{"no such job", "j-none", ErrNotFound},
	} {
		err := s.Write(ctx, func(q *Queries) error { return q.RequestJobAbort(ctx, tc.id) })
		if !errors.Is(err, tc.wantErr) || (err != nil) != (tc.wantErr != nil) {
			t.Fatalf("%s: RequestJobAbort(%s) = %v; want %v", tc.name, tc.id, err, tc.wantErr)
		}
	}
	for _, tc := range []struct{ manager, want string }{{"a", "j-a2"}, {"b", "j-b1"}, {"c", ""}} {
		ids, err := s.Read().AbortRequestedJobs(ctx, tc.manager)
		if err != nil {
			t.Fatal(err)
		}
		if want := slices.DeleteFunc([]string{tc.want}, func(s string) bool { return s == "" }); !slices.Equal(ids, want) {
			t.Fatalf("AbortRequestedJobs(%s) = %v; want %v", tc.manager, ids, want)
		}
	}
	if j, err := s.Read().Job(ctx, "j-a2"); err != nil || !j.AbortRequested {
		t.Fatalf("job j-a2 = %+v, %v; want its abort requested", j, err)
	}
	if j, err := s.Read().Job(ctx, "j-a1"); err != nil || j.AbortRequested {
		t.Fatalf("job j-a1 = %+v, %v; want no abort requested", j, err)
	}
	// Once the job has ended, its manager no longer finds it.
	if err := s.Write(ctx, func(q *Queries) error { return q.EndJob(ctx, "j-a2", "Aborted", "", "aborted", now) }); err != nil {
		t.Fatal(err)
	}
	if ids, err := s.Read().AbortRequestedJobs(ctx, "a"); err != nil || len(ids) != 0 {
		t.Fatalf("AbortRequestedJobs(a) after the job ended = %v, %v; want none", ids, err)
	}

	// JobsEnded over more ids than one query names.
	many := make([]string, 0, 2*jobsEndedChunk+7)
	err = s.Write(ctx, func(q *Queries) error {
		for i := range cap(many) {
			id := fmt.Sprintf("j-many-%04d", i)
			many = append(many, id)
			status := "Running"
			if i%3 == 0 {
				status = "Failure"
			}
			if err := q.InsertJob(ctx, Job{ID: id, Summary: "s", User: "admin", Status: status, CreatedAt: now, ManagerID: "a"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ids  []string
		want int
	}{
		{"none", nil, 0},
		{"running, ended, aborted, unknown", []string{"j-a1", "j-a-done", "j-a2", "j-none"}, 2},
		{"more than one query's worth", many, (len(many) + 2) / 3},
	} {
		n, err := s.Read().JobsEnded(ctx, tc.ids)
		if err != nil || n != tc.want {
			t.Fatalf("%s: JobsEnded = %d, %v; want %d", tc.name, n, err, tc.want)
		}
	}
}

// BenchmarkJobPoll is what one waiter for a job of another manager costs
// the database at each poll (backend's WaitJob reads the row every 200 ms):
// one read of a job's row by id among 10,000 jobs, on each engine.
func BenchmarkJobPoll(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchJobPoll(b, filepath.Join(b.TempDir(), "manager.db")) })
	b.Run("postgres", func(b *testing.B) { benchJobPoll(b, pgtest.Database(b)) })
}

func benchJobPoll(b *testing.B, target string) {
	ctx := context.Background()
	s, err := Open(ctx, target)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	const jobs = 10_000
	err = s.Write(ctx, func(q *Queries) error {
		for i := range jobs {
			if err := q.InsertJob(ctx, Job{ID: fmt.Sprintf("job%05d", i), Summary: "start Vm", User: "admin", Status: "Success",
				CreatedAt: now, ManagerID: "a"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		i++
		if _, err := s.Read().Job(ctx, fmt.Sprintf("job%05d", i%jobs)); err != nil {
			b.Fatal(err)
		}
	}
}
