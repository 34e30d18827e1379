package backend_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/managertest"
	"xenmanager/store"
	"xenmanager/store/pgtest"
)

// sharedFleet is managers a (with one agent and a pool, leading) and b
// on one PostgreSQL database, both members, with VM web1 created and its
// agent's start_vm slowed, so that a start holds the VM for a while.
func sharedFleet(t *testing.T) (dsn, key string, a, b *managertest.Core) {
	t.Helper()
	dsn = pgtest.Database(t)
	key = filepath.Join(t.TempDir(), "secret.key") // one key for both, as managers of one database share
	a = managertest.Ready(t, managertest.Options{Database: dsn, SecretKeyFile: key, Agents: 1, MemoryMiB: 8192})
	runMember(t, a, backend.MemberConfig{Hostname: "host-a"})
	b = managertest.Open(t, managertest.Options{Database: dsn, SecretKeyFile: key})
	runMember(t, b, backend.MemberConfig{Hostname: "host-b"})
	createVM(t, a, "web1", 256)
	if err := a.AgentClient(0).Call(context.Background(), agentapi.MethodSimSet, nil,
		map[string]any{"latency_ms": map[string]any{agentapi.MethodStartVM: 1500}}); err != nil {
		t.Fatal(err)
	}
	return dsn, key, a, b
}

// runningJob waits until a job summary runs on c and has begun its
// operation (it reports progress then, its locks taken), and returns it.
func runningJob(t *testing.T, c *managertest.Core, summary string) backend.Job {
	t.Helper()
	var job backend.Job
	waitFor(t, "job "+summary+" to run", func() bool {
		jobs, err := c.Manager.Jobs(c.Admin(), 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			if j.Summary == summary && j.Status == backend.JobRunning && j.Progress > 0 {
				job = j
				return true
			}
		}
		return false
	})
	return job
}

// lockOf returns the lock a job holds on object id in the shared store.
func lockOf(t *testing.T, st *store.Store, id string) store.ObjectLock {
	t.Helper()
	locks, err := st.Read().ObjectLocks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range locks {
		if l.ObjectID == id {
			return l
		}
	}
	t.Fatalf("no lock on %s in %+v", id, locks)
	return store.ObjectLock{}
}

// A start of VM web1 on manager a holds the VM for every manager: the
// same VM's start on b gives up when its command's time is out, naming
// a's job and a; a stop on b with time enough waits for a's start to end
// and then stops the VM (run side by side, the stop would find the VM not
// yet running, or a's start would record it Running after the stop).
func TestObjectLocksAcrossManagers(t *testing.T) {
	_, _, a, b := sharedFleet(t)
	web1, err := a.Manager.VM(a.Admin(), backend.Ref{Name: "web1"})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() {
		_, err := a.Manager.StartVM(a.Admin(), backend.Ref{Name: "web1"})
		started <- err
	}()
	job := runningJob(t, a, "start Vm web1")

	ctx, cancel := context.WithTimeout(b.Admin(), 300*time.Millisecond)
	_, err = b.Manager.StartVM(ctx, backend.Ref{Name: "web1"})
	cancel()
	want := "object " + web1.ID + " is locked by job " + job.ID + " (start Vm web1"
	if backend.KindOf(err) != backend.KindConflict || !strings.Contains(err.Error(), want) ||
		!strings.Contains(err.Error(), "on manager "+a.Manager.MemberID()+" (host-a)") {
		t.Fatalf("start Vm web1 on b while a starts it: %v\nwant a conflict naming %q on a", err, want)
	}
	t.Logf("b gave up: %v", err)
	if held := lockOf(t, b.Store, web1.ID); held.JobID != job.ID || held.ManagerID != a.Manager.MemberID() {
		t.Fatalf("web1 held by %+v; want a's job %s", held, job.ID)
	}

	ctx, cancel = context.WithTimeout(b.Admin(), 30*time.Second)
	defer cancel()
	v, err := b.Manager.StopVM(ctx, backend.Ref{Name: "web1"})
	if err != nil {
		t.Fatalf("stop Vm web1 on b after a's start: %v", err)
	}
	if err := <-started; err != nil {
		t.Fatalf("start Vm web1 on a: %v", err)
	}
	d, err := a.AgentClient(0).ListVM(context.Background(), web1.Repository.ID, web1.ID)
	if f, ok := agentapi.AsFault(err); ok && f.Code == agentapi.FaultNotFound {
		err = nil // no such domain: stopped
	}
	if v.Status != backend.VMStopped || err != nil || d.State == agentapi.StateRunning {
		t.Fatalf("after a's start and b's stop: recorded %s, the agent says %+v (%v); want it stopped", v.Status, d, err)
	}
	if locks, err := b.Store.Read().ObjectLocks(context.Background()); err != nil || len(locks) != 0 {
		t.Fatalf("object locks after both jobs ended: %+v, %v; want none", locks, err)
	}
}

// A manager that dies while its job holds a VM leaves the lock in the
// store; the leader, ending the dead manager's job, frees it.
func TestLeaderFreesTheLocksOfADeadManager(t *testing.T) {
	dsn, key, a, _ := sharedFleet(t)
	c := managertest.Open(t, managertest.Options{Database: dsn, SecretKeyFile: key})
	runMember(t, c, backend.MemberConfig{Hostname: "host-c"})
	web1, err := a.Manager.VM(a.Admin(), backend.Ref{Name: "web1"})
	if err != nil {
		t.Fatal(err)
	}
	go c.Manager.StartVM(c.Admin(), backend.Ref{Name: "web1"}) //nolint:errcheck // its manager dies under it
	job := runningJob(t, c, "start Vm web1")
	if held := lockOf(t, a.Store, web1.ID); held.JobID != job.ID || held.ManagerID != c.Manager.MemberID() {
		t.Fatalf("web1 held by %+v; want a job of c", held)
	}
	if err := c.Store.Close(); err != nil { // c dies: no renewal, no end of its job
		t.Fatal(err)
	}
	waitFor(t, "the leader to end c's job", func() bool {
		j, err := a.Manager.Job(a.Admin(), job.ID)
		return err == nil && j.Status != backend.JobRunning
	})
	if locks, err := a.Store.Read().ObjectLocks(context.Background()); err != nil || len(locks) != 0 {
		t.Fatalf("object locks after the leader ended the dead manager's job: %+v, %v; want none", locks, err)
	}
}
