package main

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
)

// The lease timing of the HA tests: short, so that twenty failovers fit in
// one CI run; the defaults are ten times these.
const (
	haTestRenew  = "200ms"
	haTestFence  = "1s"
	haTestMargin = "500ms"
	haTestVMs    = 10 // HA VMs of the failover tests
	// haBound is how long a failover may take before the test fails: a
	// correctness deadline, generous on a loaded machine, not a speed
	// figure (those are logged).
	haBound = 60 * time.Second
)

// haFleet is a manager process and agent processes in one HA pool, with
// haTestVMs HA VMs, and a client of each agent's own (the truth the test
// checks the manager against).
type haFleet struct {
	t       *testing.T
	dir     string
	m       *manager
	mArgs   []string
	agents  []*agentProcess
	names   []string
	clients []*agentclient.Client
	vms     map[string]string // VM id -> name
	n       int               // the VMs ha1..ha<n>
}

// startHAFleet starts n agents and a manager with a 200 ms heartbeat, puts
// the agents in pool hapool with high availability on repository harepo,
// and starts haTestVMs HA VMs, all on ovs1 (the other servers join after).
func startHAFleet(t *testing.T, n int) *haFleet {
	return startHAFleetWith(t, n, haTestVMs, "")
}

// startHAFleetWith is startHAFleet with vms VMs started on ovs1 before the
// other servers join, and then the commands of setup.
func startHAFleetWith(t *testing.T, n, vms int, setup string) *haFleet {
	t.Helper()
	f := &haFleet{t: t, dir: t.TempDir(), vms: map[string]string{}, n: vms}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("ovs%d", i)
		a := startAgentProcess(t, filepath.Join(f.dir, name), "ha-secret-"+name, "--hostname", name, "--memory-mib", "8192", "--cpus", "4", "--sim-control")
		port, _ := strconv.Atoi(a.port)
		c, err := agentclient.New(agentclient.Config{Address: "127.0.0.1", Port: port, Password: a.password, PinSHA256: a.pin, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		f.agents, f.names, f.clients = append(f.agents, a), append(f.names, name), append(f.clients, c)
	}
	data := filepath.Join(f.dir, "manager")
	f.mArgs = []string{"--listen", "127.0.0.1:0", "--data", data, "--heartbeat-interval", "200ms"}
	f.m = startManagerWith(t, data, nil, f.mArgs...)
	var b strings.Builder
	for i, a := range f.agents {
		fmt.Fprintf(&b, "discoverServer ipAddress=127.0.0.1 port=%s password=%s\n", a.port, a.password)
		if i == 0 {
			fmt.Fprintf(&b, "create ServerPool name=hapool\nadd Server name=ovs1 to ServerPool name=hapool\n")
			fmt.Fprintf(&b, "create Repository name=harepo fsLocation=%s on ServerPool name=hapool\n", filepath.Join(f.dir, "repo"))
			fmt.Fprintf(&b, "edit ServerPool name=hapool highAvailability=Yes haRepository=harepo haRenewInterval=%s haFenceTimeout=%s haRestartMargin=%s\n",
				haTestRenew, haTestFence, haTestMargin)
			for v := 1; v <= vms; v++ {
				fmt.Fprintf(&b, "create Vm name=ha%d repository=harepo memory=256 highAvailability=Yes\nstart Vm name=ha%d\n", v, v)
			}
		}
	}
	for _, name := range f.names[1:] {
		fmt.Fprintf(&b, "add Server name=%s to ServerPool name=hapool\n", name)
	}
	b.WriteString(setup)
	out, status := f.m.ssh(b.String(), false)
	if status != 0 {
		t.Fatalf("setting up the HA fleet: exit %d\n%s", status, out)
	}
	f.readVMs()
	return f
}

// readVMs learns the VMs' ids from the manager.
func (f *haFleet) readVMs() {
	var b strings.Builder
	for v := 1; v <= f.n; v++ {
		fmt.Fprintf(&b, "show Vm name=ha%d\n", v)
	}
	out, status := f.m.ssh(b.String(), false)
	if status != 0 {
		f.t.Fatalf("show the HA VMs: exit %d\n%s", status, out)
	}
	ids := regexp.MustCompile(`(?m)^\s*Id = (\S+)`).FindAllStringSubmatch(out, -1)
	names := regexp.MustCompile(`(?m)^\s*Name = (ha\d+)`).FindAllStringSubmatch(out, -1)
	if len(ids) != f.n || len(names) != f.n {
		f.t.Fatalf("show Vm gave %d ids and %d names, want %d:\n%s", len(ids), len(names), f.n, out)
	}
	for i := range ids {
		f.vms[ids[i][1]] = names[i][1]
	}
}

// domains asks agent i which of the HA VMs it runs (any state that holds
// the domain); ok is false when it does not answer.
func (f *haFleet) domains(i int) (running []string, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ds, err := f.clients[i].ListVMs(ctx)
	if err != nil {
		return nil, false
	}
	for _, d := range ds {
		if _, ours := f.vms[d.UUID]; ours && d.State != agentapi.StateCrashed {
			running = append(running, d.UUID)
		}
	}
	return running, true
}

// placement asks every agent except skip what it runs: where each HA VM
// runs, and the VMs found on two servers at once.
func (f *haFleet) placement(skip int) (where map[string]int, twice []string) {
	where = map[string]int{}
	for i := range f.agents {
		if i == skip {
			continue
		}
		ds, _ := f.domains(i)
		for _, id := range ds {
			if j, seen := where[id]; seen {
				twice = append(twice, fmt.Sprintf("%s on %s and %s", f.vms[id], f.names[j], f.names[i]))
			}
			where[id] = i
		}
	}
	return where, twice
}

// busiest is the agent that runs the most HA VMs.
func (f *haFleet) busiest() int {
	where, _ := f.placement(-1)
	counts := make([]int, len(f.agents))
	for _, i := range where {
		counts[i]++
	}
	return slices.Index(counts, slices.Max(counts))
}

// waitAllElsewhere waits until every HA VM runs on an agent other than
// victim, checking at every look that none runs twice; it returns how long
// that took from since.
func (f *haFleet) waitAllElsewhere(victim int, since time.Time) time.Duration {
	f.t.Helper()
	for {
		where, twice := f.placement(victim)
		if len(twice) > 0 {
			f.t.Fatalf("a VM runs on two servers: %s", strings.Join(twice, "; "))
		}
		if len(where) == f.n {
			return time.Since(since)
		}
		if time.Since(since) > haBound {
			f.t.Fatalf("after %s, %d of %d HA VMs run on the live servers\nmanager log:\n%s", haBound, len(where), f.n, tail(f.m.stderr.String(), 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// managerAgrees waits until the manager records every HA VM Running on the
// server whose agent runs it.
func (f *haFleet) managerAgrees() {
	f.t.Helper()
	deadline := time.Now().Add(haBound)
	for {
		where, _ := f.placement(-1)
		var b strings.Builder
		for v := 1; v <= f.n; v++ {
			fmt.Fprintf(&b, "show Vm name=ha%d\n", v)
		}
		out, _ := f.m.ssh(b.String(), false)
		agree := len(where) == f.n
		for id, i := range where {
			block := vmBlock(out, f.vms[id])
			if !strings.Contains(block, "Status = Running") || !strings.Contains(block, "["+f.names[i]+"]") {
				agree = false
			}
		}
		if agree {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("the manager's records do not follow the agents within %s:\n%s", haBound, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// vmBlock is the part of show Vm output about the VM named name.
func vmBlock(out, name string) string {
	i := strings.Index(out, "Name = "+name+"\n")
	if i < 0 {
		return ""
	}
	rest := out[i:]
	if j := strings.Index(rest[1:], "Name = ha"); j >= 0 {
		return rest[:j+1]
	}
	return rest
}

// waitServerRunning waits until the manager records server name Running.
func (f *haFleet) waitServerRunning(name string) {
	f.t.Helper()
	deadline := time.Now().Add(haBound)
	for {
		out, _ := f.m.ssh("show Server name="+name+"\n", false)
		if strings.Contains(out, "Status = Running") {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("server %s is not Running again within %s:\n%s", name, haBound, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// median of durations, and the worst.
func medianWorst(ds []time.Duration) (time.Duration, time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)-1]
}

// A frozen agent (SIGSTOP) holding HA VMs: the manager restarts every one
// elsewhere exactly once, once the agent's lease has expired plus the
// margin; resumed (SIGCONT), the agent has stopped its own copies before it
// answers anything. Twenty times in a row, each time freezing the busiest
// server, checking every agent's own domain list at every look.
func TestHAFailoverFrozenAgent(t *testing.T) {
	needTools(t)
	loops := 20
	if testing.Short() {
		loops = 2
	}
	f := startHAFleet(t, 4)
	var took []time.Duration
	restarted := 0
	for loop := 1; loop <= loops; loop++ {
		victim := f.busiest()
		before, _ := f.domains(victim)
		start := time.Now()
		if err := f.agents[victim].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		took = append(took, f.waitAllElsewhere(victim, start))
		restarted += len(before)
		if err := f.agents[victim].cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		// The very first answer of the resumed agent: its copies are gone.
		var after []string
		for ok := false; !ok; {
			after, ok = f.domains(victim)
		}
		if len(after) > 0 {
			t.Fatalf("loop %d: resumed %s still runs %d HA VMs that run elsewhere", loop, f.names[victim], len(after))
		}
		if _, twice := f.placement(-1); len(twice) > 0 {
			t.Fatalf("loop %d: a VM runs on two servers after the resume: %s", loop, strings.Join(twice, "; "))
		}
		f.waitServerRunning(f.names[victim])
		f.managerAgrees()
	}
	med, worst := medianWorst(took)
	t.Logf("HA failover of a frozen server, %d loops, %d VM restarts, 0 VMs on two servers: from SIGSTOP to every HA VM running elsewhere median %s, worst %s (renew %s, fence %s, margin %s, heartbeat 200ms)",
		loops, restarted, med.Round(time.Millisecond), worst.Round(time.Millisecond), haTestRenew, haTestFence, haTestMargin)
}

// The manager killed (kill -9) in the middle of a failover and started
// again on its data: every HA VM ends up running exactly once, none on the
// frozen server, and the records follow the agents.
func TestHAFailoverManagerKilled(t *testing.T) {
	needTools(t)
	f := startHAFleet(t, 3)
	victim := f.busiest()
	// Each start on the live servers takes a second, so that the manager
	// dies with some VMs restarted, some being restarted, some not yet.
	for i, c := range f.clients {
		if i == victim {
			continue
		}
		if err := c.Call(context.Background(), agentapi.MethodSimSet, nil, map[string]any{"latency_ms": map[string]any{agentapi.MethodStartVM: 1000}}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	if err := f.agents[victim].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Kill the manager as soon as the first VM runs elsewhere.
	for {
		where, twice := f.placement(victim)
		if len(twice) > 0 {
			t.Fatalf("a VM runs on two servers: %s", strings.Join(twice, "; "))
		}
		if len(where) > 0 {
			t.Logf("manager killed with %d of %d HA VMs restarted", len(where), haTestVMs)
			break
		}
		if time.Since(start) > haBound {
			t.Fatalf("no HA VM restarted within %s\n%s", haBound, tail(f.m.stderr.String(), 40))
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.m.cmd.Process.Kill()
	f.m.cmd.Wait()
	f.m.stopped = true
	f.m = startManagerWith(t, filepath.Join(f.dir, "manager"), nil, f.mArgs...)
	f.waitAllElsewhere(victim, start)
	f.agents[victim].cmd.Process.Signal(syscall.SIGCONT)
	var after []string
	for ok := false; !ok; {
		after, ok = f.domains(victim)
	}
	if len(after) > 0 {
		t.Fatalf("resumed %s still runs %d HA VMs", f.names[victim], len(after))
	}
	f.waitServerRunning(f.names[victim])
	f.managerAgrees()
	out, _ := f.m.ssh("list Job\n", false)
	if strings.Contains(out, "Running") {
		t.Fatalf("a job is left Running after the manager's restart:\n%s", out)
	}
}

// An agent process killed (kill -9): it cannot fence, but its lease
// expires, and its HA VMs (gone with the simulated host) restart elsewhere.
func TestHAFailoverKilledAgent(t *testing.T) {
	needTools(t)
	f := startHAFleet(t, 3)
	victim := f.busiest()
	start := time.Now()
	f.agents[victim].cmd.Process.Kill()
	<-f.agents[victim].waited
	took := f.waitAllElsewhere(victim, start)
	f.managerAgrees()
	out, _ := f.m.ssh("getEvents\n", false)
	for _, want := range []string{"ServerFenced", "VmHaRestarted"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %s event after a killed agent:\n%s", want, out)
		}
	}
	t.Logf("killed agent: every HA VM ran again %s after kill -9", took.Round(time.Millisecond))
}

// An HA VM of a dead server whose anti-affinity group has a member on
// every other server: it is not placed (no second member on a server), a
// clear event says why, naming the group, and it runs nowhere.
func TestHAFailoverAntiAffinityNoTarget(t *testing.T) {
	needTools(t)
	var setup strings.Builder
	setup.WriteString("create AntiAffinityGroup name=tier on ServerPool name=hapool\n")
	for v := 1; v <= 3; v++ {
		fmt.Fprintf(&setup, "create Vm name=ha%d repository=harepo memory=256 highAvailability=Yes\nadd Vm name=ha%d to AntiAffinityGroup name=tier\nstart Vm name=ha%d\n", v, v, v)
	}
	f := startHAFleetWith(t, 3, 0, setup.String())
	f.n = 3
	f.readVMs()
	where, _ := f.placement(-1)
	if len(where) != 3 || where[f.idOf("ha1")] == where[f.idOf("ha2")] || where[f.idOf("ha2")] == where[f.idOf("ha3")] || where[f.idOf("ha1")] == where[f.idOf("ha3")] {
		t.Fatalf("the group's members do not run one per server: %v", where)
	}
	victim := where[f.idOf("ha1")]
	f.agents[victim].cmd.Process.Kill()
	<-f.agents[victim].waited
	deadline := time.Now().Add(haBound)
	for {
		out, _ := f.m.ssh("set outputMode=Json\ngetEvents\n", false)
		if m := regexp.MustCompile(`"name": *"VmHaRestartFailed"[^}]*"description": *"([^"]*)"`).FindStringSubmatch(out); m != nil {
			if !strings.Contains(m[1], "AntiAffinityGroup tier") || !strings.Contains(m[1], "Vm ha1") {
				t.Fatalf("the HA restart failure does not name the VM and its anti-affinity group: %s", m[1])
			}
			t.Logf("event: %s", m[1])
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event says why ha1 was not restarted within %s:\n%s\nmanager log:\n%s", haBound, out, tail(f.m.stderr.String(), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
	now, twice := f.placement(victim)
	if len(twice) > 0 || len(now) != 2 {
		t.Fatalf("after the failed restart, the live servers run %v (twice: %v); want ha2 and ha3 only", now, twice)
	}
	if _, runs := now[f.idOf("ha1")]; runs {
		t.Fatalf("ha1 was placed beside another member of its group")
	}
}

// idOf is the id of the VM named name.
func (f *haFleet) idOf(name string) string {
	for id, n := range f.vms {
		if n == name {
			return id
		}
	}
	f.t.Fatalf("no VM %s", name)
	return ""
}
