package commands

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/agent"
	"xenmanager/backend/agent/agenttest"
	"xenmanager/backend/managertest"
	"xenmanager/store/pgtest"
)

// TestFig4MultiStart is figure 4 of cmd/xenbench in one process, for CPU
// profiles: `start Vm name=load-* multiple=Yes` over FIG4_VMS VMs (1,000) on
// FIG4_AGENTS agents (20) that answer every call FIG4_LATENCY_MS (20) late,
// through commands and backend against real agents (backend/agent) on
// 127.0.0.1:0. The agents share the process (and its CPU) as they share the
// machine with the manager in the harness. It runs only when FIG4=1 (it
// takes a while): FIG4_RUNS runs (5), each followed by a kill of all the
// VMs. FIG4_CPUPROFILE=prefix writes a CPU profile of each start (not the
// set-up nor the kills) to prefix.1 ... (go tool pprof merges them);
// FIG4_TRACE=file an execution trace of the second start (go tool trace
// -pprof=sync|sched|syscall); FIG4_MEMPROFILE=prefix heap profiles around
// the runs; FIG4_CURVE=1 logs when the domains come up; FIG4_POSTGRES=1
// runs the manager on a new database of the PostgreSQL server of
// store/pgtest (XENMANAGER_TEST_POSTGRES) instead of SQLite. It logs the
// wall time, the process's CPU time per started VM, the store's writes,
// transactions and statements on the writer connection (per VM: on
// PostgreSQL each a round trip), and the ideal critical path.
//
//	FIG4=1 FIG4_CPUPROFILE=/tmp/fig4 go test ./commands -run Fig4 -v -count=1
func TestFig4MultiStart(t *testing.T) {
	if os.Getenv("FIG4") == "" {
		t.Skip("set FIG4=1 to run the in-process figure 4")
	}
	nAgents, nVMs, latMS, runs := envInt("FIG4_AGENTS", 20), envInt("FIG4_VMS", 1000), envInt("FIG4_LATENCY_MS", 20), envInt("FIG4_RUNS", 5)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	dir := t.TempDir()

	var agents []*agenttest.Agent
	for i := 1; i <= nAgents; i++ {
		agents = append(agents, agenttest.Start(t, agent.Config{Hostname: fmt.Sprintf("load%02d", i),
			CPUs: 64, MemoryMiB: 65536, Logger: quiet}))
	}
	// The manager logs as `xenmanager serve` does (text, info) into a
	// file, so that its log writes are counted.
	logf, err := os.Create(filepath.Join(dir, "manager.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	mlog := slog.New(slog.NewTextHandler(logf, nil))
	opts := managertest.Options{Logger: mlog, AgentTimeout: 30 * time.Second}
	if os.Getenv("FIG4_POSTGRES") != "" {
		opts.Database = pgtest.Database(t)
	}
	c := managertest.Open(t, opts)
	mgr, st := c.Manager, c.Store
	actor := backend.Actor{User: "admin", Role: backend.RoleAdministrator, Remote: "127.0.0.1:1"}
	run := func(line string) string {
		t.Helper()
		var out bytes.Buffer
		s := NewSession(ctx, Default, mgr, actor, &out, Options{Log: mlog})
		if o := s.RunLine(ctx, line); o != OK {
			t.Fatalf("%s: %v\n%s", line, o, out.String())
		}
		return out.String()
	}
	for _, a := range agents {
		run(fmt.Sprintf("discoverServer ipAddress=127.0.0.1 port=%d password=%s", a.Port(), a.Password))
	}
	run("create ServerPool name=load-pool")
	for i := range agents {
		run(fmt.Sprintf("add Server name=load%02d to ServerPool name=load-pool", i+1))
	}
	run(fmt.Sprintf("create Repository name=load-repo fsLocation=%s on ServerPool name=load-pool", filepath.Join(dir, "repository")))
	t0 := time.Now()
	for i := range nVMs {
		run(fmt.Sprintf("create Vm name=load-%d repository=load-repo memory=256 cpuCount=1", i))
	}
	t.Logf("%d VMs created in %s", nVMs, time.Since(t0).Round(time.Millisecond))

	setLatency := func(ms int) {
		lat := map[string]any{}
		for _, m := range strings.Fields(`discover_hardware start_vm stop_vm list_vm list_vms get_statistics get_events echo get_api_version discover_server`) {
			lat[m] = int64(ms)
		}
		for _, a := range agents {
			if err := a.Sim().SimSet(map[string]any{"latency_ms": lat}); err != nil {
				t.Fatal(err)
			}
		}
	}
	profPrefix := os.Getenv("FIG4_CPUPROFILE")
	// FIG4_MEMPROFILE=prefix: heap profiles before the runs (prefix.base)
	// and after them (prefix), for go tool pprof -sample_index=alloc_space
	// -base prefix.base prefix (the kills between the runs are in it).
	memProfile := func(name string) {
		if p := os.Getenv("FIG4_MEMPROFILE"); p != "" {
			f, err := os.Create(p + name)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			pprof.Lookup("allocs").WriteTo(f, 0)
		}
	}
	memProfile(".base")
	defer memProfile("")
	var walls, cpus []time.Duration
	for r := range runs {
		setLatency(latMS)
		if profPrefix != "" {
			f, err := os.Create(fmt.Sprintf("%s.%d", profPrefix, r+1))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			pprof.StartCPUProfile(f)
		}
		tracing := os.Getenv("FIG4_TRACE") != "" && r == 1
		if tracing {
			f, err := os.Create(os.Getenv("FIG4_TRACE"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			trace.Start(f)
		}
		w0, g0 := st.WriteStats()
		s0, rt0 := st.WriteStatements(), st.WriteRoundTrips()
		c0 := cpuTime()
		t0 := time.Now()
		// FIG4_CURVE=1: when the domains come up (every 5 ms), to see
		// the ramp-up, the pace and the tail.
		curveDone := make(chan []string)
		stopCurve := make(chan struct{})
		go func() {
			var curve []string
			if os.Getenv("FIG4_CURVE") == "" {
				curveDone <- nil
				return
			}
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			last := -1
			for {
				select {
				case <-stopCurve:
					curveDone <- curve
					return
				case <-tick.C:
				}
				n := 0
				for _, a := range agents {
					n += a.RunningDomains(t)
				}
				if n != last {
					curve = append(curve, fmt.Sprintf("%d:%d", time.Since(t0).Milliseconds(), n))
					last = n
				}
			}
		}()
		run("start Vm name=load-* multiple=Yes")
		wall := time.Since(t0)
		close(stopCurve)
		if curve := <-curveDone; curve != nil {
			t.Logf("run %d: ms:domains %s", r+1, strings.Join(curve, " "))
		}
		cpu := cpuTime() - c0
		w1, g1 := st.WriteStats()
		s1, rt1 := st.WriteStatements(), st.WriteRoundTrips()
		if tracing {
			trace.Stop()
		}
		if profPrefix != "" {
			pprof.StopCPUProfile()
		}
		setLatency(0)
		lo, hi, total := nVMs, 0, 0
		for _, a := range agents {
			n := a.RunningDomains(t)
			lo, hi, total = min(lo, n), max(hi, n), total+n
		}
		if total != nVMs {
			t.Fatalf("run %d: %d domains run, want %d", r+1, total, nVMs)
		}
		walls, cpus = append(walls, wall), append(cpus, cpu)
		t.Logf("run %d: %s wall, %s CPU (%.0f us per VM); %d to %d domains per agent; %d writes in %d transactions, %d statements in %d round trips (%.2f writes, %.2f statements, %.2f round trips per VM)",
			r+1, wall.Round(time.Millisecond), cpu.Round(time.Millisecond), float64(cpu.Microseconds())/float64(nVMs),
			lo, hi, w1-w0, g1-g0, s1-s0, rt1-rt0, float64(w1-w0)/float64(nVMs), float64(s1-s0)/float64(nVMs), float64(rt1-rt0)/float64(nVMs))
		run("kill Vm name=load-* multiple=Yes")
		for _, a := range agents {
			if n := a.RunningDomains(t); n != 0 {
				t.Fatalf("%d domains still run after kill", n)
			}
		}
	}
	const conns = 4 // agentclient.Config.Conns when zero
	waves := (nVMs + nAgents*conns - 1) / (nAgents * conns)
	ideal := time.Duration(waves*latMS) * time.Millisecond
	mw, mc := medianDur(walls), medianDur(cpus)
	t.Logf("median %s wall (%.2f x ideal %s), %s CPU, %.0f us CPU per VM", mw.Round(time.Millisecond),
		float64(mw)/float64(ideal), ideal, mc.Round(time.Millisecond), float64(mc.Microseconds())/float64(nVMs))
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func medianDur(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
