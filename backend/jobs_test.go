package backend_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
)

// deadline bounds every wait of these tests: generous, so that a slow
// machine under -race never fails them, and short enough that a hang does
// not wait for go test's own timeout.
const deadline = 30 * time.Second

// text is a job result, as operations return them (a fmt.Stringer).
type text string

func (t text) String() string { return string(t) }

// observed returns the core's manager with an observer that sends the id
// of each job it starts on the returned channel.
func observed(c *managertest.Core) (*backend.Manager, <-chan string) {
	ids := make(chan string, 16)
	return c.Manager.With(backend.RunOptions{Observe: func(id string) { ids <- id }}), ids
}

// A job records its outcome: Success with the operation's result, Failure
// with its error (and an event), and gives the caller the operation's
// answer.
func TestJobRecordsOutcome(t *testing.T) {
	c := managertest.Open(t, managertest.Options{})
	for _, tc := range []struct {
		name       string
		value      any
		err        error
		wantStatus string
		wantResult string
		wantError  string
	}{
		{name: "success", value: text("done: 3 things"), wantStatus: backend.JobSuccess, wantResult: "done: 3 things"},
		{name: "success with no result", wantStatus: backend.JobSuccess},
		{name: "failure", err: &backend.Error{Kind: backend.KindAgentFault, Msg: "the agent said no"}, wantStatus: backend.JobFailure, wantError: "the agent said no"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, ids := observed(c)
			value, err := m.RunJob(c.Admin(), "test "+tc.name, []string{"obj-" + tc.name}, func(context.Context, backend.JobRun) (any, error) {
				return tc.value, tc.err
			})
			if value != tc.value || !errors.Is(err, tc.err) {
				t.Fatalf("RunJob = %v, %v; want %v, %v", value, err, tc.value, tc.err)
			}
			j, err := c.Manager.Job(c.Admin(), <-ids)
			if err != nil {
				t.Fatal(err)
			}
			if j.Status != tc.wantStatus || j.Result != tc.wantResult || j.Error != tc.wantError || j.User != "admin" ||
				j.Summary != "test "+tc.name || j.EndedAt.IsZero() {
				t.Fatalf("job = %+v; want %s, result %q, error %q", j, tc.wantStatus, tc.wantResult, tc.wantError)
			}
			if n, err := c.Manager.JobsEnded(c.Admin(), []string{j.ID}); n != 1 || err != nil {
				t.Fatalf("JobsEnded = %d, %v; want 1", n, err)
			}
		})
	}
	events, err := c.Manager.Events(c.Admin(), false, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Kind != "JobFailed" || !strings.Contains(events[0].Description, "the agent said no") {
		t.Fatalf("events = %+v; want one JobFailed", events)
	}
}

// An aborted job's operation sees the abort at its next check and the job
// ends Aborted; a job that has ended cannot be aborted.
func TestJobAbort(t *testing.T) {
	c := managertest.Open(t, managertest.Options{})
	m, ids := observed(c)
	started := make(chan struct{})
	type outcome struct {
		value any
		err   error
	}
	done := make(chan outcome, 1)
	go func() {
		value, err := m.RunJob(c.Admin(), "long", []string{"vm1"}, func(_ context.Context, j backend.JobRun) (any, error) {
			close(started)
			select {
			case <-j.Aborted:
			case <-time.After(deadline):
			}
			return nil, j.Check()
		})
		done <- outcome{value, err}
	}()
	id := <-ids
	<-started
	if j, err := c.Manager.Job(c.Admin(), id); err != nil || j.Status != backend.JobRunning {
		t.Fatalf("job before the abort = %+v, %v; want Running", j, err)
	}
	j, err := c.Manager.AbortJob(c.Admin(), id)
	if err != nil || j.Status != backend.JobAborted || !strings.Contains(j.Error, "was aborted") {
		t.Fatalf("AbortJob = %+v, %v; want Aborted", j, err)
	}
	o := <-done
	if backend.KindOf(o.err) != backend.KindConflict || !strings.Contains(o.err.Error(), "was aborted") {
		t.Fatalf("the aborted job returned %v, %v; want a conflict saying it was aborted", o.value, o.err)
	}
	if _, err := c.Manager.AbortJob(c.Admin(), id); backend.KindOf(err) != backend.KindInvalidState {
		t.Fatalf("abort of an ended job: %v; want KindInvalidState", err)
	}
}

// An abort that comes when the job has no abortable point left (its last
// agent call is in flight) aborts nothing: the job runs to its end, and
// AbortJob fails with a conflict saying at which step the job was and how
// it ended, and returns the job as it ended.
func TestJobAbortTooLate(t *testing.T) {
	c := managertest.Open(t, managertest.Options{})
	m, ids := observed(c)
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := m.RunJob(c.Admin(), "past its last check", []string{"vm1"}, func(_ context.Context, j backend.JobRun) (any, error) {
			if err := j.Check(); err != nil {
				return nil, err
			}
			j.Progress(50, "the last call")
			close(started)
			select { // the call in flight is carried to its end
			case <-j.Aborted:
			case <-time.After(deadline):
			}
			return text("done"), nil
		})
		done <- err
	}()
	id := <-ids
	<-started
	j, err := c.Manager.AbortJob(c.Admin(), id)
	if backend.KindOf(err) != backend.KindConflict ||
		!strings.Contains(err.Error(), `was not aborted: at step "the last call" (50%) it had no abortable point left, and it ran to its end: Success`) {
		t.Fatalf("AbortJob of a job past its last abortable point: %v; want a conflict naming its step", err)
	}
	if j.ID != id || j.Status != backend.JobSuccess || j.Result != "done" {
		t.Fatalf("AbortJob returned the job %+v; want it as it ended, Success", j)
	}
	if err := <-done; err != nil {
		t.Fatalf("the job that was not aborted returned %v", err)
	}
}

// Jobs on one object run one after the other: the counter they change
// without a lock of their own is right, and go test -race finds no race on
// it; a job that cannot wait for the lock names the job that holds it.
func TestJobsOnOneObjectSerialise(t *testing.T) {
	c := managertest.Open(t, managertest.Options{})
	ctx, cancel := context.WithTimeout(c.Admin(), deadline)
	defer cancel()
	const jobs = 8
	var inside, most, total int // guarded by the object lock of "vm1" alone
	var wg sync.WaitGroup
	for i := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Manager.RunJob(ctx, fmt.Sprintf("job %d", i), []string{"vm1"}, func(context.Context, backend.JobRun) (any, error) {
				inside++
				most = max(most, inside)
				runtime.Gosched() // let another job in, were the lock not there
				total++
				inside--
				return nil, nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if total != jobs || most != 1 {
		t.Fatalf("%d jobs on one object ran %d times, at most %d at once; want %d, 1", jobs, total, most, jobs)
	}

	// While a job holds vm1, one that gives up waiting says who holds it.
	hm, holderIDs := observed(c)
	holding, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		_, err := hm.RunJob(c.Admin(), "holder", []string{"vm1"}, func(context.Context, backend.JobRun) (any, error) {
			close(holding)
			<-release
			return nil, nil
		})
		held <- err
	}()
	holder := <-holderIDs
	<-holding
	short, stop := context.WithTimeout(c.Admin(), 100*time.Millisecond)
	ran := false
	_, err := c.Manager.RunJob(short, "impatient", []string{"vm1"}, func(context.Context, backend.JobRun) (any, error) {
		ran = true
		return nil, nil
	})
	stop()
	if ran || backend.KindOf(err) != backend.KindConflict || !strings.Contains(err.Error(), "locked by job "+holder) {
		t.Fatalf("a job on a held object ran=%v, err=%v; want a conflict naming job %s", ran, err, holder)
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
}

// Jobs on different objects run at once: each waits, inside its job, for
// the other to have started, which would never happen were they run one
// after the other. Jobs taking overlapping objects in opposite orders do
// not deadlock.
func TestJobsOnTwoObjectsRunAtOnce(t *testing.T) {
	c := managertest.Open(t, managertest.Options{})
	ctx, cancel := context.WithTimeout(c.Admin(), deadline)
	defer cancel()
	in := map[string]chan struct{}{"vm1": make(chan struct{}), "vm2": make(chan struct{})}
	other := map[string]string{"vm1": "vm2", "vm2": "vm1"}
	errs := make(chan error, 2)
	for obj := range in {
		go func() {
			_, err := c.Manager.RunJob(ctx, "on "+obj, []string{obj}, func(context.Context, backend.JobRun) (any, error) {
				close(in[obj])
				select {
				case <-in[other[obj]]:
					return nil, nil
				case <-ctx.Done():
					return nil, fmt.Errorf("the job on %s did not start while the one on %s ran", other[obj], obj)
				}
			})
			errs <- err
		}()
	}
	for range in {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}

	var wg sync.WaitGroup
	for i := range 8 {
		objs := []string{"vm1", "vm2", "vm3"}
		if i%2 == 1 {
			objs = []string{"vm3", "vm2", "vm1"}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Manager.RunJob(ctx, "overlap", objs, func(context.Context, backend.JobRun) (any, error) { return nil, nil }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

// A job goes on when its caller stops waiting: the caller's context ending,
// or asynchronous mode, answers KindStillRunning with the job's id, and the
// job ends on its own with its result, which WaitJob then gives.
func TestJobOutlivesItsCaller(t *testing.T) {
	c := managertest.Open(t, managertest.Options{})
	for _, tc := range []struct {
		name string
		// call starts the job through run and returns when the caller
		// has stopped waiting; started is closed once the operation runs.
		call func(run func(*backend.Manager, context.Context) error, started <-chan struct{}) error
	}{
		{"the caller's context ends", func(run func(*backend.Manager, context.Context) error, started <-chan struct{}) error {
			ctx, cancel := context.WithCancel(c.Admin())
			errc := make(chan error, 1)
			go func() { errc <- run(c.Manager, ctx) }()
			<-started
			cancel()
			return <-errc
		}},
		{"asynchronous mode", func(run func(*backend.Manager, context.Context) error, _ <-chan struct{}) error {
			return run(c.Manager.With(backend.RunOptions{Async: true}), c.Admin())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			started, release := make(chan struct{}), make(chan struct{})
			err := tc.call(func(m *backend.Manager, ctx context.Context) error {
				_, err := m.RunJob(ctx, "outlives", []string{"vm-" + tc.name}, func(context.Context, backend.JobRun) (any, error) {
					close(started)
					<-release
					return text("finished"), nil
				})
				return err
			}, started)
			id := backend.JobIDOf(err)
			if backend.KindOf(err) != backend.KindStillRunning || id == "" {
				t.Fatalf("the caller got %v; want KindStillRunning with the job's id", err)
			}
			close(release)
			ctx, cancel := context.WithTimeout(c.Admin(), deadline)
			defer cancel()
			j, err := c.Manager.WaitJob(ctx, id)
			if err != nil || j.Status != backend.JobSuccess || j.Result != "finished" {
				t.Fatalf("WaitJob = %+v, %v; want Success with its result", j, err)
			}
		})
	}
}
