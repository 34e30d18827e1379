package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkJobWrites is the store's share of a batch of VM starts: 128 jobs
// at a time, each writing its intent, then (after an agent call of 20 ms)
// the VM's state and its outcome, each a Write of its own as backend.job
// does. It reports the process's CPU time and the write transactions per
// job.
func BenchmarkJobWrites(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "manager.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	const vms = 1000
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
		for i := range vms {
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
	w0, t0 := s.WriteStats()
	b.ResetTimer()
	c0 := benchCPU()
	slots := make(chan struct{}, 128)
	var wg sync.WaitGroup
	for i := range b.N {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			id := fmt.Sprintf("job%08d", i)
			vm := fmt.Sprintf("vm%04d", i%vms)
			must := func(err error) {
				if err != nil {
					b.Error(err)
				}
			}
			must(s.Write(ctx, func(q *Queries) error {
				return q.InsertJob(ctx, Job{ID: id, Summary: "start Vm " + vm, User: "admin", Objects: vm, Status: "Running",
					PoolID: "p1", CreatedAt: time.Now()})
			}))
			time.Sleep(20 * time.Millisecond)
			must(s.Write(ctx, func(q *Queries) error { return q.SetVMState(ctx, vm, "s1", "Running") }))
			must(s.Write(ctx, func(q *Queries) error { return q.EndJob(ctx, id, "Success", "", "", time.Now()) }))
		}()
	}
	wg.Wait()
	b.ReportMetric(float64((benchCPU()-c0).Microseconds())/float64(b.N), "cpu-us/job")
	w1, t1 := s.WriteStats()
	b.ReportMetric(float64(t1-t0)/float64(b.N), "tx/job")
	if w1-w0 != int64(3*b.N) {
		b.Errorf("%d writes, want %d", w1-w0, 3*b.N)
	}
}

func benchCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
