package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	"xenmanager/backend/agent/libvirt/guestimage"
	"xenmanager/backend/agent/libvirt/libvirthost"
)

// The HA failover on real QEMU guests: two libvirt hosts (the machine's
// libvirtd as qemu1, a private one in its own namespaces as qemu2), both
// with libvirt's lock manager, an agent process on each, a manager process,
// and an HA VM with a disk in the pool's shared HA repository. QEMU runs on
// while its agent is frozen or killed, so these tests check what the
// simulated host cannot: that the second host never runs the VM while the
// first still does (the disk's lock refuses it, and the manager's failed
// attempts are events), and that the VM runs on the second host once the
// first agent has fenced.

// qemuHABound bounds each wait of these tests: a correctness deadline on a
// loaded 2-core machine booting guests under emulation, not a speed figure
// (those are logged).
const qemuHABound = 3 * time.Minute

// The lease timing and heartbeat of these tests: longer than the simulated
// fleet's (200ms, 1s, 500ms), because a renewal asks libvirt for the
// domains, and while QEMU starts (every restart attempt) libvirtd holds the
// domain for up to a second or more on a loaded 2-core machine: with a 1 s
// fence timeout a healthy server fenced itself.
const (
	qemuHARenew     = "500ms"
	qemuHAFence     = "3s"
	qemuHAMargin    = "1s"
	qemuHAHeartbeat = "500ms"
)

// qemuHAFleet is the manager, the two hosts with their agents, and the HA
// VM hag.
type qemuHAFleet struct {
	t      *testing.T
	m      *manager
	repo   string
	names  []string                      // qemu1, qemu2
	agents map[string]*agentProcess      // by server name
	hosts  map[string]*golibvirt.Libvirt // each host's own libvirtd
	lockd  map[string]int                // each host's virtlockd
	vmID   string
	disk   string // hag's disk in the repository
}

// startQEMUHAFleet starts the hosts, agents and manager, pools the servers
// with high availability on the shared repository (qemuHARenew and the
// rest), and starts hag, with a 1 MiB disk of the repository
// mapped, on qemu1 (the only server of the pool then; qemu2 joins after).
func startQEMUHAFleet(t *testing.T) *qemuHAFleet {
	t.Helper()
	img := needQEMU(t)
	libvirthost.Require(t, libvirthost.Available(), libvirthost.LockdAvailable())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	second, err := libvirthost.Start(ctx, libvirthost.Options{Hostname: "qemu2"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Close() })
	if second.LockManager != "lockd" {
		t.Fatalf("the private libvirtd's lock manager is %q, not lockd", second.LockManager)
	}
	dir := openDir(t)
	f := &qemuHAFleet{t: t, repo: filepath.Join(dir, "repo"), names: []string{"qemu1", "qemu2"},
		agents: map[string]*agentProcess{}, hosts: map[string]*golibvirt.Libvirt{}, lockd: map[string]int{}}
	sockets := map[string]string{"qemu1": libvirthost.SystemSocket, "qemu2": second.Socket}
	_, _, f.lockd["qemu2"] = second.PIDs()
	for _, name := range f.names {
		l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(sockets[name])))
		if err := l.ConnectToURI(golibvirt.QEMUSystem); err != nil {
			t.Fatalf("connect to %s's libvirtd: %v", name, err)
		}
		t.Cleanup(func() { l.Disconnect() })
		f.hosts[name] = l
		f.agents[name] = startAgentProcess(t, filepath.Join(dir, name), "pw-"+name, "--hostname", name,
			"--hypervisor", "libvirt", "--libvirt-uri", "qemu:///system", "--libvirt-socket", sockets[name])
	}
	data := filepath.Join(dir, "manager")
	f.m = startManagerWith(t, data, nil, "--listen", "127.0.0.1:0", "--data", data, "--heartbeat-interval", qemuHAHeartbeat)
	t.Cleanup(f.explainFailure)

	var b strings.Builder
	for _, name := range f.names {
		fmt.Fprintf(&b, "discoverServer ipAddress=127.0.0.1 port=%s password=pw-%s\n", f.agents[name].port, name)
	}
	fmt.Fprintf(&b, "create ServerPool name=qhapool\nadd Server name=qemu1 to ServerPool name=qhapool\n")
	fmt.Fprintf(&b, "create Repository name=qharepo fsLocation=%s on ServerPool name=qhapool\n", f.repo)
	fmt.Fprintf(&b, "edit ServerPool name=qhapool highAvailability=Yes haRepository=qharepo haRenewInterval=%s haFenceTimeout=%s haRestartMargin=%s\n",
		qemuHARenew, qemuHAFence, qemuHAMargin)
	if out, status := f.m.ssh(b.String(), false); status != 0 {
		t.Fatalf("setting up the HA pool: exit %d\n%s", status, out)
	}
	kernels := filepath.Join(f.repo, "Kernels")
	if err := os.MkdirAll(kernels, 0o755); err != nil {
		t.Fatal(err)
	}
	for src, name := range map[string]string{img.Kernel: "vmlinuz", img.Initrd: "initrd.gz"} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(kernels, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b.Reset()
	fmt.Fprintf(&b, "create Vm name=hag repository=qharepo memory=128 kernel=Kernels/vmlinuz ramdisk=Kernels/initrd.gz extra=\"%s\" highAvailability=Yes\n", guestimage.Cmdline)
	b.WriteString("create VirtualDisk name=hagdisk size=1 on Repository name=qharepo\nadd VirtualDisk name=hagdisk to Vm name=hag\nstart Vm name=hag\n")
	b.WriteString("add Server name=qemu2 to ServerPool name=qhapool\nshow Vm name=hag\n")
	out, status := f.m.ssh(b.String(), false)
	if status != 0 {
		t.Fatalf("creating and starting the HA VM: exit %d\n%s", status, out)
	}
	f.vmID = lastID(out)
	disks, _ := filepath.Glob(filepath.Join(f.repo, "VirtualDisks", "*.img"))
	if len(disks) != 1 || f.vmID == "" {
		t.Fatalf("the HA VM's id %q and disks %v\n%s", f.vmID, disks, out)
	}
	f.disk = disks[0]
	t.Cleanup(func() {
		// The domain is transient, and outlives the agents: the system
		// daemon's copy, if a failure left one (the private daemon's
		// guests end with it).
		if dom, err := f.hosts["qemu1"].DomainLookupByName(f.vmID); err == nil {
			f.hosts["qemu1"].DomainDestroy(dom)
		}
	})
	if where := f.runningOn(); len(where) != 1 || where[0] != "qemu1" {
		t.Fatalf("hag runs on %v; want qemu1", where)
	}
	// The disk's lock is held by qemu1's virtlockd: the lock manager is at
	// work, not only QEMU's own image locking.
	holders, err := libvirthost.LockdHolders(f.disk)
	if err != nil || len(holders) != 1 || holders[0] == f.lockd["qemu2"] {
		t.Fatalf("virtlockd processes holding hag's disk: %v (%v); want the system's (qemu2's is %d)", holders, err, f.lockd["qemu2"])
	}
	f.lockd["qemu1"] = holders[0]
	return f
}

// runningOn asks each host's libvirtd whether it runs hag (its CPUs
// running: a start being refused holds a domain that never ran): the
// hosts' own truth, not the agents' or the manager's.
func (f *qemuHAFleet) runningOn() []string {
	var where []string
	for _, name := range f.names {
		if _, ok := f.runningID(name); ok {
			where = append(where, name)
		}
	}
	return where
}

// runningID is the id of hag's domain on host name when it runs there.
func (f *qemuHAFleet) runningID(name string) (int32, bool) {
	l := f.hosts[name]
	dom, err := l.DomainLookupByName(f.vmID)
	if err != nil {
		return 0, false
	}
	state, _, err := l.DomainGetState(dom, 0)
	if err != nil || golibvirt.DomainState(state) != golibvirt.DomainRunning && golibvirt.DomainState(state) != golibvirt.DomainBlocked {
		return 0, false
	}
	return dom.ID, true
}

// ranTogether looks at both hosts twice, in the order qemu1, qemu2,
// qemu1, qemu2, and reports whether hag ran on both at one moment: the
// two daemons cannot be asked at the same instant (and a daemon busy
// starting a domain answers late), so a moment is proven by one host
// running the same domain (same id) at its two looks and the other
// running it at the look between them.
func (f *qemuHAFleet) ranTogether() bool {
	a1, aRuns1 := f.runningID(f.names[0])
	b1, bRuns1 := f.runningID(f.names[1])
	a2, aRuns2 := f.runningID(f.names[0])
	b2, bRuns2 := f.runningID(f.names[1])
	aThroughout := aRuns1 && aRuns2 && a1 == a2 // spans b's first look
	bThroughout := bRuns1 && bRuns2 && b1 == b2 // spans a's second look
	return aThroughout && bRuns1 || bThroughout && aRuns2
}

// twiceWatch polls both hosts' libvirtd until stopped and records every
// look that proves both ran hag at one moment (ranTogether).
type twiceWatch struct {
	mu    sync.Mutex // guards twice and looks
	twice []string
	looks int
	stop  chan struct{}
	done  chan struct{}
}

// watchTwice starts polling both hosts every 20 ms.
func (f *qemuHAFleet) watchTwice() *twiceWatch {
	w := &twiceWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			together := f.ranTogether()
			w.mu.Lock()
			w.looks++
			if together {
				w.twice = append(w.twice, time.Now().Format("15:04:05.000"))
			}
			w.mu.Unlock()
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	f.t.Cleanup(w.end)
	return w
}

// check fails the test when both hosts ran hag at some look so far.
func (w *twiceWatch) check(t *testing.T, when string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.twice) > 0 {
		t.Fatalf("%s: hag ran on both hosts at once, at %d looks (first at %s)", when, len(w.twice), w.twice[0])
	}
}

func (w *twiceWatch) end() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// waitRestartRefused waits for the manager's VmHaRestartFailed event of
// hag saying that its disks are locked by another server (the manager
// tried to restart it on qemu2 while qemu1's QEMU held the disk), and
// returns its text.
func (f *qemuHAFleet) waitRestartRefused() string {
	f.t.Helper()
	deadline := time.Now().Add(qemuHABound)
	for {
		for _, e := range f.events() {
			desc := fmt.Sprint(e["description"])
			if e["name"] == "VmHaRestartFailed" && strings.Contains(desc, "Vm hag") && strings.Contains(desc, "its disks are locked by another server") {
				return desc
			}
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("no VmHaRestartFailed event for hag within %s\nmanager log:\n%s", qemuHABound, tail(f.m.stderr.String(), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// events are the manager's events, as JSON objects.
func (f *qemuHAFleet) events() []map[string]any {
	out, _ := f.m.ssh("set outputMode=Json\ngetEvents\n", false)
	var all []map[string]any
	for _, line := range strings.Split(out, "\n") {
		var report struct {
			Data []map[string]any `json:"data"`
		}
		if json.Unmarshal([]byte(line), &report) == nil {
			all = append(all, report.Data...)
		}
	}
	return all
}

// waitRunsOnlyOn waits until hag runs on host name alone, by the hosts'
// own lists, and the manager records it Running there.
func (f *qemuHAFleet) waitRunsOnlyOn(name string) {
	f.t.Helper()
	deadline := time.Now().Add(qemuHABound)
	for {
		where := f.runningOn()
		if len(where) == 1 && where[0] == name {
			out, _ := f.m.ssh("show Vm name=hag\n", false)
			if field(out, "Status") == "Running" && strings.Contains(field(out, "Server"), name) {
				return
			}
		}
		if time.Now().After(deadline) {
			out, _ := f.m.ssh("show Vm name=hag\ngetEvents\n", false)
			f.t.Fatalf("hag does not run on %s alone within %s: the hosts run it on %v\n%s\nmanager log:\n%s",
				name, qemuHABound, where, out, tail(f.m.stderr.String(), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// refusals counts the starts of hag that qemu2's agent saw refused for the
// disk's lock (its log has libvirt's words, the manager's events only one
// per reason).
func (f *qemuHAFleet) refusals() int {
	return strings.Count(f.agents["qemu2"].log.String(), "a disk of the domain is locked by another holder")
}

// healthyNeverFenced fails the test when qemu2's agent, whose lease was
// never in doubt, fenced itself: a renewal it could not finish within the
// fence timeout (while libvirt was busy with a refused start).
func (f *qemuHAFleet) healthyNeverFenced() {
	f.t.Helper()
	if log := f.agents["qemu2"].log.String(); strings.Contains(log, "fencing") {
		f.t.Fatalf("qemu2's agent, whose lease was healthy, fenced itself:\n%s", tail(log, 30))
	}
}

// explainFailure logs the agents' logs when the test failed.
func (f *qemuHAFleet) explainFailure() {
	if !f.t.Failed() {
		return
	}
	for _, name := range f.names {
		f.t.Logf("agent %s's log (end):\n%s", name, tail(f.agents[name].log.String(), 40))
	}
	events, _ := f.m.ssh("getEvents\n", false)
	f.t.Logf("the manager's events:\n%s\nthe manager's log (end):\n%s", events, tail(f.m.stderr.String(), 40))
}

// A frozen agent (SIGSTOP) of the host running an HA VM: its QEMU runs on;
// once the lease has lapsed the manager tries to restart the VM on the
// other host, which libvirt refuses for the disk's lock (an event says so),
// and the VM never runs on both hosts. Resumed (SIGCONT), the agent fences
// (destroys its QEMU) and the manager's next attempt starts the VM on the
// other host.
func TestQEMUHAFrozenAgentNeverTwice(t *testing.T) {
	f := startQEMUHAFleet(t)
	w := f.watchTwice()
	frozen := f.agents["qemu1"]
	start := time.Now()
	if err := frozen.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	desc := f.waitRestartRefused()
	refused := time.Since(start)
	t.Logf("event: %s", desc)
	// QEMU runs on under the frozen agent, and holds the disk.
	if where := f.runningOn(); len(where) != 1 || where[0] != "qemu1" {
		t.Fatalf("while qemu1's agent is frozen hag runs on %v; want qemu1 (QEMU outlives a frozen agent)", where)
	}
	if holders, _ := libvirthost.LockdHolders(f.disk); len(holders) != 1 || holders[0] != f.lockd["qemu1"] {
		t.Fatalf("while qemu1's agent is frozen hag's disk is held by %v; want qemu1's virtlockd %d", holders, f.lockd["qemu1"])
	}
	// A few more heartbeats of attempts, all refused.
	for tries := f.refusals(); f.refusals() < tries+2; {
		if time.Since(start) > qemuHABound {
			t.Fatalf("the manager stopped trying to restart hag: %d refusals", f.refusals())
		}
		time.Sleep(100 * time.Millisecond)
	}
	w.check(t, "while qemu1's agent was frozen")
	resumed := time.Now()
	if err := frozen.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	f.waitRunsOnlyOn("qemu2")
	w.check(t, "after the resume")
	f.healthyNeverFenced()
	if holders, _ := libvirthost.LockdHolders(f.disk); len(holders) != 1 || holders[0] != f.lockd["qemu2"] {
		t.Fatalf("after the failover hag's disk is held by %v; want qemu2's virtlockd %d", holders, f.lockd["qemu2"])
	}
	if log := frozen.log.String(); !strings.Contains(log, "fencing") {
		t.Fatalf("qemu1's agent did not log its fence:\n%s", tail(log, 30))
	}
	w.end()
	t.Logf("frozen agent: first restart refused for the disk's lock %s after SIGSTOP; %d starts refused on qemu2, never on both hosts (%d looks); running on qemu2 %s after SIGCONT, %s after SIGSTOP (renew %s, fence %s, margin %s, heartbeat %s)",
		refused.Round(time.Millisecond), f.refusals(), w.looks, time.Since(resumed).Round(time.Millisecond), time.Since(start).Round(time.Millisecond),
		qemuHARenew, qemuHAFence, qemuHAMargin, qemuHAHeartbeat)
}

// A killed agent (kill -9) of the host running an HA VM cannot fence: its
// QEMU runs on, the restart elsewhere is refused for the disk's lock (an
// event says so) and the VM never runs on both hosts. Started again on its
// data (and port), the agent fences before it serves, and the VM then runs
// on the other host.
func TestQEMUHAKilledAgentNeverTwice(t *testing.T) {
	f := startQEMUHAFleet(t)
	w := f.watchTwice()
	killed := f.agents["qemu1"]
	start := time.Now()
	if err := killed.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-killed.waited
	desc := f.waitRestartRefused()
	refused := time.Since(start)
	t.Logf("event: %s", desc)
	if where := f.runningOn(); len(where) != 1 || where[0] != "qemu1" {
		t.Fatalf("after kill -9 of qemu1's agent hag runs on %v; want qemu1 (QEMU outlives its agent)", where)
	}
	for tries := f.refusals(); f.refusals() < tries+2; {
		if time.Since(start) > qemuHABound {
			t.Fatalf("the manager stopped trying to restart hag: %d refusals", f.refusals())
		}
		time.Sleep(100 * time.Millisecond)
	}
	w.check(t, "while qemu1's agent was dead")
	restarted := time.Now()
	again := startAgentProcess(t, killed.data, killed.password, append(killed.args, "--listen", "127.0.0.1:"+killed.port)...)
	f.agents["qemu1"] = again
	f.waitRunsOnlyOn("qemu2")
	w.check(t, "after the agent's restart")
	f.healthyNeverFenced()
	if log := again.log.String(); !strings.Contains(log, "fencing") {
		t.Fatalf("qemu1's restarted agent did not log a fence:\n%s", tail(log, 30))
	}
	w.end()
	t.Logf("killed agent: first restart refused for the disk's lock %s after kill -9; %d starts refused on qemu2, never on both hosts (%d looks); running on qemu2 %s after the agent's restart (renew %s, fence %s, margin %s, heartbeat %s)",
		refused.Round(time.Millisecond), f.refusals(), w.looks, time.Since(restarted).Round(time.Millisecond), qemuHARenew, qemuHAFence, qemuHAMargin, qemuHAHeartbeat)
}
