package backend_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
)

// BenchmarkWatch measures the watcher's two kinds of work at the size of
// bench figure 6 scaled down: N agents (in this process, so their own work
// is counted too) each running 20 VMs, created and started through the
// manager. beat is one heartbeat round (Beat: get_events on every server),
// reconcile one full reconciliation (list_vms on every server). N is 200,
// or XENMANAGER_BENCH_WATCH_SERVERS. Run it with
//
//	go test -run '^$' -bench Watch -benchtime 20x ./backend/
func BenchmarkWatch(b *testing.B) {
	const perServer = 20
	servers := 200
	if s, err := strconv.Atoi(os.Getenv("XENMANAGER_BENCH_WATCH_SERVERS")); err == nil && s > 0 {
		servers = s
	}
	c := managertest.Ready(b, managertest.Options{Agents: servers, MemoryMiB: 1024 + perServer*512, AgentTimeout: 30 * time.Second})
	ctx := c.Admin()
	names := make(chan string)
	var wg sync.WaitGroup
	var failed sync.Once
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range names {
				_, err := c.Manager.CreateVM(ctx, backend.CreateVMRequest{Name: name, Repository: backend.Ref{Name: managertest.Repo},
					MemoryMiB: 512, CPUCount: 1})
				if err == nil {
					_, err = c.Manager.StartVM(ctx, backend.Ref{Name: name})
				}
				if err != nil {
					failed.Do(func() { b.Errorf("create and start %s: %v", name, err) })
				}
			}
		}()
	}
	for i := range servers * perServer {
		names <- fmt.Sprintf("w%05d", i)
	}
	close(names)
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	bg := context.Background()
	c.Manager.Beat(bg, 30*time.Second) // the first beat sets the cursors and reconciles each server once
	b.Run(fmt.Sprintf("beat_servers=%d", servers), func(b *testing.B) {
		defer measureCPU(b, "beat")()
		for b.Loop() {
			c.Manager.Beat(bg, 30*time.Second)
		}
	})
	b.Run(fmt.Sprintf("reconcile_servers=%d", servers), func(b *testing.B) {
		defer measureCPU(b, "reconcile")()
		for b.Loop() {
			if n, err := c.Manager.Reconcile(bg); err != nil || n != 0 {
				b.Fatalf("Reconcile = %d, %v; want 0 changed", n, err)
			}
		}
	})
}

// measureCPU reports allocations and the process's CPU time per op (the
// agents' included), and, when XENMANAGER_BENCH_WATCH_PROFILE names a
// directory, writes a CPU profile of the sub-benchmark there as name.pprof;
// the returned function ends both.
func measureCPU(b *testing.B, name string) func() {
	b.ReportAllocs()
	var prof *os.File
	if dir := os.Getenv("XENMANAGER_BENCH_WATCH_PROFILE"); dir != "" {
		var err error
		if prof, err = os.Create(filepath.Join(dir, name+".pprof")); err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(prof); err != nil {
			b.Fatal(err)
		}
	}
	start := cpuTime(b)
	return func() {
		b.ReportMetric(float64(cpuTime(b)-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
		if prof != nil {
			pprof.StopCPUProfile()
			prof.Close()
		}
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
