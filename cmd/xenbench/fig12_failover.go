package main

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
)

// Figure 12's pool: the lease settings and heartbeat of the HA tests
// (cmd/xenmanager/ha_test.go), a tenth of the defaults, so that twenty
// failovers fit in the run.
const (
	haAgents    = 4
	haVMs       = 10
	haHeartbeat = 200 * time.Millisecond
	haRenew     = 200 * time.Millisecond
	haFence     = time.Second
	haMargin    = 500 * time.Millisecond
	// haBound is how long a failover, or the manager catching up after
	// one, may take before the figure fails.
	haBound = 60 * time.Second
	// haLook is the pause between two looks at the agents' domains: the
	// resolution of the figure.
	haLook = 20 * time.Millisecond
)

// haFailover is figure 12 (issue 13): a manager process with a 200 ms
// heartbeat and four xenagent processes in an HA pool (renew 200 ms, fence
// 1 s, margin 500 ms) running ten HA VMs. Each failover freezes the agent
// that runs the most of them (SIGSTOP) and measures the time until every
// HA VM runs on the other agents, as each agent's own list_vms says
// (looked at every 20 ms; a VM seen on two servers at any look is
// counted); then it resumes the agent (SIGCONT), checks that its first
// answer lists none of them (it fenced itself), and waits until the
// manager records it Running again and every HA VM where an agent runs it.
// The baseline is the floor the lease settings set: the manager may
// restart a VM only once the frozen server's lease is older than the fence
// timeout plus the margin.
func (b *bench) haFailover(ctx context.Context) {
	floor := haFence + haMargin
	measure := fmt.Sprintf("HA failover: SIGSTOP of the busiest of %d agents to all %d HA VMs running on the others (their list_vms)",
		haAgents, haVMs)
	fmt.Println("\n== figure 12:", measure)
	dir := filepath.Join(b.work, "ha")
	r, err := b.startHARig(ctx, dir)
	if r != nil {
		defer r.close()
	}
	if err != nil {
		b.res.fail("12", measure, err)
		return
	}
	var took, caughtUp []time.Duration
	restarts, twice, left := 0, 0, 0
	for loop := 1; loop <= b.plan.failovers && ctx.Err() == nil; loop++ {
		victim := r.busiest(ctx)
		before, _ := r.domains(ctx, victim)
		if err := r.agents[victim].freeze(); err != nil {
			b.res.fail("12", measure, err)
			return
		}
		start := time.Now()
		n, d, err := r.waitAllElsewhere(ctx, victim, start)
		twice += n
		if err == nil {
			took = append(took, d)
			restarts += len(before)
		}
		if terr := r.agents[victim].thaw(); err == nil {
			err = terr
		}
		if err != nil {
			b.res.fail("12", measure, fmt.Errorf("failover %d: %w", loop, err))
			return
		}
		resumed := time.Now()
		after, err := r.firstAnswer(ctx, victim)
		if err != nil {
			b.res.fail("12", measure, fmt.Errorf("failover %d: %w", loop, err))
			return
		}
		left += len(after)
		if err := r.managerCatchesUp(ctx, victim); err != nil {
			b.res.fail("12", measure, fmt.Errorf("failover %d: %w", loop, err))
			return
		}
		caughtUp = append(caughtUp, time.Since(resumed))
		fmt.Printf("  failover %d: %s froze with %d HA VMs, all running elsewhere after %s; resumed, it ran %d; the manager agreed %s later\n",
			loop, r.agents[victim].name, len(before), d.Round(time.Millisecond), len(after), caughtUp[len(caughtUp)-1].Round(time.Millisecond))
	}
	if len(took) == 0 {
		return // interrupted
	}
	x := durationsMS(took)
	med, worst := median(x), percentile(x, 100)
	base := fmt.Sprintf("floor: fence %s + margin %s = %s", haFence, haMargin, fmtMS(ms(floor)))
	b.res.add(row{Fig: "12", Measure: fmt.Sprintf("%s, heartbeat %s, renew %s, median of %d", measure, haHeartbeat, haRenew, len(took)),
		Value: fmtMS(med), Baseline: base, Ratio: ratio(med, ms(floor))})
	// Issue 13's bound is 60 s from a server's death to its HA VMs running
	// elsewhere with the default settings, whose floor is 30 s: 2 x the
	// floor, applied here to the worst failover.
	b.res.add(row{Fig: "12", Measure: fmt.Sprintf("same, worst of %d", len(took)), Value: fmtMS(worst), Baseline: base,
		Ratio: ratio(worst, ms(floor)), Target: "<= 2 x floor", Met: yesNo(worst <= 2*ms(floor))})
	b.res.add(row{Fig: "12", Measure: "HA VMs seen on two servers at any look / run by a resumed agent",
		Value: fmt.Sprintf("%d / %d", twice, left), Target: "0 / 0", Met: yesNo(twice == 0 && left == 0)})
	b.res.note("figure 12: a manager process (`--heartbeat-interval %s`) and %d xenagent processes (simulated hosts) in one pool, "+
		"`edit ServerPool highAvailability=Yes haRepository=... haRenewInterval=%s haFenceTimeout=%s haRestartMargin=%s`, %d HA VMs "+
		"started on the first agent before the others joined; %d failovers, %d VM restarts; each freezes (SIGSTOP) the agent with "+
		"the most HA VMs and looks at the other agents' list_vms every %s until all %d run there; failover median %s, p90 %s, "+
		"best %s; the lease was renewed up to %s before the freeze, so a failover can end up to that much below the floor; "+
		"after SIGCONT the manager recorded the server Running and every HA VM where it runs within %s (median)",
		haHeartbeat, haAgents, haRenew, haFence, haMargin, haVMs, len(took), restarts, haLook, haVMs, fmtMS(med),
		fmtMS(percentile(x, 90)), fmtMS(percentile(x, 0)), haRenew, fmtMS(median(durationsMS(caughtUp))))
}

// haRig is figure 12's manager and agents, with a client of each agent's
// own (the truth the figure reads) and the HA VMs' ids.
type haRig struct {
	m       *managerProc
	agents  []*agentProc
	clients []*agentclient.Client
	vms     map[string]string // VM id -> name
}

// startHARig starts the agents and the manager and sets up the pool as
// cmd/xenmanager's HA tests do: ten HA VMs started on the first server,
// then the others join. It returns what it started, to close, also with
// an error.
func (b *bench) startHARig(ctx context.Context, dir string) (*haRig, error) {
	r := &haRig{vms: map[string]string{}}
	for i := 1; i <= haAgents; i++ {
		a, err := b.startAgentProc(ctx, filepath.Join(dir, "agents"), fmt.Sprintf("ha%d", i), 5*time.Second,
			"--memory-mib", "8192", "--cpus", "4")
		if err != nil {
			return r, err
		}
		r.agents = append(r.agents, a)
		c, err := a.client(2 * time.Second)
		if err != nil {
			return r, err
		}
		r.clients = append(r.clients, c)
	}
	var err error
	if r.m, err = startManager(ctx, b.bin, filepath.Join(dir, "manager"), "--heartbeat-interval", haHeartbeat.String()); err != nil {
		return r, err
	}
	var s strings.Builder
	for i, a := range r.agents {
		s.WriteString(a.discoverLine())
		if i == 0 {
			fmt.Fprintf(&s, "create ServerPool name=hapool\nadd Server name=%s to ServerPool name=hapool\n", a.name)
			fmt.Fprintf(&s, "create Repository name=harepo fsLocation=%s on ServerPool name=hapool\n", filepath.Join(dir, "repository"))
			fmt.Fprintf(&s, "edit ServerPool name=hapool highAvailability=Yes haRepository=harepo haRenewInterval=%s haFenceTimeout=%s haRestartMargin=%s\n",
				haRenew, haFence, haMargin)
			for v := 1; v <= haVMs; v++ {
				fmt.Fprintf(&s, "create Vm name=havm%d repository=harepo memory=256 highAvailability=Yes\nstart Vm name=havm%d\n", v, v)
			}
		}
	}
	for _, a := range r.agents[1:] {
		fmt.Fprintf(&s, "add Server name=%s to ServerPool name=hapool\n", a.name)
	}
	if _, err := r.m.goSSH(ctx, s.String(), true); err != nil {
		return r, fmt.Errorf("set-up: %w", err)
	}
	out, err := r.m.goSSH(ctx, showHAVMs(), true)
	if err != nil {
		return r, err
	}
	ids, names := idLineRx.FindAllStringSubmatch(out, -1), haNameRx.FindAllStringSubmatch(out, -1)
	if len(ids) != haVMs || len(names) != haVMs {
		return r, fmt.Errorf("show Vm gave %d ids and %d names, want %d: %s", len(ids), len(names), haVMs, oneLine(out))
	}
	for i := range ids {
		r.vms[ids[i][1]] = names[i][1]
	}
	return r, nil
}

// showHAVMs is the batch that shows the HA VMs.
func showHAVMs() string {
	var s strings.Builder
	for v := 1; v <= haVMs; v++ {
		fmt.Fprintf(&s, "show Vm name=havm%d\n", v)
	}
	return s.String()
}

var haNameRx = regexp.MustCompile(`(?m)^\s*Name = (havm\d+)\s*$`)

func (r *haRig) close() {
	for _, c := range r.clients {
		c.Close()
	}
	r.m.stop()
	stopAll(r.agents)
}

// domains asks agent i which HA VMs it holds (a crashed domain excepted);
// ok is false when it does not answer.
func (r *haRig) domains(ctx context.Context, i int) (ids []string, ok bool) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ds, err := r.clients[i].ListVMs(cctx)
	if err != nil {
		return nil, false
	}
	for _, d := range ds {
		if _, ours := r.vms[d.UUID]; ours && d.State != agentapi.StateCrashed {
			ids = append(ids, d.UUID)
		}
	}
	return ids, true
}

// placement asks every agent but skip what it runs: where each HA VM runs,
// and how many run on two servers at once.
func (r *haRig) placement(ctx context.Context, skip int) (where map[string]int, twice int) {
	where = map[string]int{}
	for i := range r.agents {
		if i == skip {
			continue
		}
		ids, _ := r.domains(ctx, i)
		for _, id := range ids {
			if _, seen := where[id]; seen {
				twice++
			}
			where[id] = i
		}
	}
	return where, twice
}

// busiest is the agent that runs the most HA VMs.
func (r *haRig) busiest(ctx context.Context) int {
	where, _ := r.placement(ctx, -1)
	counts := make([]int, len(r.agents))
	for _, i := range where {
		counts[i]++
	}
	return slices.Index(counts, slices.Max(counts))
}

// waitAllElsewhere looks at the agents but victim until every HA VM runs
// on one of them, and returns the VMs seen twice on the way and the time
// from since.
func (r *haRig) waitAllElsewhere(ctx context.Context, victim int, since time.Time) (int, time.Duration, error) {
	twice := 0
	for {
		where, n := r.placement(ctx, victim)
		d := time.Since(since)
		twice += n
		if len(where) == haVMs {
			return twice, d, nil
		}
		if d > haBound {
			return twice, d, fmt.Errorf("after %s, %d of %d HA VMs run on the live servers: %s", haBound, len(where), haVMs, tail(r.m.log))
		}
		if !sleepCtx(ctx, haLook) {
			return twice, d, ctx.Err()
		}
	}
}

// firstAnswer waits for the resumed agent i's first answer to list_vms
// and returns the HA VMs it still holds.
func (r *haRig) firstAnswer(ctx context.Context, i int) ([]string, error) {
	deadline := time.Now().Add(haBound)
	for {
		if ids, ok := r.domains(ctx, i); ok {
			return ids, nil
		}
		if time.Now().After(deadline) || !sleepCtx(ctx, haLook) {
			return nil, fmt.Errorf("the resumed agent %s did not answer within %s", r.agents[i].name, haBound)
		}
	}
}

// managerCatchesUp waits until the manager records the resumed server
// Running and every HA VM Running on the server whose agent runs it.
func (r *haRig) managerCatchesUp(ctx context.Context, victim int) error {
	deadline := time.Now().Add(haBound)
	for {
		where, _ := r.placement(ctx, -1)
		srv, err := r.m.goSSH(ctx, "show Server name="+r.agents[victim].name, false)
		agree := err == nil && len(where) == haVMs && strings.Contains(srv, "Status = Running")
		out := ""
		if agree {
			out, err = r.m.goSSH(ctx, showHAVMs(), true)
			agree = err == nil
		}
		for id, i := range where {
			block := vmBlock(out, r.vms[id])
			if !strings.Contains(block, "Status = Running") || !strings.Contains(block, "["+r.agents[i].name+"]") {
				agree = false
			}
		}
		if agree {
			return nil
		}
		if time.Now().After(deadline) || !sleepCtx(ctx, 100*time.Millisecond) {
			return fmt.Errorf("the manager's records do not follow the agents within %s: %s %s", haBound, oneLine(srv), oneLine(out))
		}
	}
}

// vmBlock is the part of a batch of show Vm outputs about the VM named
// name: from its "Name = name" line to the next VM's.
func vmBlock(out, name string) string {
	i := strings.Index(out, "Name = "+name+"\n")
	if i < 0 {
		return ""
	}
	rest := out[i:]
	if j := strings.Index(rest[1:], "Name = havm"); j >= 0 {
		return rest[:j+1]
	}
	return rest
}
