//go:build unix

package agent_test

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"xenmanager/backend/agentapi"
)

// agentBinary builds cmd/xenagent into the test's temporary directory;
// the second build of a run comes from Go's build cache.
func agentBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("go", "build", "-o", dir, "xenmanager/cmd/xenagent").CombinedOutput()
	if err != nil {
		t.Fatalf("go build xenagent: %v\n%s", err, out)
	}
	return filepath.Join(dir, "xenagent")
}

var (
	listenRx = regexp.MustCompile(`^xenagent listening on 127\.0\.0\.1:(\d+)$`)
	pinRx    = regexp.MustCompile(`^certificate SPKI SHA-256: ([0-9a-f]{64})$`)
)

// agentProcess is xenagent running as a process of its own, on the
// simulated host, with its data directory and password file.
type agentProcess struct {
	bin, data, pwFile, name string
	cmd                     *exec.Cmd
	node                    *haNode
}

// startProcess starts xenagent with data as its data directory and waits
// until it listens; the test's end kills it.
func startProcess(t *testing.T, bin, data, name string) *agentProcess {
	t.Helper()
	p := &agentProcess{bin: bin, data: data, pwFile: data + ".pw", name: name}
	must(t, os.MkdirAll(data, 0o700))
	must(t, os.WriteFile(p.pwFile, []byte("pw-"+name+"\n"), 0o600))
	p.start(t)
	return p
}

func (p *agentProcess) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(p.bin, "--listen", "127.0.0.1:0", "--data", p.data, "--password-file", p.pwFile,
		"--hostname", p.name, "--sim-control", "--cpus", "4", "--memory-mib", "8192")
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	must(t, cmd.Start())
	p.cmd = cmd
	var once sync.Once
	kill := func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
	t.Cleanup(kill)
	sc := bufio.NewScanner(stdout)
	port, pin := 0, ""
	for (port == 0 || pin == "") && sc.Scan() {
		if m := listenRx.FindStringSubmatch(sc.Text()); m != nil {
			port, _ = strconv.Atoi(m[1])
		}
		if m := pinRx.FindStringSubmatch(sc.Text()); m != nil {
			pin = m[1]
		}
	}
	if port == 0 || pin == "" {
		kill()
		t.Fatalf("xenagent %s did not start:\n%s", p.name, stderr.String())
	}
	go io.Copy(io.Discard, stdout)
	p.node = &haNode{name: p.name, c: clientFor(t, port, "pw-"+p.name, pin)}
}

func (p *agentProcess) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	must(t, p.cmd.Process.Signal(sig))
}

// kill ends the process with SIGKILL: nothing of it runs on, as when a
// server dies.
func (p *agentProcess) kill(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGKILL)
	_ = p.cmd.Wait()
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// A frozen agent (SIGSTOP) stops renewing; its peer starts the VM once
// the frozen server's lease lapsed; resumed (SIGCONT), the agent fences
// before it answers anything: its very first list_vms shows no copy of
// the VM.
func TestHAFrozenAgentFencesBeforeAnswering(t *testing.T) {
	bin := agentBinary(t)
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	a := startProcess(t, bin, filepath.Join(dir, "a"), "ovs-a")
	b := startNode(t, "ovs-b")
	joinHAPool(t, repo, haSteady, a.node, b)
	ctx := t.Context()
	createVM(t, b, "vm1", true)
	must(t, a.node.c.StartVM(ctx, haRepo, "vm1"))

	a.signal(t, syscall.SIGSTOP)
	frozen := time.Now()
	err := b.c.StartVM(ctx, haRepo, "vm1")
	wantFault(t, err, agentapi.FaultInvalidState, "Vm vm1 holds a live lease of server ovs-a")
	eventually(t, "ovs-b to start vm1", func() bool { return b.c.StartVM(ctx, haRepo, "vm1") == nil })
	t.Logf("ovs-b started vm1 %v after ovs-a froze (fence timeout %d ms)", time.Since(frozen).Round(time.Millisecond), haSteady.FenceTimeoutMS)

	a.signal(t, syscall.SIGCONT)
	if doms := domainsOf(t, a.node); len(doms) != 0 {
		t.Fatalf("the resumed agent's first list_vms shows %v", doms)
	}
	st, err := a.node.c.HAStatus(ctx)
	must(t, err)
	if st.FencedCount != 1 {
		t.Errorf("ha_status of the resumed agent: %+v", st)
	}
	if !hasEvent(t, a.node, agentapi.EventHAFenced, "stopped 1 domains") {
		t.Error("no ha_fenced event on the resumed agent")
	}
	eventually(t, "ovs-a to renew its lease again", func() bool {
		st, err := a.node.c.HAStatus(ctx)
		must(t, err)
		return !st.Fenced
	})
	// The VM stays with ovs-b, its lease too.
	if holder, _ := vmLeaseFile(t, repo, "vm1"); holder != "ovs-b" {
		t.Errorf("vm1's lease names %q", holder)
	}
	if doms := domainsOf(t, b); len(doms) != 1 {
		t.Errorf("ovs-b runs %v", doms)
	}
	err = a.node.c.StartVM(ctx, haRepo, "vm1")
	wantFault(t, err, agentapi.FaultInvalidState, "Vm vm1 holds a live lease of server ovs-b")
}

// An agent killed while its HA configuration is in its state file, and
// started again after its lease lapsed, fences before it serves and goes
// on leasing without a new ha_configure; the leases of the VMs it ran
// (which died with it) are released.
func TestHAKilledAgentResumesLeasing(t *testing.T) {
	bin := agentBinary(t)
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	a := startProcess(t, bin, filepath.Join(dir, "a"), "ovs-a")
	b := startNode(t, "ovs-b")
	joinHAPool(t, repo, haFast, a.node, b)
	ctx := t.Context()
	createVM(t, b, "vm1", true)
	must(t, a.node.c.StartVM(ctx, haRepo, "vm1"))

	a.kill(t)
	var before agentapi.ServerLease
	eventually(t, "ovs-a's lease to lapse", func() bool {
		l, err := b.c.HAReadLeases(ctx, []string{"ovs-a"})
		must(t, err)
		before = l[0]
		return l[0].AgeMS >= haFast.FenceTimeoutMS
	})
	a.start(t)
	st, err := a.node.c.HAStatus(ctx)
	must(t, err)
	if !st.Enabled || st.ServerID != "ovs-a" || st.FencedCount != 1 || st.FenceTimeoutMS != haFast.FenceTimeoutMS {
		t.Fatalf("ha_status after the restart: %+v", st)
	}
	if doms := domainsOf(t, a.node); len(doms) != 0 {
		t.Errorf("the restarted agent runs %v", doms)
	}
	eventually(t, "ovs-a to renew its lease again", func() bool {
		l, err := b.c.HAReadLeases(ctx, []string{"ovs-a"})
		must(t, err)
		return l[0].Counter > before.Counter+2 && l[0].AgeMS < haFast.FenceTimeoutMS
	})
	eventually(t, "vm1's lease to be released", func() bool {
		holder, _ := vmLeaseFile(t, repo, "vm1")
		return holder == ""
	})
	must(t, b.c.StartVM(ctx, haRepo, "vm1"))
}
