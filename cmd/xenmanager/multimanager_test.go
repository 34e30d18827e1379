package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
	"xenmanager/store/pgtest"
)

// The membership timings of the tests of several managers, short so that a
// dead manager is noticed in seconds, long enough that a live one on a
// loaded two-core machine (the -race build, 3 managers, 4 agents, 200 SSH
// clients and PostgreSQL sharing it) is never taken for dead:
//   - a renewal every 500 ms;
//   - a member silent for 4 s (8 renewals) is dead. Taking a live manager
//     for dead would end its running jobs under it, the costlier mistake,
//     hence more slack than the lease;
//   - the leader lease lasts 3 s (6 renewals): a leader stops leading when
//     no renewal came back for 2.5 s, and losing the lead by mistake costs
//     only a take-over.
//
// The heartbeat runs every 200 ms, as in the HA tests, so that the
// reconciliation and the HA rounds of a new leader come soon.
const (
	mmRenew     = 500 * time.Millisecond
	mmTimeout   = 4 * time.Second
	mmLease     = 3 * time.Second
	mmHeartbeat = 200 * time.Millisecond
	// mmGrace is what the issue allows a surviving manager, past the
	// lease's or the membership's expiry, to end every job of a dead one
	// and for the records to agree with the agents: a correctness
	// deadline, not a speed figure (those are logged).
	mmGrace = 10 * time.Second
	// The HA timings of the pool: longer than the HA tests' (fence 1 s),
	// which a single manager's test can afford, because a simulated agent
	// that the loaded machine stalls for its fence timeout fences itself,
	// destroying its VMs, and that is not what these tests are about.
	mmHARenew  = "500ms"
	mmHAFence  = "4s"
	mmHAMargin = "1s"
)

// multiFleet is several `xenmanager serve` processes on one PostgreSQL
// database, xenagent processes (simulated hosts, with fault injection)
// discovered into one pool, a connection to the database of its own (to
// read jobs, VMs, events and the lease as they are, whichever manager
// wrote them) and a client of each agent (the truth the records are
// checked against).
type multiFleet struct {
	t        *testing.T
	dir      string
	db       *pgxpool.Pool
	managers []*manager
	agents   []*agentProcess
	names    []string // the agents' host names: ovs1, ovs2, ...
	clients  []*agentclient.Client
	dead     []bool         // agents killed by the test
	agentOf  map[string]int // server id -> index of its agent
}

// startMultiFleet starts nAgents simulated agents and nManagers managers
// on a new PostgreSQL database (store/pgtest: skipped without a server,
// failed under CI=true), all given one secret key file and the timings
// above, and puts the agents in pool mpool with repository mrepo, running
// the commands of early on the first manager while ovs1 is the pool's only
// server, and those of setup once every agent is in.
func startMultiFleet(t *testing.T, nManagers, nAgents int, early, setup string) *multiFleet {
	t.Helper()
	needTools(t)
	dsn := pgtest.Database(t)
	f := &multiFleet{t: t, dir: t.TempDir(), agentOf: map[string]int{}}
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	f.db = pool
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the managers' logs but their sessions' lines:\n%s", f.logsWithoutSessions())
			for i, a := range f.agents {
				t.Logf("the warnings and errors of %s:\n%s", f.names[i], warnings(a.log.String()))
			}
		}
	})

	for i := 1; i <= nAgents; i++ {
		name := fmt.Sprintf("ovs%d", i)
		// Room for a thousand small VMs on a few hosts: the simulated host
		// only counts memory.
		a := startAgentProcess(t, filepath.Join(f.dir, name), "mm-secret-"+name, "--hostname", name,
			"--memory-mib", "131072", "--cpus", "64", "--sim-control")
		port, _ := strconv.Atoi(a.port)
		c, err := agentclient.New(agentclient.Config{Address: "127.0.0.1", Port: port, Password: a.password, PinSHA256: a.pin, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		f.agents, f.names, f.clients, f.dead = append(f.agents, a), append(f.names, name), append(f.clients, c), append(f.dead, false)
	}

	// One secret key for every manager, as an operator copies it.
	key := filepath.Join(f.dir, "secret.key")
	if err := os.WriteFile(key, []byte((rand.Text() + rand.Text())[:32]), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= nManagers; i++ {
		data := filepath.Join(f.dir, fmt.Sprintf("manager%d", i))
		if i > 1 {
			// The first manager created user admin and wrote its password
			// in its own --data; the others find the user in the database.
			copyFile(t, filepath.Join(f.managers[0].data, "admin-password"), filepath.Join(data, "admin-password"))
		}
		m := startManagerWith(t, data, nil, "--listen", "127.0.0.1:0", "--data", data, "--database", dsn,
			"--secret-key-file", key, "--member-renew", mmRenew.String(), "--member-timeout", mmTimeout.String(),
			"--leader-lease", mmLease.String(), "--heartbeat-interval", mmHeartbeat.String())
		f.managers = append(f.managers, m)
	}

	var b strings.Builder
	for _, a := range f.agents {
		fmt.Fprintf(&b, "discoverServer ipAddress=127.0.0.1 port=%s password=%s\n", a.port, a.password)
	}
	b.WriteString("create ServerPool name=mpool\nadd Server name=ovs1 to ServerPool name=mpool\n")
	fmt.Fprintf(&b, "create Repository name=mrepo fsLocation=%s on ServerPool name=mpool\n", filepath.Join(f.dir, "repo"))
	b.WriteString(early)
	for _, name := range f.names[1:] {
		fmt.Fprintf(&b, "add Server name=%s to ServerPool name=mpool\n", name)
	}
	b.WriteString(setup)
	// The first session writes the shared host key into known_hosts, before
	// any concurrent session could.
	if out, status := f.managers[0].ssh(b.String(), false); status != 0 {
		t.Fatalf("setting up the fleet: exit %d\n%s", status, tail(out, 40))
	}
	rows, err := f.db.Query(context.Background(), `SELECT id, name FROM servers`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			t.Fatal(err)
		}
		i := slices.Index(f.names, name)
		if i < 0 {
			t.Fatalf("server %s (%s) is none of the agents %v", name, id, f.names)
		}
		f.agentOf[id] = i
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(f.agentOf) != nAgents {
		t.Fatalf("%d servers recorded, want %d", len(f.agentOf), nAgents)
	}
	return f
}

// copyFile copies the file from to the new file to (mode 0600), making its
// directory.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// ctx is a context for one look at the database or the agents.
func (f *multiFleet) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

// count runs a query of one number.
func (f *multiFleet) count(query string, args ...any) int {
	f.t.Helper()
	ctx, cancel := f.ctx()
	defer cancel()
	var n int
	if err := f.db.QueryRow(ctx, query, args...).Scan(&n); err != nil {
		f.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// memberID is the id among the database's managers of manager i (its row
// by process id).
func (f *multiFleet) memberID(i int) string {
	f.t.Helper()
	ctx, cancel := f.ctx()
	defer cancel()
	var id string
	err := f.db.QueryRow(ctx, `SELECT id FROM managers WHERE pid = $1 AND ended = 0 ORDER BY started_at DESC LIMIT 1`,
		f.managers[i].cmd.Process.Pid).Scan(&id)
	if err != nil {
		f.t.Fatalf("the row of manager %d (pid %d): %v", i, f.managers[i].cmd.Process.Pid, err)
	}
	return id
}

// leader is the index of the manager whose lease is current by the
// database's clock, or -1 when none holds one.
func (f *multiFleet) leader() int {
	f.t.Helper()
	ctx, cancel := f.ctx()
	defer cancel()
	var pid int
	err := f.db.QueryRow(ctx, `SELECT m.pid FROM leader l JOIN managers m ON m.id = l.manager_id
		WHERE l.expires_at > (extract(epoch from clock_timestamp()) * 1000)::bigint`).Scan(&pid)
	if err != nil {
		return -1
	}
	for i, m := range f.managers {
		if !m.stopped && m.cmd.Process.Pid == pid {
			return i
		}
	}
	return -1
}

// waitLeader waits until a live manager leads and returns it.
func (f *multiFleet) waitLeader(bound time.Duration) int {
	f.t.Helper()
	deadline := time.Now().Add(bound)
	for {
		if i := f.leader(); i >= 0 {
			return i
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("no live manager leads within %s\n%s", bound, f.logs(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill9 kills manager i as kill -9 does and returns when it is gone.
func (f *multiFleet) kill9(i int) time.Time {
	f.t.Helper()
	m := f.managers[i]
	if err := m.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		f.t.Fatal(err)
	}
	at := time.Now()
	m.cmd.Wait()
	m.stopped = true
	return at
}

// logs is the end of every manager's log.
func (f *multiFleet) logs(lines int) string {
	var b strings.Builder
	for i, m := range f.managers {
		fmt.Fprintf(&b, "--- manager %d (port %s, killed %v):\n%s\n", i, m.port, m.stopped, tail(m.stderr.String(), lines))
	}
	return b.String()
}

// logsWithoutSessions is every manager's log but for the lines of SSH
// sessions and their commands, what a failure's cause is found in.
func (f *multiFleet) logsWithoutSessions() string {
	var b strings.Builder
	for i, m := range f.managers {
		fmt.Fprintf(&b, "--- manager %d (port %s, killed %v):\n", i, m.port, m.stopped)
		for _, line := range strings.Split(m.stderr.String(), "\n") {
			if !strings.Contains(line, "msg=command ") && !strings.Contains(line, `msg="session `) {
				b.WriteString(line + "\n")
			}
		}
	}
	return b.String()
}

// warnings is the lines of a log at level WARN or ERROR.
func warnings(log string) string {
	var b strings.Builder
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// runningJobs is the summaries of the jobs recorded Running, with their
// manager.
func (f *multiFleet) runningJobs() []string {
	f.t.Helper()
	ctx, cancel := f.ctx()
	defer cancel()
	rows, err := f.db.Query(ctx, `SELECT summary, manager_id FROM jobs WHERE status = 'Running' ORDER BY created_at`)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var summary, mgr string
		if err := rows.Scan(&summary, &mgr); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, summary+" (manager "+mgr+")")
	}
	if err := rows.Err(); err != nil {
		f.t.Fatal(err)
	}
	return out
}

// vmRecord is a VM as the database records it.
type vmRecord struct {
	name, status, server string // server: its id, "" for none
}

// vmRecords reads the VMs whose names start with prefix.
func (f *multiFleet) vmRecords(prefix string) map[string]vmRecord {
	f.t.Helper()
	ctx, cancel := f.ctx()
	defer cancel()
	rows, err := f.db.Query(ctx, `SELECT id, name, status, COALESCE(server_id, '') FROM vms WHERE name LIKE $1 || '%'`, prefix)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]vmRecord{}
	for rows.Next() {
		var id string
		var r vmRecord
		if err := rows.Scan(&id, &r.name, &r.status, &r.server); err != nil {
			f.t.Fatal(err)
		}
		out[id] = r
	}
	if err := rows.Err(); err != nil {
		f.t.Fatal(err)
	}
	return out
}

// live asks every agent not killed for its own domain list, all at once:
// where each domain that holds a VM (any state but crashed) is, by agent
// index. An agent that does not answer fails the test: the check would be
// blind.
func (f *multiFleet) live() map[string][]int {
	f.t.Helper()
	lists := make([][]agentapi.Domain, len(f.clients))
	errs := make([]error, len(f.clients))
	var wg sync.WaitGroup
	for i, c := range f.clients {
		if f.dead[i] {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := f.ctx()
			defer cancel()
			lists[i], errs[i] = c.ListVMs(ctx)
		}()
	}
	wg.Wait()
	where := map[string][]int{}
	for i, ds := range lists {
		if errs[i] != nil {
			f.t.Fatalf("list_vms on %s: %v", f.names[i], errs[i])
		}
		for _, d := range ds {
			if d.State != agentapi.StateCrashed {
				where[d.UUID] = append(where[d.UUID], i)
			}
		}
	}
	return where
}

// disagreements compares the records of the VMs named prefix* with the
// agents' own lists: a VM live on two agents; a VM recorded Running that is
// not live on its recorded server alone; a VM recorded Stopped that is
// live somewhere; a VM in any other state. twice lists the first kind
// (never allowed, not even for a moment), others the rest (allowed while
// reconciliation catches up).
func (f *multiFleet) disagreements(prefix string) (twice, others []string) {
	f.t.Helper()
	where := f.live()
	recs := f.vmRecords(prefix)
	for id, r := range recs {
		on := where[id]
		hosts := make([]string, len(on))
		for k, i := range on {
			hosts[k] = f.names[i]
		}
		if len(on) > 1 {
			twice = append(twice, fmt.Sprintf("%s live on %s", r.name, strings.Join(hosts, " and ")))
			continue
		}
		switch r.status {
		case "Running":
			i, known := f.agentOf[r.server]
			if !known || len(on) != 1 || on[0] != i {
				others = append(others, fmt.Sprintf("%s recorded Running on %s, live on %v", r.name, f.serverName(r.server), hosts))
			}
		case "Stopped":
			if len(on) > 0 {
				others = append(others, fmt.Sprintf("%s recorded Stopped, live on %v", r.name, hosts))
			}
		default:
			others = append(others, fmt.Sprintf("%s recorded %s (server %s), live on %v", r.name, r.status, f.serverName(r.server), hosts))
		}
	}
	slices.Sort(twice)
	slices.Sort(others)
	return twice, others
}

// serverName is the host name of the agent of server id, or the id.
func (f *multiFleet) serverName(id string) string {
	if i, ok := f.agentOf[id]; ok {
		return f.names[i]
	}
	if id == "" {
		return "none"
	}
	return id
}

// waitSettled waits, until deadline, for no job to be Running and for the
// records of the VMs named prefix* to agree with the agents, failing at
// once if a VM is ever live on two servers. It returns when every job had
// ended, and when the records agreed; and what disagreed at the first look
// after every job had ended.
func (f *multiFleet) waitSettled(prefix string, deadline time.Time) (jobsEnded, agreed time.Time, lagging []string) {
	f.t.Helper()
	for {
		running := f.runningJobs()
		first := len(running) == 0 && jobsEnded.IsZero()
		if first {
			jobsEnded = time.Now()
		}
		twice, others := f.disagreements(prefix)
		if len(twice) > 0 {
			f.t.Fatalf("a VM runs on two servers: %s", strings.Join(twice, "; "))
		}
		if first {
			lagging = others
		}
		if len(running) == 0 && len(others) == 0 {
			return jobsEnded, time.Now(), lagging
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("not settled by the deadline: %d jobs Running (%s), %d VMs whose records disagree with the agents (%s)\n%s",
				len(running), firstFew(running, 5), len(others), firstFew(others, 10), f.logs(30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// firstFew joins the first n of list, saying how many more there are.
func firstFew(list []string, n int) string {
	if len(list) <= n {
		return strings.Join(list, "; ")
	}
	return strings.Join(list[:n], "; ") + fmt.Sprintf("; and %d more", len(list)-n)
}

// sessionTally counts the outcomes of the SSH sessions on one manager.
type sessionTally struct {
	ok, died, bad int
	firstBad      string
}

// runSessions runs n SSH sessions, session k on manager k%len(managers),
// each a few read-only commands, workers at a time. Sessions from index
// gateAt on wait for gate to close. A session succeeds when ssh exits 0
// with every command Success; it died when ssh exits 255 (the connection
// closed or was refused) on a manager that was killed; anything else is
// bad. It returns the tally per manager once all n have run.
func (f *multiFleet) runSessions(n, workers, gateAt int, gate <-chan struct{}, vmCount int) []sessionTally {
	tallies := make([]sessionTally, len(f.managers))
	var mu sync.Mutex // guards tallies
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1)) - 1
				if k >= n {
					return
				}
				if k >= gateAt {
					<-gate
				}
				mi := k % len(f.managers)
				out, code := f.sshRun(mi, fmt.Sprintf("list Server\nshow Vm name=vm%04d\nlist Manager\nshow ServerPool name=mpool\n", k%vmCount))
				mu.Lock()
				switch {
				case code == 0 && strings.Count(out, "Status: Success") == 4:
					tallies[mi].ok++
				case code == 255:
					// Judged against the kill once every session has run.
					tallies[mi].died++
					if tallies[mi].firstBad == "" {
						tallies[mi].firstBad = fmt.Sprintf("session %d: exit 255: %s", k, tail(out, 5))
					}
				default:
					tallies[mi].bad++
					if tallies[mi].firstBad == "" {
						tallies[mi].firstBad = fmt.Sprintf("session %d: exit %d: %s", k, code, tail(out, 10))
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return tallies
}

// sshRun runs an SSH session of script on manager i and returns its output
// and the exit code of ssh (255: the connection failed or closed; -1: ssh
// did not run). Unlike manager.ssh it may run on any goroutine.
func (f *multiFleet) sshRun(i int, script string) (string, int) {
	cmd := f.managers[i].sshCommand(false)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exitErr):
		return string(out), exitErr.ExitCode()
	}
	return string(out) + err.Error(), -1
}

// parallel runs one script per manager at once, each on its manager, and
// fails the test unless every one succeeds.
func (f *multiFleet) parallel(what string, scripts []string) {
	f.t.Helper()
	outs := make([]string, len(scripts))
	codes := make([]int, len(scripts))
	var wg sync.WaitGroup
	for i, s := range scripts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], codes[i] = f.sshRun(i%len(f.managers), s)
		}()
	}
	wg.Wait()
	for i := range scripts {
		if codes[i] != 0 {
			f.t.Fatalf("%s on manager %d: exit %d\n%s", what, i%len(f.managers), codes[i], tail(outs[i], 20))
		}
	}
}

// simSet sets the simulated host's faults on every live agent.
func (f *multiFleet) simSet(settings map[string]any) {
	f.t.Helper()
	for i, c := range f.clients {
		if f.dead[i] {
			continue
		}
		ctx, cancel := f.ctx()
		err := c.Call(ctx, agentapi.MethodSimSet, nil, settings)
		cancel()
		if err != nil {
			f.t.Fatalf("sim_set on %s: %v", f.names[i], err)
		}
	}
}

// jobOutcomes counts the jobs whose summary starts with prefix by status,
// and lists the VM names of those that ended Success.
func (f *multiFleet) jobOutcomes(prefix string) (byStatus map[string]int, succeeded []string) {
	f.t.Helper()
	ctx, cancel := f.ctx()
	defer cancel()
	rows, err := f.db.Query(ctx, `SELECT summary, status FROM jobs WHERE summary LIKE $1 || '%'`, prefix)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	byStatus = map[string]int{}
	for rows.Next() {
		var summary, status string
		if err := rows.Scan(&summary, &status); err != nil {
			f.t.Fatal(err)
		}
		byStatus[status]++
		if status == "Success" {
			succeeded = append(succeeded, strings.TrimPrefix(summary, prefix))
		}
	}
	if err := rows.Err(); err != nil {
		f.t.Fatal(err)
	}
	return byStatus, succeeded
}

// jobIDs runs a query of job ids.
func (f *multiFleet) jobIDs(query string, args ...any) []string {
	f.t.Helper()
	ctx, cancel := f.ctx()
	defer cancel()
	rows, err := f.db.Query(ctx, query, args...)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			f.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		f.t.Fatal(err)
	}
	return ids
}

// jobErrors shows the summary, status and error of the first n jobs of
// ids.
func (f *multiFleet) jobErrors(ids []string, n int) string {
	f.t.Helper()
	ctx, cancel := f.ctx()
	defer cancel()
	rows, err := f.db.Query(ctx, `SELECT summary, status, error FROM jobs WHERE id = ANY($1) ORDER BY created_at LIMIT $2`, ids, n)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var summary, status, msg string
		if err := rows.Scan(&summary, &status, &msg); err != nil {
			f.t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s: %s: %s\n", summary, status, msg)
	}
	return b.String()
}

// waitJobsEnded waits, up to bound, until no job is Running.
func (f *multiFleet) waitJobsEnded(what string, bound time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(bound)
	for {
		running := f.runningJobs()
		if len(running) == 0 {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: %d jobs still Running after %s: %s", what, len(running), bound, firstFew(running, 5))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Three managers on one PostgreSQL database, 200 SSH sessions spread over
// them, and a piped batch of 1,000 `start Vm` running on one manager that
// does not lead: that manager is killed (kill -9) once hundreds of its jobs
// are recorded and many are in flight. The leader must end every one of
// its jobs (finished or undone by its step, naming the dead manager) within the member timeout
// plus 10 s, and the records must then agree with every agent's own domain
// list: each VM live on one server at most, a VM recorded Running live on
// its recorded server alone, a VM recorded Stopped live nowhere, and every
// start that ended Success running. The sessions on the other managers all
// succeed; those on the killed one succeed or lose their connection.
func TestMultiManagerKillBatchRunner(t *testing.T) {
	const (
		nVMs      = 1000
		nSessions = 200
		// killAfter is how many of the batch's jobs are recorded when the
		// manager running them is killed.
		killAfter = 400
	)
	began := time.Now()
	f := startMultiFleet(t, 3, 4, "", "")
	var create strings.Builder
	create.WriteString("set commandMode=Asynchronous\n")
	for v := 0; v < nVMs; v++ {
		fmt.Fprintf(&create, "create Vm name=vm%04d repository=mrepo memory=64\n", v)
	}
	f.parallel("create the VMs", []string{create.String()})
	f.waitJobsEnded("create the VMs", 2*time.Minute)
	if n := f.count(`SELECT count(*) FROM vms WHERE name LIKE 'vm%' AND status = 'Stopped'`); n != nVMs {
		t.Fatalf("%d VMs created and Stopped, want %d", n, nVMs)
	}
	leader := f.waitLeader(time.Minute)
	victim := (leader + 1) % len(f.managers)
	victimID := f.memberID(victim)
	t.Logf("fleet of 3 managers, 4 agents and %d VMs ready in %s; manager %d leads, manager %d (%s) runs the batch",
		nVMs, time.Since(began).Round(time.Millisecond), leader, victim, victimID)

	// A start takes 200 ms on the simulated host, as a real domain's takes
	// longer than an instant: the batch, asynchronous as a script that does
	// not wait would run it, then has a hundred or more jobs in flight.
	f.simSet(map[string]any{"latency_ms": map[string]any{agentapi.MethodStartVM: 200}})
	var batch strings.Builder
	batch.WriteString("set commandMode=Asynchronous\n")
	for v := 0; v < nVMs; v++ {
		fmt.Fprintf(&batch, "start Vm name=vm%04d\n", v)
	}
	type result struct {
		out  string
		code int
	}
	batchDone := make(chan result, 1)
	go func() {
		out, code := f.sshRun(victim, batch.String())
		batchDone <- result{out, code}
	}()
	// Half the sessions run with the batch before the kill; the other half
	// start with the kill, so that some are open when it comes.
	gate := make(chan struct{})
	sessionsDone := make(chan []sessionTally, 1)
	go func() { sessionsDone <- f.runSessions(nSessions, 6, nSessions/2, gate, nVMs) }()

	pollBound := time.Now().Add(2 * time.Minute)
	for {
		n := f.count(`SELECT count(*) FROM jobs WHERE manager_id = $1 AND summary LIKE 'start Vm %'`, victimID)
		if n >= killAfter {
			break
		}
		select {
		case r := <-batchDone:
			close(gate)
			t.Fatalf("the batch ended (exit %d) with %d jobs recorded, before the kill\n%s", r.code, n, tail(r.out, 20))
		default:
		}
		if time.Now().After(pollBound) {
			close(gate)
			t.Fatalf("only %d jobs of the batch recorded after 2 minutes\n%s", n, f.logs(20))
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(gate)
	killed := f.kill9(victim)
	recorded := f.count(`SELECT count(*) FROM jobs WHERE manager_id = $1`, victimID)
	inFlight := f.jobIDs(`SELECT id FROM jobs WHERE manager_id = $1 AND status = 'Running'`, victimID)
	r := <-batchDone
	if r.code == 0 {
		t.Fatalf("the batch session on the killed manager ended well:\n%s", tail(r.out, 10))
	}
	t.Logf("manager %d killed with %d jobs of the batch recorded, %d of them Running", victim, recorded, len(inFlight))

	// Every job ended and the records agree with the agents within the
	// member timeout plus what the issue allows.
	ended, agreed, lagging := f.waitSettled("vm", killed.Add(mmTimeout+mmGrace))
	if len(lagging) > 0 {
		t.Logf("when every job had ended, %d VMs' records did not yet agree with the agents: %s", len(lagging), firstFew(lagging, 5))
	}
	if left := f.count(`SELECT count(*) FROM jobs WHERE status = 'Running'`); left != 0 {
		t.Fatalf("%d jobs Running after the leader ended them", left)
	}
	// What an operator sees: the killed manager is dead, one leads.
	f.checkMembersAfterKill((victim+2)%len(f.managers), victimID, mmGrace)
	byStatus, succeeded := f.jobOutcomes("start Vm ")
	recs := f.vmRecords("vm")
	byName := map[string]vmRecord{}
	running := 0
	for _, rec := range recs {
		byName[rec.name] = rec
		if rec.status == "Running" {
			running++
		}
	}
	for _, name := range succeeded {
		if byName[name].status != "Running" {
			t.Errorf("start Vm %s ended Success, but the VM is recorded %s", name, byName[name].status)
		}
	}
	// The jobs in flight at the kill were ended by the leader, each saying
	// that its manager died.
	orphaned := f.count(`SELECT count(*) FROM jobs WHERE id = ANY($1) AND (status = 'Failure' AND error LIKE 'manager ' || $2 || ' %while the job ran%'
		OR status = 'Success' AND result LIKE 'finished by the leader: manager ' || $2 || ' %while the job ran%')`,
		inFlight, victimID)
	if orphaned != len(inFlight) {
		t.Errorf("%d jobs were Running at the kill, %d of them ended (Failure, or Success finished by the leader) saying that manager %s died:\n%s",
			len(inFlight), orphaned, victimID, f.jobErrors(inFlight, 5))
	}
	// When the leader ended the last of them, by the database's clock (the
	// same machine's).
	if len(inFlight) > 0 {
		last := f.count(`SELECT COALESCE(max(ended_at), 0) FROM jobs WHERE id = ANY($1)`, inFlight)
		ended = time.UnixMilli(int64(last))
	}
	t.Logf("after kill -9: every job ended %s after the kill, the records agreed with the agents by the look %s after (member timeout %s); start jobs: %d Success, %d Failure (%d ended by the leader), %d Aborted; VMs: %d Running, %d Stopped, none on two servers",
		ended.Sub(killed).Round(time.Millisecond), agreed.Sub(killed).Round(time.Millisecond), mmTimeout,
		byStatus["Success"], byStatus["Failure"], orphaned, byStatus["Aborted"], running, len(recs)-running)

	tallies := <-sessionsDone
	for i, ta := range tallies {
		t.Logf("sessions on manager %d: %d succeeded, %d lost their connection, %d failed otherwise", i, ta.ok, ta.died, ta.bad)
		if ta.bad > 0 || (i != victim && ta.died > 0) {
			t.Errorf("manager %d (killed: %v): a session did not end cleanly: %s", i, i == victim, ta.firstBad)
		}
	}
	t.Logf("whole test: %s", time.Since(began).Round(time.Millisecond))
}

// haSettled says whether every VM named prefix* is recorded Running on a
// live agent's server and live there and nowhere else, failing the test at
// once if one is ever live on two servers; what lists what is not yet so.
func (f *multiFleet) haSettled(prefix string) (ok bool, what []string) {
	f.t.Helper()
	twice, others := f.disagreements(prefix)
	if len(twice) > 0 {
		f.t.Fatalf("a VM runs on two servers: %s", strings.Join(twice, "; "))
	}
	for _, r := range f.vmRecords(prefix) {
		if i, known := f.agentOf[r.server]; r.status != "Running" || !known || f.dead[i] {
			what = append(what, fmt.Sprintf("%s recorded %s on %s", r.name, r.status, f.serverName(r.server)))
		}
	}
	what = append(what, others...)
	slices.Sort(what)
	return len(what) == 0, what
}

// Three managers on one PostgreSQL database and a pool with high
// availability: the server running every HA VM dies (its agent killed,
// kill -9) while the leader runs a piped batch of 200 `start Vm` and 60
// SSH sessions are spread over the managers; once the failover has started
// (the leader's first `restart Vm` job is recorded) the leader is killed
// too (kill -9), with restarts and starts in flight (a start takes a
// second on the simulated hosts). Another manager must take the lease
// within the lease plus 10 s, the dead leader's jobs must end within the
// member timeout plus 10 s, and then, by every agent's own domain list,
// checked at every look (never a VM on two servers): every HA VM runs
// exactly once on a live server where it is recorded, and each VM of the
// batch runs where it is recorded or is recorded Stopped and runs nowhere.
func TestMultiManagerLeaderKilledDuringFailover(t *testing.T) {
	const (
		nHA       = 12
		nVMs      = 200
		nSessions = 60
	)
	began := time.Now()
	// The HA VMs start while ovs1 is the pool's only server: it dies.
	var early, setup strings.Builder
	fmt.Fprintf(&early, "edit ServerPool name=mpool highAvailability=Yes haRepository=mrepo haRenewInterval=%s haFenceTimeout=%s haRestartMargin=%s\n",
		mmHARenew, mmHAFence, mmHAMargin)
	for v := 1; v <= nHA; v++ {
		fmt.Fprintf(&early, "create Vm name=ha%02d repository=mrepo memory=256 highAvailability=Yes\nstart Vm name=ha%02d\n", v, v)
	}
	setup.WriteString("set commandMode=Asynchronous\n")
	for v := 0; v < nVMs; v++ {
		fmt.Fprintf(&setup, "create Vm name=vm%04d repository=mrepo memory=64\n", v)
	}
	f := startMultiFleet(t, 3, 4, early.String(), setup.String())
	f.waitJobsEnded("create the VMs", 2*time.Minute)
	if ok, what := f.haSettled("ha"); !ok {
		t.Fatalf("the HA VMs do not run where recorded after the setup: %s", firstFew(what, 5))
	}
	counts := make([]int, len(f.agents))
	for _, on := range f.live() {
		counts[on[0]]++
	}
	const dying = 0
	leader := f.waitLeader(time.Minute)
	t.Logf("fleet ready in %s; HA VMs per server %v; manager %d leads; %s dies",
		time.Since(began).Round(time.Millisecond), counts, leader, f.names[dying])

	// A start takes a second on the servers left, so that the leader dies
	// with restarts and starts on their way.
	f.dead[dying] = true
	f.simSet(map[string]any{"latency_ms": map[string]any{agentapi.MethodStartVM: 1000}})
	var batch strings.Builder
	batch.WriteString("set commandMode=Asynchronous\n")
	for v := 0; v < nVMs; v++ {
		fmt.Fprintf(&batch, "start Vm name=vm%04d\n", v)
	}
	batchDone := make(chan int, 1)
	go func() {
		_, code := f.sshRun(leader, batch.String())
		batchDone <- code
	}()
	gate := make(chan struct{})
	sessionsDone := make(chan []sessionTally, 1)
	go func() { sessionsDone <- f.runSessions(nSessions, 6, nSessions/2, gate, nVMs) }()
	serverDied := time.Now()
	f.agents[dying].cmd.Process.Kill()
	<-f.agents[dying].waited

	bound := time.Now().Add(haBound)
	for f.count(`SELECT count(*) FROM jobs WHERE summary LIKE 'restart Vm %'`) == 0 {
		if time.Now().After(bound) {
			close(gate)
			t.Fatalf("no HA restart began within %s of the server's death\n%s", haBound, f.logs(30))
		}
		time.Sleep(20 * time.Millisecond)
	}
	batchLeader := leader
	leader = f.leader()
	if leader < 0 {
		close(gate)
		t.Fatalf("no manager leads while the failover runs\n%s", f.logs(30))
	}
	leaderID := f.memberID(leader)
	close(gate)
	killed := f.kill9(leader)
	inFlight := f.jobIDs(`SELECT id FROM jobs WHERE manager_id = $1 AND status = 'Running'`, leaderID)
	restarts := f.count(`SELECT count(*) FROM jobs WHERE id = ANY($1) AND summary LIKE 'restart Vm %'`, inFlight)
	starts := f.count(`SELECT count(*) FROM jobs WHERE manager_id = $1 AND summary LIKE 'start Vm %'`, leaderID)
	t.Logf("the failover began %s after the server's death; leader %d (%s) killed with %d of its jobs Running (%d HA restarts), %d starts of the batch recorded (the batch runs on manager %d)",
		killed.Sub(serverDied).Round(time.Millisecond), leader, leaderID, len(inFlight), restarts, starts, batchLeader)

	// A new leader, within the lease plus 10 s of the kill.
	next := f.waitLeader(mmLease + mmGrace)
	tookOver := time.Since(killed)
	if next == leader {
		t.Fatalf("the killed manager %d still leads", leader)
	}
	// Every job ended within the member timeout plus 10 s; those in flight
	// at the kill by the new leader, saying their manager died.
	f.waitJobsEnded("after the leader's death", time.Until(killed.Add(mmTimeout+mmGrace)))
	jobsEnded := time.Since(killed)
	if len(inFlight) > 0 {
		last := f.count(`SELECT COALESCE(max(ended_at), 0) FROM jobs WHERE id = ANY($1)`, inFlight)
		jobsEnded = time.UnixMilli(int64(last)).Sub(killed)
	}
	// What an operator sees: the killed manager is dead, one leads.
	f.checkMembersAfterKill(next, leaderID, mmGrace)
	orphaned := f.count(`SELECT count(*) FROM jobs WHERE id = ANY($1) AND (status = 'Failure' AND error LIKE 'manager ' || $2 || ' %while the job ran%'
		OR status = 'Success' AND result LIKE 'finished by the leader: manager ' || $2 || ' %while the job ran%')`,
		inFlight, leaderID)
	if orphaned != len(inFlight) {
		t.Errorf("%d jobs were Running at the leader's kill, %d of them ended (Failure, or Success finished by the leader) saying that manager %s died:\n%s",
			len(inFlight), orphaned, leaderID, f.jobErrors(inFlight, 5))
	}
	// Every HA VM runs exactly once, where recorded, every VM of the batch
	// runs where recorded or nowhere, and no job runs.
	deadline := killed.Add(haBound)
	for {
		ok, what := f.haSettled("ha")
		twice, others := f.disagreements("vm")
		if len(twice) > 0 {
			t.Fatalf("a VM runs on two servers: %s", strings.Join(twice, "; "))
		}
		running := f.runningJobs()
		if ok && len(others) == 0 && len(running) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s after the leader's death, the VMs do not run as recorded: %s\njobs Running: %s\n%s",
				haBound, firstFew(append(what, others...), 6), firstFew(running, 5), f.logs(30))
		}
		time.Sleep(100 * time.Millisecond)
	}
	settled := time.Since(killed)
	restartOutcomes, _ := f.jobOutcomes("restart Vm ")
	startOutcomes, succeeded := f.jobOutcomes("start Vm ")
	recs := f.vmRecords("vm")
	for _, name := range succeeded {
		for _, r := range recs {
			if r.name == name && r.status != "Running" {
				t.Errorf("start Vm %s ended Success, but the VM is recorded %s", name, r.status)
			}
		}
	}
	t.Logf("after kill -9 of the leader: manager %d leads %s after (lease %s), every job ended %s after (member timeout %s), every VM ran as recorded by the look %s after; HA restart jobs: %d Success, %d Failure; start jobs: %d Success, %d Failure; none on two servers at any look",
		next, tookOver.Round(time.Millisecond), mmLease, jobsEnded.Round(time.Millisecond), mmTimeout, settled.Round(time.Millisecond),
		restartOutcomes["Success"], restartOutcomes["Failure"], startOutcomes["Success"], startOutcomes["Failure"])
	t.Logf("the batch's session ended with exit %d", <-batchDone)
	for i, ta := range <-sessionsDone {
		t.Logf("sessions on manager %d: %d succeeded, %d lost their connection, %d failed otherwise", i, ta.ok, ta.died, ta.bad)
		if ta.bad > 0 || (i != leader && ta.died > 0) {
			t.Errorf("manager %d (killed: %v): a session did not end cleanly: %s", i, i == leader, ta.firstBad)
		}
	}
	t.Logf("whole test: %s", time.Since(began).Round(time.Millisecond))
}

// memberView is a manager as list Manager (Json version 2) shows it.
type memberView struct {
	ID     string `json:"id"`
	PID    int    `json:"pid"`
	Alive  bool   `json:"alive"`
	Leader bool   `json:"leader"`
}

// listManagers asks manager i, over SSH, for list Manager.
func (f *multiFleet) listManagers(i int) []memberView {
	f.t.Helper()
	out, code := f.sshRun(i, "set outputMode=Json\nset jsonVersion=2\nlist Manager\n")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 {
		f.t.Fatalf("list Manager on manager %d: exit %d\n%s", i, code, out)
	}
	var doc struct {
		Status string       `json:"status"`
		Data   []memberView `json:"data"`
	}
	if err := json.Unmarshal([]byte(lines[2]), &doc); err != nil || doc.Status != "Success" {
		f.t.Fatalf("list Manager on manager %d: %v\n%s", i, err, lines[2])
	}
	return doc.Data
}

// checkMembersAfterKill waits, up to bound, until list Manager on manager
// asked shows the killed member dead and the one leading (by the lease)
// as the only leader, alive.
func (f *multiFleet) checkMembersAfterKill(asked int, killedID string, bound time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(bound)
	for {
		leader := f.leader()
		var leaderID string
		if leader >= 0 {
			leaderID = f.memberID(leader)
		}
		views := f.listManagers(asked)
		var leaders []string
		dead := false
		for _, v := range views {
			if v.Leader {
				leaders = append(leaders, v.ID)
			}
			if v.ID == killedID && !v.Alive {
				dead = true
			}
		}
		if dead && len(leaders) == 1 && leaders[0] == leaderID {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("list Manager on manager %d does not show %s dead and %s the only leader within %s: %+v", asked, killedID, leaderID, bound, views)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
