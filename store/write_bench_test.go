package store

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"xenmanager/store/pgtest"
)

// BenchmarkJobWrites is the group commit of writes that each run an fn: 128
// jobs at a time, each writing its row, then (after an agent call of 20 ms)
// the VM's state and its outcome, each a Write of its own, as jobs wrote
// them before the declared writes (BenchmarkBatchStartWrites is what they
// write now). It reports the process's CPU time and the write
// transactions per job.
func BenchmarkJobWrites(b *testing.B) { benchBothEngines(b, false) }

// BenchmarkAuditedJobWrites is BenchmarkJobWrites with each job the
// command of a session of its own (the most audit rows a batch of starts
// can cost): the job's writes carry the command's audit record, whose row
// the first one inserts, and the commands' results are then written in
// batches of up to 256, as backend's spool does.
func BenchmarkAuditedJobWrites(b *testing.B) { benchBothEngines(b, true) }

// benchBothEngines runs benchJobWrites on SQLite (sub-benchmark sqlite) and
// on PostgreSQL (postgres; skipped without a server, see pgtest). On
// PostgreSQL cpu-us/job is the manager's share only: the server's CPU is
// another process's.
func benchBothEngines(b *testing.B, audited bool) {
	b.Run("sqlite", func(b *testing.B) { benchJobWrites(b, filepath.Join(b.TempDir(), "manager.db"), audited) })
	b.Run("postgres", func(b *testing.B) { benchJobWrites(b, pgtest.Database(b), audited) })
}

func benchJobWrites(b *testing.B, target string, audited bool) {
	ctx := context.Background()
	s := openBatchStore(b, target)
	w0, t0 := s.WriteStats()
	b.ResetTimer()
	c0 := benchCPU()
	var endedMu sync.Mutex // guards ended
	var ended []*CommandAudit
	saveEnded := func(all bool) error { // the spool's batch
		endedMu.Lock()
		if len(ended) < 256 && !all {
			endedMu.Unlock()
			return nil
		}
		batch := ended
		ended = nil
		endedMu.Unlock()
		if len(batch) == 0 {
			return nil
		}
		return s.Write(ctx, func(q *Queries) error {
			for _, a := range batch {
				if err := q.SaveAudit(ctx, a); err != nil {
					return err
				}
			}
			return nil
		})
	}
	runBatch(b, func(id, vm string) {
		must := func(err error) {
			if err != nil {
				b.Error(err)
			}
		}
		ctx := ctx
		if audited {
			a := NewCommandAudit("admin", "127.0.0.1:22", "start Vm id="+vm, time.Now())
			ctx = WithCommandAudit(ctx, a)
			defer func() {
				a.End("Success")
				endedMu.Lock()
				ended = append(ended, a)
				endedMu.Unlock()
				must(saveEnded(false))
			}()
		}
		must(s.Write(ctx, func(q *Queries) error {
			return q.InsertJob(ctx, Job{ID: id, Summary: "start Vm " + vm, User: "admin", Objects: vm, Status: "Running",
				PoolID: "p1", CreatedAt: time.Now()})
		}))
		time.Sleep(20 * time.Millisecond)
		must(s.Write(ctx, func(q *Queries) error { return q.SetVMState(ctx, vm, "s1", "Running") }))
		must(s.Write(ctx, func(q *Queries) error { return q.EndJob(ctx, id, "Success", "", "", time.Now()) }))
	})
	if err := saveEnded(true); err != nil {
		b.Error(err)
	}
	b.ReportMetric(float64((benchCPU()-c0).Microseconds())/float64(b.N), "cpu-us/job")
	w1, t1 := s.WriteStats()
	b.ReportMetric(float64(t1-t0)/float64(b.N), "tx/job")
	if w1-w0 < int64(3*b.N) {
		b.Errorf("%d writes, want %d or more", w1-w0, 3*b.N)
	}
	if audited {
		var rows int
		if err := s.read.QueryRow(`SELECT COUNT(*) FROM audit_records WHERE result = 'Success'`).Scan(&rows); err != nil || rows != b.N {
			b.Errorf("%d audit rows of Success (%v), want %d", rows, err, b.N)
		}
	}
}

func benchCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkBatchStartWrites is the store's share of a batch of VM starts as
// the jobs of `start Vm multiple=Yes` write it: 128 jobs at a time, each
// writing its row with its object lock and its step (InsertJobAndLock, the
// intent), then, after an agent call of 20 ms, the VM's state with the
// job's end (SetVMStateAndEndJob). ns/op is the batch's wall time per job
// (the ideal, with writes that cost nothing, is 20 ms / 128 = 156 us);
// cpu-us/job is the process's CPU, and on PostgreSQL on this machine
// server-cpu-us/job that of the writer connection's server process, the one
// every write of a manager waits for.
func BenchmarkBatchStartWrites(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchBatchStartWrites(b, filepath.Join(b.TempDir(), "manager.db")) })
	b.Run("postgres", func(b *testing.B) { benchBatchStartWrites(b, pgtest.Database(b)) })
}

func benchBatchStartWrites(b *testing.B, target string) {
	ctx := context.Background()
	s := openBatchStore(b, target)
	server := func() time.Duration { return procCPU(s.writerPID.Load()) }
	b.ResetTimer()
	c0, sc0 := benchCPU(), server()
	runBatch(b, func(id, vm string) {
		held, err := s.InsertJobAndLock(ctx, Job{ID: id, Summary: "start Vm " + vm, User: "admin", Objects: vm,
			Status: "Running", PoolID: "p1", CreatedAt: time.Now(), ManagerID: "m1", Step: `{"call":"start_vm","server":"s1"}`},
			[]string{vm})
		if err != nil || held != nil {
			b.Errorf("job %s: held by %v, %v", id, held, err)
			return
		}
		time.Sleep(20 * time.Millisecond)
		if running, err := s.SetVMStateAndEndJob(ctx, vm, "s1", "Running", id, "Success", "", "", time.Now()); err != nil || !running {
			b.Errorf("job %s ended: running %v, %v", id, running, err)
		}
	})
	b.ReportMetric(float64((benchCPU()-c0).Microseconds())/float64(b.N), "cpu-us/job")
	if sc := server() - sc0; sc > 0 {
		b.ReportMetric(float64(sc.Microseconds())/float64(b.N), "server-cpu-us/job")
	}
}

// batchVMs is how many VMs openBatchStore records; the benchmarks' jobs
// act on them in turn.
const batchVMs = 1000

// openBatchStore opens the store at target, closed when b ends, holding a
// pool, a server, a repository and batchVMs stopped VMs (vm0000 ...).
func openBatchStore(b *testing.B, target string) *Store {
	ctx := context.Background()
	s, err := Open(ctx, target)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	now := time.Now()
	err = s.Write(ctx, func(q *Queries) error {
		if err := q.InsertServerPool(ctx, ServerPool{ID: "p1", Name: "pool", CreatedAt: now}); err != nil {
			return err
		}
		if _, err := q.UpsertServer(ctx, Server{ID: "s1", Name: "s1", Address: "127.0.0.1", Port: 1, AgentPassword: []byte("x"),
			PoolID: "p1", Status: "Running", CreatedAt: now}); err != nil {
			return err
		}
		if err := q.InsertRepository(ctx, Repository{ID: "r1", Name: "repo", PoolID: "p1", CreatedAt: now}); err != nil {
			return err
		}
		for i := range batchVMs {
			if err := q.InsertVM(ctx, VM{ID: fmt.Sprintf("vm%04d", i), Name: fmt.Sprintf("load-%d", i), PoolID: "p1", RepoID: "r1",
				Status: "Stopped", MemoryMiB: 256, CPUCount: 1, DomainType: "xen_hvm", CreatedAt: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// runBatch runs job b.N times, 128 at a time as a batch's jobs run, each
// with its job's id and its VM (batchVMs in turn), and waits for them.
func runBatch(b *testing.B, job func(id, vm string)) {
	slots := make(chan struct{}, 128)
	var wg sync.WaitGroup
	for i := range b.N {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			job(fmt.Sprintf("job%08d", i), fmt.Sprintf("vm%04d", i%batchVMs))
		}()
	}
	wg.Wait()
}

// procCPU is the CPU time process pid has used, read from /proc; 0 when
// it cannot be read (pid 0, or a server on another machine).
func procCPU(pid uint32) time.Duration {
	if pid == 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}
