package backend_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/managertest"
	"xenmanager/store/pgtest"
)

// twoCores opens two manager cores on one new PostgreSQL database, with
// the same secret key, as two managers of one fleet: a with opts's agents,
// b with none.
func twoCores(t *testing.T, opts managertest.Options) (a, b *managertest.Core) {
	t.Helper()
	opts.Database = pgtest.Database(t)
	opts.SecretKeyFile = filepath.Join(t.TempDir(), "secret.key")
	if opts.Agents > 0 {
		a = managertest.Ready(t, opts)
	} else {
		a = managertest.Open(t, opts)
	}
	opts.Agents = 0
	b = managertest.Open(t, opts)
	return a, b
}

// A job running on manager a, seen from manager b on the same database:
// b's show Job follows its progress (written down every second), b's wait
// Job waits for its end (bounded by b's context, as for a local job), and
// b's JobsEnded counts it running, then ended.
func TestJobOfAnotherManagerWaitedForAndFollowed(t *testing.T) {
	a, b := twoCores(t, managertest.Options{})
	m, ids := observed(a)
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := m.RunJob(a.Admin(), "long on a", []string{"vm1"}, func(_ context.Context, j backend.JobRun) (any, error) {
			j.Progress(10, "placing")
			j.Progress(40, "copying")
			select {
			case <-release:
			case <-time.After(deadline):
			}
			return text("copied"), nil
		})
		done <- err
	}()
	id := <-ids
	ctx := b.Admin()
	waitFor(t, "b to see the progress of a's job", func() bool {
		j, err := b.Manager.Job(ctx, id)
		return err == nil && j.Status == backend.JobRunning && j.Progress == 40 && j.Message == "copying"
	})
	short, cancel := context.WithTimeout(ctx, 3*jobPoll)
	_, err := b.Manager.WaitJob(short, id)
	cancel()
	if backend.KindOf(err) != backend.KindStillRunning || backend.JobIDOf(err) != id {
		t.Fatalf("b's WaitJob of a's running job with a short context = %v; want KindStillRunning naming it", err)
	}
	// A multi-object action's bar on b: one job running on a, one ended.
	ended, err := b.Manager.RunJob(ctx, "short on b", []string{"vm2"}, func(context.Context, backend.JobRun) (any, error) { return nil, nil })
	if ended != nil || err != nil {
		t.Fatal(ended, err)
	}
	jobs, err := b.Manager.Jobs(ctx, 10)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("b's jobs = %+v, %v", jobs, err)
	}
	both := []string{jobs[0].ID, jobs[1].ID}
	if n, err := b.Manager.JobsEnded(ctx, both); n != 1 || err != nil {
		t.Fatalf("b's JobsEnded with a's job running = %d, %v; want 1", n, err)
	}

	waited := make(chan error, 1)
	var got backend.Job
	go func() {
		wctx, cancel := context.WithTimeout(ctx, deadline)
		defer cancel()
		var err error
		got, err = b.Manager.WaitJob(wctx, id)
		waited <- err
	}()
	close(release)
	if err := <-waited; err != nil {
		t.Fatalf("b's WaitJob of a's job: %v", err)
	}
	if got.ID != id || got.Status != backend.JobSuccess || got.Result != "copied" || got.Progress != 100 {
		t.Fatalf("b's WaitJob returned %+v; want a's job ended Success", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n, err := b.Manager.JobsEnded(ctx, both); n != 2 || err != nil {
		t.Fatalf("b's JobsEnded once a's job ended = %d, %v; want 2", n, err)
	}
}

// jobPoll is the interval at which a wait reads the row of a job another
// manager runs (backend's jobPollEvery), for contexts that must end
// before the job does.
const jobPoll = 200 * time.Millisecond

// abort Job on manager b of a job manager a runs: the request goes
// through the job's row; a aborts the job at its next check, and b
// returns it Aborted. A job past its last abortable point runs to its end,
// and b's abort fails saying at which step it was, as a local abort does;
// until it ends, b's show Job says that the abort was asked.
func TestJobOfAnotherManagerAborted(t *testing.T) {
	a, b := twoCores(t, managertest.Options{})
	for _, tc := range []struct {
		name    string
		heed    bool // the job stops at the abort (else it runs to its end)
		want    string
		wantErr string
	}{
		{name: "aborted", heed: true, want: backend.JobAborted},
		{name: "too late", want: backend.JobSuccess,
			wantErr: `was not aborted: at step "the last call" (50%) it had no abortable point left, and it ran to its end: Success`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, ids := observed(a)
			finish := make(chan struct{}) // lets the job that does not heed the abort end
			done := make(chan error, 1)
			go func() {
				_, err := m.RunJob(a.Admin(), "long on a "+tc.name, []string{"vm-" + tc.name}, func(_ context.Context, j backend.JobRun) (any, error) {
					j.Progress(50, "the last call")
					select {
					case <-j.Aborted:
					case <-time.After(deadline):
					}
					if tc.heed {
						return nil, j.Check()
					}
					<-finish
					return text("done"), nil
				})
				done <- err
			}()
			id := <-ids
			ctx := b.Admin()
			// The step is the one a has written down.
			waitFor(t, "b to see a's job at its step", func() bool {
				j, err := b.Manager.Job(ctx, id)
				return err == nil && j.Message == "the last call"
			})
			actx, cancel := context.WithTimeout(ctx, deadline)
			defer cancel()
			type outcome struct {
				j   backend.Job
				err error
			}
			aborted := make(chan outcome, 1)
			go func() {
				j, err := b.Manager.AbortJob(actx, id)
				aborted <- outcome{j, err}
			}()
			if !tc.heed {
				waitFor(t, "b to show that the abort was asked", func() bool {
					j, err := b.Manager.Job(ctx, id)
					return err == nil && j.Status == backend.JobRunning && j.Message == "the last call; abort asked"
				})
			}
			close(finish)
			o := <-aborted
			j, err := o.j, o.err
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (backend.KindOf(err) != backend.KindConflict || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("b's AbortJob of a's job = %v; want %q", err, tc.wantErr)
			}
			if j.ID != id || j.Status != tc.want {
				t.Fatalf("b's AbortJob returned %+v; want the job %s", j, tc.want)
			}
			if err := <-done; tc.heed != (err != nil) {
				t.Fatalf("the job on a returned %v", err)
			}
			if _, err := b.Manager.AbortJob(ctx, id); backend.KindOf(err) != backend.KindInvalidState {
				t.Fatalf("b's abort of an ended job of a: %v; want KindInvalidState", err)
			}
		})
	}
}

// A VM started on manager a whose agent takes its time (sim_set
// latency_ms on start_vm): manager b follows the job's step while the
// agent call lasts and its wait Job returns when the start ends, with the
// VM running.
func TestStartOnAnotherManagerWaitedFor(t *testing.T) {
	a, b := twoCores(t, managertest.Options{Agents: 1})
	ctx := a.Admin()
	v, err := a.Manager.CreateVM(ctx, backend.CreateVMRequest{Name: "g", Repository: backend.Ref{Name: managertest.Repo}, MemoryMiB: 256, CPUCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	const latency = 3000 // ms: long enough for b to see the step, which a writes down within a second, and within the 5 s bound of an agent call
	if err := a.AgentClient(0).Call(context.Background(), agentapi.MethodSimSet, nil,
		map[string]any{"latency_ms": map[string]any{agentapi.MethodStartVM: int64(latency)}}); err != nil {
		t.Fatal(err)
	}
	_, err = a.Manager.With(backend.RunOptions{Async: true}).StartVM(ctx, backend.Ref{ID: v.ID})
	id := backend.JobIDOf(err)
	if backend.KindOf(err) != backend.KindStillRunning || id == "" {
		t.Fatalf("asynchronous start = %v; want the job started", err)
	}
	bctx := b.Admin()
	sawStep := false
	waitFor(t, "b to see the start's step or its end", func() bool {
		j, err := b.Manager.Job(bctx, id)
		if err != nil {
			return false
		}
		sawStep = j.Status == backend.JobRunning && j.Progress == 50 && j.Message == "start on ovs1"
		return sawStep || j.Status != backend.JobRunning
	})
	if !sawStep {
		t.Fatalf("b never saw the step of the start, which lasted %d ms on the agent", latency)
	}
	wctx, cancel := context.WithTimeout(bctx, deadline)
	defer cancel()
	j, err := b.Manager.WaitJob(wctx, id)
	if err != nil || j.Status != backend.JobSuccess {
		t.Fatalf("b's WaitJob of a's start = %+v, %v; want Success", j, err)
	}
	got, err := b.Manager.VM(bctx, backend.Ref{ID: v.ID})
	if err != nil || got.Status != backend.VMRunning {
		t.Fatalf("the VM as b sees it after the wait = %+v, %v; want Running", got, err)
	}
}

// The events of a job that another manager ran are every manager's: a job
// failing on a raises JobFailed, which b lists, and an
// acknowledgement on b is seen on a.
func TestEventsOfAnotherManagersJob(t *testing.T) {
	a, b := twoCores(t, managertest.Options{})
	_, err := a.Manager.RunJob(a.Admin(), "failing on a", []string{"vm1"}, func(context.Context, backend.JobRun) (any, error) {
		return nil, errors.New("the agent said no")
	})
	if err == nil {
		t.Fatal("the failing job succeeded")
	}
	var failed backend.Event
	waitFor(t, "b to list a's JobFailed", func() bool {
		events, err := b.Manager.Events(b.Admin(), true, 50)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if e.Kind == "JobFailed" && e.Name == "failing on a" {
				failed = e
				return true
			}
		}
		return false
	})
	if err := b.Manager.AckEvent(b.Admin(), failed.ID); err != nil {
		t.Fatal(err)
	}
	events, err := a.Manager.Events(a.Admin(), false, 50)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.ID == failed.ID && !e.Acknowledged {
			t.Fatalf("a sees event %s unacknowledged after b acknowledged it", e.ID)
		}
	}
}
