package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"xenmanager/backend"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
)

// The watched fleet of figure 6: 1,000 servers in pools of 20, each
// running 20 guests, sized so that exactly 20 fit on each: 1 GiB for
// Domain-0 and 20 x 512 MiB.
const (
	watchedAgents   = 1000
	watchPoolSize   = 20
	watchVMsPerHost = 20
	watchVMMiB      = 512
	watchHostMiB    = 1024 + watchVMsPerHost*watchVMMiB
	// watchSetupSessions is how many pools are set up at once, each by
	// one SSH session running its batch.
	watchSetupSessions = 4
	// crashPoll is how often the operator's view (getEvents) is read
	// while a crash is awaited.
	crashPoll = 50 * time.Millisecond
)

// heartbeats is figure 6 and the crash figure beside it (6b): the manager
// watches 1,000 agents, each running 20 guests started through it, at the
// default heartbeat interval. 6: its CPU over whole periods of the
// periodic full reconciliation (ReconcileEvery beats), so that the window
// holds the beats and the reconciliation's share. 6b: guests crashed on
// random agents (sim_set crash_vm over the agent's XML-RPC), each timed
// until the VmCrashed event shows in getEvents, what an operator reads.
// The agents run in the harness's process, so their CPU is not the
// manager's.
func (b *bench) heartbeats(ctx context.Context) {
	interval := backend.DefaultHeartbeatInterval
	period := backend.ReconcileEvery * interval
	window := time.Duration(b.plan.hbPeriods) * period
	measure := fmt.Sprintf("manager CPU watching %d agents x %d running VMs, heartbeat every %s", watchedAgents, watchVMsPerHost, interval)
	crashMeasure := fmt.Sprintf("crashed guest to VmCrashed in getEvents, %d agents x %d VMs, heartbeat %s", watchedAgents, watchVMsPerHost, interval)
	fmt.Println("\n== figure 6:", measure)
	fail := func(err error) {
		b.res.fail("6", measure, err)
		b.res.fail("6b", crashMeasure, errors.New("not measured: figure 6's set-up failed"))
	}
	dir := filepath.Join(b.work, "watch")
	t0 := time.Now()
	agents, err := startFleetCounted(ctx, filepath.Join(dir, "agents"), "watch", watchedAgents, true, watchHostMiB, 8, true)
	if err != nil {
		fail(err)
		return
	}
	defer agents.stop()
	fmt.Printf("  %d agents started in the harness in %s\n", watchedAgents, time.Since(t0).Round(time.Millisecond))
	args := []string{"--heartbeat-interval", interval.String()}
	if b.profile != "" {
		args = append(args, "--cpuprofile", filepath.Join(b.profile, "fig6-manager.pprof"))
	}
	m, err := startManager(ctx, b.bin, filepath.Join(dir, "manager"), args...)
	if err != nil {
		fail(err)
		return
	}
	defer m.stop()

	t0 = time.Now()
	if err := b.setUpWatchedPools(ctx, m, agents, dir); err != nil {
		fail(err)
		return
	}
	setup := time.Since(t0)
	fmt.Printf("  %d pools, %d servers, %d VMs created and started through the manager in %s\n",
		watchedAgents/watchPoolSize, watchedAgents, watchedAgents*watchVMsPerHost, setup.Round(time.Second))
	if err := agents.checkDomains(watchVMsPerHost); err != nil {
		fail(err)
		return
	}
	// Let two full rounds pass with every VM running, so that the window
	// sees the steady state, not the starts' aftermath.
	if !sleepCtx(ctx, 2*interval+time.Second) {
		return
	}

	recv0 := agents.received.Load()
	calls0, err := agents.callsByMethod()
	if err != nil {
		fail(err)
		return
	}
	a, err := sampleTreeCPU(m.pid, true)
	if err != nil {
		fail(err)
		return
	}
	if !sleepCtx(ctx, window) {
		return
	}
	z, err := sampleTreeCPU(m.pid, true)
	if err != nil {
		fail(err)
		return
	}
	calls1, err := agents.callsByMethod()
	if err != nil {
		fail(err)
		return
	}
	cpu := cpuPercent(a, z)
	recv := agents.received.Load() - recv0
	rss, _ := statusKB(m.pid, "VmRSS")
	getEvents := calls1[agentapi.MethodGetEvents] - calls0[agentapi.MethodGetEvents]
	listVMs := calls1[agentapi.MethodListVMs] - calls0[agentapi.MethodListVMs]
	var others []string
	for method, n := range calls1 {
		if d := n - calls0[method]; d > 0 && method != agentapi.MethodGetEvents && method != agentapi.MethodListVMs {
			others = append(others, fmt.Sprintf("%s %d", method, d))
		}
	}
	slices.Sort(others)
	beats := float64(getEvents) / watchedAgents
	if getEvents == 0 || listVMs == 0 {
		fail(fmt.Errorf("the agents served %d get_events and %d list_vms during the window: the heartbeats or the "+
			"reconciliation did not run", getEvents, listVMs))
		return
	}
	b.res.add(row{Fig: "6", Measure: measure + fmt.Sprintf(", over %s (%d x %d beats, with the reconciliation)", window,
		b.plan.hbPeriods, backend.ReconcileEvery), Value: fmtPct(cpu) + " of a core", Target: "< 5 % of one core", Met: yesNo(cpu < 5)})
	b.res.note("figure 6: %d agents in the harness process (agent.Start on 127.0.0.1:0, simulated hosts of %d MiB), in %d pools "+
		"of %d with a repository each, discovered with discoverServer; %d VMs of %d MiB created and started through the manager "+
		"(one SSH batch per pool, %d at a time: %s in all), %d running on every agent (checked on the agents); the window opens "+
		"two beats after the last start and lasts %s = %d reconcile period(s) of %d beats, so it holds the beats and the periodic "+
		"full reconciliation's share; during it the agents served %d get_events (%.1f per agent: beats, each a call the agent "+
		"holds until an event or the end of its wait when it lists events_wait), %d list_vms "+
		"(reconciliation), others: %s; they received %.0f kB/s from the manager (TLS, keep-alive); the manager's VmRSS: %s",
		watchedAgents, watchHostMiB, watchedAgents/watchPoolSize, watchPoolSize, watchedAgents*watchVMsPerHost, watchVMMiB,
		watchSetupSessions, setup.Round(time.Second), watchVMsPerHost, window, b.plan.hbPeriods, backend.ReconcileEvery,
		getEvents, beats, listVMs, orNone(others), float64(recv)/1024/window.Seconds(), fmtMB(rss))

	fmt.Println("\n== figure 6b:", crashMeasure)
	took, err := b.crashes(ctx, m, agents, interval)
	if err != nil {
		b.res.fail("6b", crashMeasure, err)
		return
	}
	ds := durationsMS(took)
	med, worst := median(ds), slices.Max(ds)
	base := "heartbeat interval: " + fmtMS(ms(interval))
	b.res.add(row{Fig: "6b", Measure: fmt.Sprintf("%s, median of %d", crashMeasure, len(took)), Value: fmtMS(med),
		Baseline: base, Ratio: ratio(med, ms(interval))})
	b.res.add(row{Fig: "6b", Measure: fmt.Sprintf("same, worst of %d", len(took)), Value: fmtMS(worst), Baseline: base,
		Ratio: ratio(worst, ms(interval)), Target: "<= 1 heartbeat interval", Met: yesNo(worst <= ms(interval))})
	b.res.note("figure 6b: while the %d agents are watched, %d crashes, one at a time, each of a running guest of a random agent "+
		"(sim_set crash_vm over the agent's XML-RPC, after a random pause of 0 to %s so that the crashes fall at every phase of "+
		"the beats), timed from just before the call until `getEvents` (read every %s through one SSH connection as admin, a "+
		"session per read) lists the VM's VmCrashed event: what an operator watching the events sees (a read adds up to %s and a "+
		"session to the time); "+
		"best %s, p90 %s. With agents that list events_wait the manager holds a get_events on each, which the agent answers "+
		"at the crash; with agents without it, a crash just after its server's beat waits a whole interval for the next",
		watchedAgents, len(took), interval, crashPoll, fmtMS(ms(crashPoll)), fmtMS(slices.Min(ds)), fmtMS(percentile(ds, 90)))
}

// setUpWatchedPools makes the manager own the fleet as pools of
// watchPoolSize servers, each with a repository and watchVMsPerHost running
// VMs per server, one SSH batch per pool, watchSetupSessions at a time.
func (b *bench) setUpWatchedPools(ctx context.Context, m *managerProc, agents *fleet, dir string) error {
	pools := len(agents.agents) / watchPoolSize
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // guards first
		first error
	)
	slots := make(chan struct{}, watchSetupSessions)
	for p := range pools {
		var sb strings.Builder
		fmt.Fprintf(&sb, "create ServerPool name=wp%02d\n", p)
		for i := p * watchPoolSize; i < (p+1)*watchPoolSize; i++ {
			fmt.Fprintf(&sb, "discoverServer ipAddress=127.0.0.1 port=%d password=%s\n", agents.ports[i], agents.passwords[i])
			fmt.Fprintf(&sb, "add Server name=%s to ServerPool name=wp%02d\n", agents.hostnames[i], p)
		}
		fmt.Fprintf(&sb, "create Repository name=wr%02d fsLocation=%s on ServerPool name=wp%02d\n", p,
			filepath.Join(dir, "repositories", fmt.Sprintf("wr%02d", p)), p)
		for v := range watchPoolSize * watchVMsPerHost {
			fmt.Fprintf(&sb, "create Vm name=w%02d-%03d repository=wr%02d memory=%d cpuCount=1\n", p, v, p, watchVMMiB)
		}
		script := sb.String()
		// A batch that fills its pool to the last MiB may find one VM no
		// room while the reservations of starts in flight are counted
		// beside the agents' own figures; the second start, later, has
		// them settled.
		start := fmt.Sprintf("start Vm name=w%02d-* status=Stopped multiple=Yes", p)
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-slots }()
			out, err := m.goSSH(ctx, script, true)
			if err == nil {
				if _, err = m.goSSH(ctx, start, false); err != nil {
					out, err = m.goSSH(ctx, start, false)
				}
			}
			if err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("set up pool wp%02d: %w%s", p, err, failedRows(out))
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// failedRows picks the rows of a multi-object action's output whose result
// is not Success, for an error message.
func failedRows(out string) string {
	var bad []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "result:") && !strings.Contains(l, "result:Success") {
			bad = append(bad, strings.TrimSpace(l))
		}
	}
	if len(bad) == 0 {
		return ""
	}
	return fmt.Sprintf("; %d failed, the first: %s", len(bad), bad[0])
}

// checkDomains fails unless every agent of the fleet runs exactly n guest
// domains.
func (f *fleet) checkDomains(n int) error {
	for i, a := range f.agents {
		doms, _ := a.Host().ListVMs() // the simulated host always answers
		live := 0
		for _, d := range doms {
			if d.DomID != 0 && d.State != agentapi.StateCrashed {
				live++
			}
		}
		if live != n {
			return fmt.Errorf("agent %s runs %d guest domains, want %d", f.hostnames[i], live, n)
		}
	}
	return nil
}

// crashes crashes b.plan.crashes guests of random agents one after the
// other and returns how long each took to show in the manager's getEvents.
func (b *bench) crashes(ctx context.Context, m *managerProc, agents *fleet, interval time.Duration) ([]time.Duration, error) {
	ssh, err := m.dialSSH()
	if err != nil {
		return nil, err
	}
	defer ssh.Close()
	stop := context.AfterFunc(ctx, func() { ssh.Close() })
	defer stop()
	names, err := vmNames(ctx, m)
	if err != nil {
		return nil, err
	}
	crashed := map[string]bool{}
	var took []time.Duration
	for range b.plan.crashes {
		if !sleepCtx(ctx, rand.N(interval)) {
			return nil, ctx.Err()
		}
		i := rand.N(len(agents.agents))
		doms, _ := agents.agents[i].Host().ListVMs()
		var pick []string
		for _, d := range doms {
			if d.DomID != 0 && d.State == agentapi.StateRunning && !crashed[d.UUID] {
				pick = append(pick, d.UUID)
			}
		}
		if len(pick) == 0 {
			return nil, fmt.Errorf("agent %s runs no guest left to crash", agents.hostnames[i])
		}
		vm := pick[rand.N(len(pick))]
		crashed[vm] = true
		name, ok := names[vm]
		if !ok {
			return nil, fmt.Errorf("agent %s runs domain %s, which list Vm does not show", agents.hostnames[i], vm)
		}
		c, err := agentclient.New(agentclient.Config{Address: "127.0.0.1", Port: agents.ports[i], Password: agents.passwords[i],
			Timeout: 10 * time.Second})
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		err = c.Call(ctx, agentapi.MethodSimSet, nil, map[string]any{"crash_vm": vm})
		c.Close()
		if err != nil {
			return nil, fmt.Errorf("sim_set crash_vm on %s: %w", agents.hostnames[i], err)
		}
		for {
			seen, out, err := crashEventShown(ssh, name)
			if err != nil {
				return nil, err
			}
			if seen {
				break
			}
			if time.Since(t0) > 10*interval {
				return nil, fmt.Errorf("no VmCrashed event for VM %s crashed on %s after %s; getEvents says: %s", name,
					agents.hostnames[i], 10*interval, oneLine(out[:min(len(out), 1000)]))
			}
			if !sleepCtx(ctx, crashPoll) {
				return nil, ctx.Err()
			}
		}
		d := time.Since(t0)
		took = append(took, d)
		fmt.Printf("  crash %d, Vm %s on %s: %s\n", len(took), name, agents.hostnames[i], d.Round(time.Millisecond))
	}
	return took, nil
}

// crashEventShown reports whether getEvents, in Json, lists a VmCrashed
// event about VM name.
func crashEventShown(c *gossh.Client, name string) (bool, string, error) {
	s, err := c.NewSession()
	if err != nil {
		return false, "", fmt.Errorf("ssh session to the manager: %w", err)
	}
	defer s.Close()
	raw, err := s.Output("set outputMode=Json; getEvents limit=50")
	out := string(raw)
	if err != nil {
		return false, out, fmt.Errorf("getEvents: %w: %s", err, oneLine(out[:min(len(out), 400)]))
	}
	// The last document is getEvents' (set prints one of its own).
	dec := json.NewDecoder(strings.NewReader(out))
	var doc any
	for {
		var next any
		if err := dec.Decode(&next); err != nil {
			break
		}
		doc = next
	}
	if doc == nil {
		return false, out, fmt.Errorf("getEvents printed no Json document: %s", oneLine(out[:min(len(out), 400)]))
	}
	return holdsCrashOf(doc, name), out, nil
}

// holdsCrashOf reports whether the data of getEvents' Json document doc
// holds a VmCrashed event about VM name (its object column "Vm <name>").
func holdsCrashOf(doc any, name string) bool {
	top, _ := doc.(map[string]any)
	rows, _ := top["data"].([]any)
	for _, r := range rows {
		if e, _ := r.(map[string]any); e["name"] == "VmCrashed" && e["object"] == "Vm "+name {
			return true
		}
	}
	return false
}

// vmNames maps the manager's VM ids to their names (list Vm in Json).
func vmNames(ctx context.Context, m *managerProc) (map[string]string, error) {
	out, err := m.goSSH(ctx, "set outputMode=Json; list Vm", false)
	if err != nil {
		return nil, fmt.Errorf("list Vm: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	names := map[string]string{}
	for {
		var doc struct {
			Data []struct{ ID, Name string } `json:"data"`
		}
		if err := dec.Decode(&doc); err != nil {
			break
		}
		for _, r := range doc.Data {
			names[r.ID] = r.Name
		}
	}
	return names, nil
}

// orNone joins xs, or says none.
func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
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
