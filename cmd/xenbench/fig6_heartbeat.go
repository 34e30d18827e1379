package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"xenmanager/backend"
)

const watchedAgents = 200

// heartbeats is figure 6: the manager's CPU while it watches 200 agents at
// the default heartbeat interval. The agents run in the harness's process,
// so their CPU is not the manager's; the window opens after the first
// heartbeat round (which sets up the connections) is over.
func (b *bench) heartbeats(ctx context.Context) {
	interval := backend.DefaultHeartbeatInterval
	measure := fmt.Sprintf("manager CPU watching %d agents, heartbeat every %s", watchedAgents, interval)
	fmt.Println("\n== figure 6:", measure)
	dir := filepath.Join(b.work, "watch")
	agents, err := startFleet(ctx, filepath.Join(dir, "agents"), "watch", watchedAgents, false, 16384, 8)
	if err != nil {
		b.res.fail("6", measure, err)
		return
	}
	defer agents.stop()
	m, err := startManager(ctx, b.bin, filepath.Join(dir, "manager"), "--heartbeat-interval", interval.String())
	if err != nil {
		b.res.fail("6", measure, err)
		return
	}
	defer m.stop()
	t0 := time.Now()
	if _, err := m.goSSH(ctx, agents.discoverScript(), true); err != nil {
		b.res.fail("6", measure, fmt.Errorf("discover the agents: %w", err))
		return
	}
	fmt.Printf("  %d agents discovered in %s\n", watchedAgents, time.Since(t0).Round(time.Millisecond))
	out, err := m.goSSH(ctx, "set outputMode=Sparse; list Server", false)
	if err == nil && strings.Count(out, "name:watch") != watchedAgents {
		err = fmt.Errorf("the manager lists %d of %d servers: %s", strings.Count(out, "name:watch"), watchedAgents,
			oneLine(out[:min(len(out), 400)]))
	}
	if err != nil {
		b.res.fail("6", measure, err)
		return
	}
	// Let a full heartbeat round pass with every server known.
	if !sleepCtx(ctx, interval+time.Second) {
		return
	}
	recv0 := agents.received.Load()
	a, err := sampleTreeCPU(m.pid, true)
	if err != nil {
		b.res.fail("6", measure, err)
		return
	}
	if !sleepCtx(ctx, b.plan.hbWindow) {
		return
	}
	z, err := sampleTreeCPU(m.pid, true)
	if err != nil {
		b.res.fail("6", measure, err)
		return
	}
	cpu := cpuPercent(a, z)
	recv := agents.received.Load() - recv0
	rss, _ := statusKB(m.pid, "VmRSS")
	if recv == 0 {
		b.res.fail("6", measure, fmt.Errorf("the agents received nothing during the window: no heartbeats"))
		return
	}
	b.res.add(row{Fig: "6", Measure: measure + fmt.Sprintf(", over %s", b.plan.hbWindow), Value: fmtPct(cpu) + " of a core",
		Target: "< 5 % of one core", Met: yesNo(cpu < 5)})
	b.res.note("figure 6: %d agents in the harness process (agent.Start on 127.0.0.1:0), discovered with discoverServer; "+
		"the agents received %.0f kB/s from the manager during the window (TLS, keep-alive); the manager's VmRSS while watching them: %s",
		watchedAgents, float64(recv)/1024/b.plan.hbWindow.Seconds(), fmtMB(rss))
}

// sleepCtx waits d, or less when ctx ends first; it reports whether d
// passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
