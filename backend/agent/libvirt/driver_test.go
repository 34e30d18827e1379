package libvirt

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"xenmanager/backend/agent/host"
	"xenmanager/backend/agent/internal/testkit"
	"xenmanager/backend/agent/libvirt/libvirthost"
	"xenmanager/backend/agentapi"
)

var (
	waitFor   = testkit.WaitFor
	wantFault = testkit.WantFault
	mustOK    = testkit.MustOK
)

// must is testkit.Must for this package's tests.
func must[T any](v T, err error) T { return testkit.Must(v, err) }

// requireLibvirtd skips the test with one loud line when no libvirt
// daemon answers on its socket, and fails it in CI, where .ci/run starts
// one.
func requireLibvirtd(t *testing.T) {
	t.Helper()
	libvirthost.Require(t, libvirthost.SystemAvailable())
}

// testNode is a node of libvirt's test driver: 8 CPUs, 16 GiB, and one
// domain this agent did not make.
const testNode = `<node>
  <cpu><mhz>2400</mhz><model>test-cpu</model><active>8</active><nodes>1</nodes><sockets>1</sockets><cores>8</cores><threads>1</threads></cpu>
  <memory>16777216</memory>
  <domain type='test'>
    <name>foreign</name>
    <memory unit='MiB'>512</memory>
    <vcpu>1</vcpu>
    <os><type>hvm</type></os>
  </domain>
</node>
`

// testHost is a host whose driver is libvirt's test driver through the
// system's libvirtd, on a node of its own (the test driver keeps a private
// node per connection made with a file), with repository r1.
type testHost struct {
	*host.Host
	drv  *Driver
	repo string
}

func newTestHost(t *testing.T) testHost {
	t.Helper()
	requireLibvirtd(t)
	dir := t.TempDir()
	node := filepath.Join(dir, "node.xml")
	mustOK(t, os.WriteFile(node, []byte(testNode), 0o644))
	h, err := host.New(host.Config{DataDir: filepath.Join(dir, "data"), Hostname: "lv1", Driver: NewDriver(Config{URI: "test://" + node})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	repo := filepath.Join(dir, "repo")
	mustOK(t, h.CreateRepository(repo, "/OVS/Repositories/r1", "r1", "repo one"))
	return testHost{Host: h, drv: h.Driver().(*Driver), repo: repo}
}

// createVM creates VM id in r1 with memory MiB (maxmem twice that) and one
// vCPU (two at most).
func (h testHost) createVM(t *testing.T, id string, memory int64) {
	t.Helper()
	mustOK(t, h.CreateVM("r1", id, agentapi.VMParams{"name": id, "uuid": uuidOf(id), "memory": memory, "maxmem": 2 * memory,
		"vcpus": int64(1), "maxvcpus": int64(2)}))
}

// uuidOf makes a vm.cfg uuid of a short id.
func uuidOf(id string) string {
	h := hex.EncodeToString([]byte(id))
	return strings.Repeat("0", 32-len(h)) + h
}

func (h testHost) state(t *testing.T, id string) string {
	t.Helper()
	d, err := h.ListVM("r1", id)
	if err != nil {
		return "none"
	}
	return d.State
}

func TestLifecycleOnTheTestDriver(t *testing.T) {
	h := newTestHost(t)
	h.createVM(t, "a1", 128)
	steps := []struct {
		name  string
		do    func() error
		fault agentapi.FaultCode // 0: the step succeeds
		state string             // the domain's state after it
	}{
		{"stop a VM that does not run", func() error { return h.StopVM("r1", "a1", false) }, agentapi.FaultNotFound, "none"},
		{"pause a VM that does not run", func() error { return h.PauseVM("r1", "a1") }, agentapi.FaultNotFound, "none"},
		{"start", func() error { return h.StartVM("r1", "a1") }, 0, agentapi.StateRunning},
		{"start again", func() error { return h.StartVM("r1", "a1") }, agentapi.FaultInvalidState, agentapi.StateRunning},
		{"unpause a running VM", func() error { return h.UnpauseVM("r1", "a1") }, agentapi.FaultInvalidState, agentapi.StateRunning},
		{"pause", func() error { return h.PauseVM("r1", "a1") }, 0, agentapi.StatePaused},
		{"pause again", func() error { return h.PauseVM("r1", "a1") }, agentapi.FaultInvalidState, agentapi.StatePaused},
		{"reboot a paused VM", func() error { return h.RebootVM("r1", "a1", 5) }, agentapi.FaultInvalidState, agentapi.StatePaused},
		{"unpause", func() error { return h.UnpauseVM("r1", "a1") }, 0, agentapi.StateRunning},
		{"reboot", func() error { return h.RebootVM("r1", "a1", 5) }, 0, agentapi.StateRunning},
		{"delete a running VM", func() error { return h.DeleteVM("r1", "a1") }, agentapi.FaultInvalidState, agentapi.StateRunning},
		{"stop cleanly", func() error { return h.StopVM("r1", "a1", false) }, 0, "none"},
		{"start after a stop", func() error { return h.StartVM("r1", "a1") }, 0, agentapi.StateRunning},
		{"kill", func() error { return h.StopVM("r1", "a1", true) }, 0, "none"},
		{"kill again", func() error { return h.StopVM("r1", "a1", true) }, agentapi.FaultNotFound, "none"},
	}
	for _, s := range steps {
		err := s.do()
		if s.fault == 0 {
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
		} else {
			wantFault(t, err, s.fault, "")
		}
		if got := h.state(t, "a1"); got != s.state {
			t.Fatalf("after %s: state %s, want %s", s.name, got, s.state)
		}
	}
	if ev := h.Events(0); len(ev.Events) != 0 {
		t.Errorf("the agent's own stops raised events: %+v", ev.Events)
	}
}

func TestListingShowsOnlyTheAgentsDomains(t *testing.T) {
	h := newTestHost(t)
	h.createVM(t, "b1", 256)
	mustOK(t, h.StartVM("r1", "b1"))
	doms := must(h.ListVMs())
	if len(doms) != 1 {
		t.Fatalf("list_vms = %+v, want only b1 (the node's own domain 'foreign' is not the agent's)", doms)
	}
	d := doms[0]
	if d.UUID != uuidOf("b1") || d.Name != "b1" || d.RepoID != "r1" || d.MemoryMiB != 256 || d.VCPUs != 1 || d.State != agentapi.StateRunning {
		t.Errorf("list_vms = %+v", d)
	}
	st := must(h.GetStatistics())
	if len(st.VMs) != 1 || st.VMs[0].UUID != uuidOf("b1") || st.VMs[0].MemoryMiB != 256 {
		t.Errorf("get_statistics = %+v", st)
	}
	hw := must(h.DiscoverHardware())
	if hw.CoresPerSocket*hw.CPUSockets*hw.ThreadsPerCore != 8 || hw.TotalMemoryMiB != 16384 || hw.CPUModel != "test-cpu" {
		t.Errorf("discover_hardware = %+v", hw)
	}
	// The foreign domain (512 MiB) and b1 (256 MiB) hold memory.
	if free := h.FreeMemoryMiB(); free != 16384-512-256 {
		t.Errorf("free memory %d MiB, want %d", free, 16384-512-256)
	}
	// The foreign domain is never touched: a VM named like it is another
	// repository's VM, and this driver does not stop it.
	wantFault(t, h.StopVM("r1", "foreign", true), agentapi.FaultNotFound, "")
	if kind, version := h.Driver().Hypervisor(); kind != "test" || version == "" {
		t.Errorf("Hypervisor() = %q, %q", kind, version)
	}
}

func TestStartRefusesWhatDoesNotFit(t *testing.T) {
	h := newTestHost(t)
	h.createVM(t, "c1", 20000)
	wantFault(t, h.StartVM("r1", "c1"), agentapi.FaultInsufficientResources, "MiB free")
	mustOK(t, h.CreateVM("r1", "c2", agentapi.VMParams{"name": "c2", "memory": int64(64), "vcpus": int64(9)}))
	wantFault(t, h.StartVM("r1", "c2"), agentapi.FaultInsufficientResources, "8 CPUs")
	mustOK(t, h.CreateVM("r1", "c3", agentapi.VMParams{"name": "c3", "memory": int64(64), "vcpus": int64(1), "kernel": "/OVS/Repositories/r1/none"}))
	wantFault(t, h.StartVM("r1", "c3"), agentapi.FaultNotFound, "kernel")
	mustOK(t, h.CreateVM("r1", "c4", agentapi.VMParams{"name": "c4", "memory": int64(64), "vcpus": int64(1), "kernel": "/etc/passwd"}))
	wantFault(t, h.StartVM("r1", "c4"), agentapi.FaultInvalidArgument, "not inside a repository")
	if doms := must(h.ListVMs()); len(doms) != 0 {
		t.Errorf("refused starts left domains: %+v", doms)
	}
}

func TestLiveChangesStayWithinTheLimits(t *testing.T) {
	h := newTestHost(t)
	h.createVM(t, "d1", 128) // maxmem 256, maxvcpus 2
	mustOK(t, h.StartVM("r1", "d1"))
	mustOK(t, h.ConfigureVM("r1", "d1", agentapi.VMParams{"memory": int64(200), "vcpus": int64(2)}))
	d, err := h.ListVM("r1", "d1")
	mustOK(t, err)
	if d.MemoryMiB != 200 || d.VCPUs != 2 {
		t.Errorf("after a live change: %d MiB, %d vCPUs; want 200, 2", d.MemoryMiB, d.VCPUs)
	}
	wantFault(t, h.ConfigureVM("r1", "d1", agentapi.VMParams{"memory": int64(300)}), agentapi.FaultInvalidState, "maxmem 256")
	wantFault(t, h.ConfigureVM("r1", "d1", agentapi.VMParams{"vcpus": int64(3)}), agentapi.FaultInvalidState, "")
	cfg, err := h.GetVMConfig("r1", "d1")
	mustOK(t, err)
	if m, _ := cfg.Int("memory"); m != 200 {
		t.Errorf("vm.cfg memory %d after a refused change, want 200", m)
	}
	wantFault(t, h.ConfigureVM("r1", "d1", agentapi.VMParams{"uuid": uuidOf("other")}), agentapi.FaultInvalidState, "uuid")
}

func TestSaveAndRestore(t *testing.T) {
	h := newTestHost(t)
	h.createVM(t, "e1", 128)
	wantFault(t, h.RestoreVM("r1", "e1", false), agentapi.FaultNotFound, "no saved state")
	mustOK(t, h.StartVM("r1", "e1"))
	mustOK(t, h.SaveVM("r1", "e1", false))
	if got := h.state(t, "e1"); got != "none" {
		t.Fatalf("after save: %s, want no domain", got)
	}
	saved := filepath.Join(h.repo, "VirtualMachines", "e1", saveFile)
	if _, err := os.Stat(saved); err != nil {
		t.Fatalf("the save file: %v", err)
	}
	if p, err := h.OperationProgress(agentapi.ProgressSave + "e1"); err != nil || p.State != agentapi.ProgressDone {
		t.Errorf("save progress %+v, %v", p, err)
	}
	mustOK(t, h.RestoreVM("r1", "e1", true))
	if got := h.state(t, "e1"); got != agentapi.StatePaused {
		t.Errorf("restored paused: %s", got)
	}
	if _, err := os.Stat(saved); !os.IsNotExist(err) {
		t.Errorf("the save file is still there after the restore: %v", err)
	}
	wantFault(t, h.RestoreVM("r1", "e1", false), agentapi.FaultInvalidState, "suspended or stopped")
	mustOK(t, h.SaveVM("r1", "e1", true)) // a checkpoint: it goes on running
	if got := h.state(t, "e1"); got != agentapi.StateRunning {
		t.Errorf("after a checkpoint: %s, want running", got)
	}
	// The checkpoint's stop event may come after its restore made a new
	// run: wait until every stop the driver caused has been seen.
	waitFor(t, "the events of the saves", func() bool {
		h.drv.mu.Lock()
		defer h.drv.mu.Unlock()
		return len(h.drv.ends) == 0
	})
	if ev := h.Events(0); len(ev.Events) != 0 {
		t.Errorf("the agent's own saves raised events: %+v", ev.Events)
	}
}

func TestADomainDestroyedBehindTheAgentsBackIsReported(t *testing.T) {
	h := newTestHost(t)
	h.createVM(t, "f1", 128)
	mustOK(t, h.StartVM("r1", "f1"))
	l, err := h.drv.conn.current()
	mustOK(t, err)
	dom, err := l.DomainLookupByName("f1")
	mustOK(t, err)
	mustOK(t, l.DomainDestroy(dom)) // not through the driver: as virsh destroy would
	var ev []agentapi.Event
	waitFor(t, "the event of the destroyed domain", func() bool {
		ev = h.Events(0).Events
		return len(ev) > 0
	})
	e := ev[0]
	if e.Kind != agentapi.EventVMShutdown || e.VMUUID != uuidOf("f1") || e.RepoID != "r1" || !strings.Contains(e.Detail, "outside the manager") {
		t.Errorf("event %+v", e)
	}
}

func TestMigrationAndConsoleFaultsOnTheTestDriver(t *testing.T) {
	h := newTestHost(t)
	h.createVM(t, "g1", 128)
	_, err := h.SetupMigrationTarget("r1", "g1", "127.0.0.1")
	wantFault(t, err, agentapi.FaultInvalidState, "test driver")
	_, err = h.MigrateVM(t.Context(), "r1", "g1", "127.0.0.1:4000/token/pin", true, false)
	wantFault(t, err, agentapi.FaultInvalidArgument, "simulated host")
	_, err = h.MigrateVM(t.Context(), "r1", "g1", "libvirt:xen;xen+tls://x/system;", true, false)
	wantFault(t, err, agentapi.FaultInvalidArgument, "one hypervisor")
	_, err = h.OpenConsole("r1", "g1")
	wantFault(t, err, agentapi.FaultNotFound, "only while it runs")
}

func TestAnUnreachableDaemonIsAClearError(t *testing.T) {
	dir := t.TempDir()
	_, err := host.New(host.Config{DataDir: dir, Hostname: "lv1",
		Driver: NewDriver(Config{URI: "test:///default", Socket: filepath.Join(dir, "no-such-socket")})})
	if err == nil || !strings.Contains(err.Error(), "no-such-socket") {
		t.Fatalf("New with no daemon: %v", err)
	}
	_, err = host.New(host.Config{DataDir: dir, Hostname: "lv1", Driver: NewDriver(Config{URI: "lxc:///"})})
	if err == nil || !strings.Contains(err.Error(), "xen, qemu and test") {
		t.Fatalf("New with an lxc URI: %v", err)
	}
}

// A domain whose files are gone from the repository (an administrator
// removed the VM's directory) is still listed and can still be stopped;
// starting it again says what is missing.
func TestADomainWhoseFilesAreGone(t *testing.T) {
	h := newTestHost(t)
	h.createVM(t, "h1", 128)
	mustOK(t, h.StartVM("r1", "h1"))
	mustOK(t, os.RemoveAll(filepath.Join(h.repo, "VirtualMachines", "h1")))
	if doms := must(h.ListVMs()); len(doms) != 1 || doms[0].UUID != uuidOf("h1") {
		t.Fatalf("list_vms without the VM's files: %+v", doms)
	}
	mustOK(t, h.StopVM("r1", "h1", false))
	wantFault(t, h.StartVM("r1", "h1"), agentapi.FaultNotFound, "not found")
}
