package libvirt

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"xenmanager/backend/agent/host"
	"xenmanager/backend/agent/libvirt/guestimage"
	"xenmanager/backend/agent/libvirt/libvirthost"
	"xenmanager/backend/agentapi"
)

// The tests whose names contain QEMU boot real guests (QEMU under TCG)
// through the driver behind the shared host code; make test runs them in a
// step of their own.

// needQEMUImage skips with one loud line when QEMU guests cannot run here
// (and fails in CI, which installs what they need), and returns the image.
func needQEMUImage(t *testing.T) guestimage.Image {
	t.Helper()
	return libvirthost.RequireGuestImage(t, libvirthost.SystemAvailable())
}

// needSecondHost starts a private libvirt host, or skips like
// needQEMUImage.
func needSecondHost(t *testing.T) *libvirthost.Daemon {
	t.Helper()
	libvirthost.Require(t, libvirthost.Available())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := libvirthost.Start(ctx, libvirthost.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// waitForGuest polls cond until it holds, failing after a bound generous
// enough for guests booting under emulation on a loaded 2-core machine
// (testkit.WaitFor's 30 s is for calls, not boots).
func waitForGuest(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 3 minutes waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond) // polling libvirt and the event log, bounded above
	}
}

// qemuDir is a directory QEMU (another user) can traverse, with the
// guest image in Kernels/.
func qemuDir(t *testing.T, img guestimage.Image) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "libvirt-driver-")
	mustOK(t, err)
	mustOK(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { os.RemoveAll(dir) })
	repo := filepath.Join(dir, "repo")
	mustOK(t, os.MkdirAll(filepath.Join(repo, "Kernels"), 0o755))
	for src, name := range map[string]string{img.Kernel: "vmlinuz", img.Initrd: "initrd.gz"} {
		data, err := os.ReadFile(src)
		mustOK(t, err)
		mustOK(t, os.WriteFile(filepath.Join(repo, "Kernels", name), data, 0o644))
	}
	return dir
}

// qemuHost is a host whose driver runs QEMU through the libvirtd at
// socket, with repository r1 in dir/repo.
func qemuHost(t *testing.T, dir, name string, cfg Config) testHost {
	t.Helper()
	cfg.URI = "qemu:///system"
	h, err := host.New(host.Config{DataDir: filepath.Join(dir, name), Hostname: name, Driver: NewDriver(cfg)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Guests a failed test left behind.
		if doms, err := h.ListVMs(); err == nil {
			for _, d := range doms {
				h.StopVM(d.RepoID, d.Name, true)
			}
		}
		h.Close()
	})
	repo := filepath.Join(dir, "repo")
	mustOK(t, h.CreateRepository(repo, "/OVS/Repositories/r1", "r1", "repo one"))
	return testHost{Host: h, drv: h.Driver().(*Driver), repo: repo}
}

// createGuest creates VM id booting the guest image with extra kernel
// options and vm.cfg keys.
func (h testHost) createGuest(t *testing.T, id, options string, keys agentapi.VMParams) {
	t.Helper()
	p := agentapi.VMParams{"name": id, "uuid": uuidOf(id), "memory": int64(128), "vcpus": int64(1),
		"kernel": "/OVS/Repositories/r1/Kernels/vmlinuz", "ramdisk": "/OVS/Repositories/r1/Kernels/initrd.gz",
		"extra": strings.TrimSpace(guestimage.Cmdline + " " + options)}
	for k, v := range keys {
		p[k] = v
	}
	mustOK(t, h.CreateVM("r1", id, p))
}

// waitEvent waits for an event of kind about VM id and returns it.
func (h testHost) waitEvent(t *testing.T, id, kind string) agentapi.Event {
	t.Helper()
	var found agentapi.Event
	waitForGuest(t, "a "+kind+" event of "+id, func() bool {
		for _, e := range h.Events(0).Events {
			if e.VMUUID == uuidOf(id) && e.Kind == kind {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// A guest whose kernel panics is reported crashed through pvpanic, and
// on_crash decides what happens to the domain: preserve keeps it,
// crashed, until start_vm replaces it; destroy ends it.
func TestQEMUAPanickedGuestIsReportedCrashed(t *testing.T) {
	img := needQEMUImage(t)
	dir := qemuDir(t, img)
	h := qemuHost(t, dir, "q1", Config{})
	h.createGuest(t, "p1", "xenguest.panic_after=2", agentapi.VMParams{"on_crash": "preserve"})
	h.createGuest(t, "p2", "xenguest.panic_after=2", agentapi.VMParams{"on_crash": "destroy"})
	mustOK(t, h.StartVM("r1", "p1"))
	mustOK(t, h.StartVM("r1", "p2"))

	e := h.waitEvent(t, "p1", agentapi.EventVMCrashed)
	if e.State != agentapi.StateCrashed || e.RepoID != "r1" || !strings.Contains(e.Detail, "panic") {
		t.Errorf("event of p1 %+v", e)
	}
	if st := h.state(t, "p1"); st != agentapi.StateCrashed {
		t.Errorf("p1 (on_crash preserve) is %s, want crashed", st)
	}
	h.waitEvent(t, "p2", agentapi.EventVMCrashed)
	waitForGuest(t, "p2's domain to go (on_crash destroy)", func() bool { return h.state(t, "p2") == "none" })
	// start_vm replaces the crashed domain with a new one.
	mustOK(t, h.StartVM("r1", "p1"))
	if st := h.state(t, "p1"); st != agentapi.StateRunning {
		t.Errorf("p1 after start_vm of its crashed domain: %s, want running", st)
	}
	mustOK(t, h.StopVM("r1", "p1", true))
	if st := h.state(t, "p1"); st != "none" {
		t.Errorf("p1 after stop: %s", st)
	}
}

// The agent rides out libvirtd crashing and coming back: meanwhile its
// calls fail saying the daemon is unreachable (never "no domains"), then
// it reconnects by itself, finds the guest that kept running, and follows
// its events again. A frozen daemon makes calls fail within the call
// timeout instead of hanging.
func TestQEMUTheDriverRidesOutADaemonCrash(t *testing.T) {
	img := needQEMUImage(t)
	daemon := needSecondHost(t)
	dir := qemuDir(t, img)
	// The call timeout bounds the frozen daemon's call below; the starts
	// must fit in it too, and on a loaded 2-core machine a start of QEMU
	// took more than 3 s.
	h := qemuHost(t, dir, "q2", Config{Socket: daemon.Socket, CallTimeout: 10 * time.Second})
	h.createGuest(t, "r1vm", "", nil)
	mustOK(t, h.StartVM("r1", "r1vm"))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mustOK(t, daemon.KillLibvirtd(ctx))
	// The calls in flight when it died say the connection was lost; the
	// next ones, once the driver marked it down, since when.
	waitForGuest(t, "the driver to see the daemon gone", func() bool {
		_, err := h.ListVMs()
		if f, ok := agentapi.AsFault(err); ok && !strings.Contains(f.Message, "was lost") && !strings.Contains(f.Message, "unreachable since") {
			t.Fatalf("list_vms with libvirtd dead: %v", err)
		}
		return err != nil && strings.Contains(err.Error(), "unreachable since")
	})
	wantFault(t, h.PauseVM("r1", "r1vm"), agentapi.FaultInternalError, "unreachable")

	mustOK(t, daemon.StartLibvirtd(ctx))
	waitForGuest(t, "the driver to reconnect", func() bool {
		doms, err := h.ListVMs()
		return err == nil && len(doms) == 1 && doms[0].State == agentapi.StateRunning
	})
	// The restarted libvirtd lists the guest before it has finished
	// reconnecting to its QEMU (a job of its own); a destroy sent in that
	// window makes the reconnect fail, and libvirtd then removes the
	// domain and answers "Domain not found". A call that needs a job waits
	// for the reconnect's to end.
	l, err := h.drv.conn.current()
	mustOK(t, err)
	dom, err := l.DomainLookupByName("r1vm")
	mustOK(t, err)
	_, err = l.DomainMemoryStats(dom, 13, 0)
	mustOK(t, err)
	// Events flow again: a destroy behind the agent's back is reported.
	mustOK(t, l.DomainDestroy(dom))
	if e := h.waitEvent(t, "r1vm", agentapi.EventVMShutdown); !strings.Contains(e.Detail, "outside the manager") {
		t.Errorf("event %+v", e)
	}

	// A frozen daemon: calls give up after the call timeout.
	mustOK(t, h.StartVM("r1", "r1vm"))
	pid, _, _ := daemon.PIDs()
	mustOK(t, syscall.Kill(pid, syscall.SIGSTOP))
	_, err = h.ListVMs()
	wantFault(t, err, agentapi.FaultInternalError, "did not answer within")
	mustOK(t, syscall.Kill(pid, syscall.SIGCONT))
	waitForGuest(t, "the daemon to answer again", func() bool {
		_, err := h.ListVMs()
		return err == nil
	})
}

// migrationPair is a source host on the machine's libvirtd running guest
// id and a destination host on a private libvirtd that can receive it.
func migrationPair(t *testing.T, id string) (src, dst testHost, daemon *libvirthost.Daemon) {
	t.Helper()
	img := needQEMUImage(t)
	daemon = needSecondHost(t)
	dir := qemuDir(t, img)
	src = qemuHost(t, dir, "src", Config{})
	dst = qemuHost(t, dir, "dst", Config{Socket: daemon.Socket, MigrationURI: daemon.URI, MigrationHost: daemon.Addr})
	src.createGuest(t, id, "", nil)
	mustOK(t, src.StartVM("r1", id))
	return src, dst, daemon
}

// A live migration that fails half-way (the destination's QEMU killed
// while memory is being sent) fails with MigrationFailed and leaves the
// guest running on the source.
func TestQEMUAMigrationFailingHalfWayLeavesTheGuestOnTheSource(t *testing.T) {
	src, dst, daemon := migrationPair(t, "m1")

	// Slow the stream to 1 MiB/s so that the migration is still sending
	// when the destination dies.
	l, err := src.drv.conn.current()
	mustOK(t, err)
	dom, err := l.DomainLookupByName("m1")
	mustOK(t, err)
	mustOK(t, l.DomainMigrateSetMaxSpeed(dom, 1, 0))

	dest, err := dst.SetupMigrationTarget("r1", "m1", "127.0.0.1")
	mustOK(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := src.MigrateVM(context.Background(), "r1", "m1", dest, true, false)
		done <- err
	}()
	// The destination's QEMU exists once the incoming migration began.
	var qemuPID int
	waitForGuest(t, "the destination's QEMU", func() bool {
		for _, pid := range daemon.Processes() {
			if b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm")); err == nil && strings.HasPrefix(string(b), "qemu-system") {
				qemuPID = pid
				return true
			}
		}
		return false
	})
	waitForGuest(t, "memory to be sent", func() bool {
		p, err := src.OperationProgress(agentapi.ProgressMigrate + "m1")
		return err == nil && p.Done > 0
	})
	mustOK(t, syscall.Kill(qemuPID, syscall.SIGKILL))
	err = <-done
	wantFault(t, err, agentapi.FaultMigrationFailed, "still runs on this server")
	if st := src.state(t, "m1"); st != agentapi.StateRunning {
		t.Fatalf("the guest on the source is %s after the failed migration, want running", st)
	}
	if ev := src.Events(0).Events; len(ev) != 0 {
		t.Errorf("the failed migration raised events on the source: %+v", ev)
	}
	mustOK(t, dst.CleanupMigrationTarget("r1", "m1"))
}

// A live migration reports what libvirt saw of it, and the destination
// knows the guest that arrived: listed there with its VM, gone from the
// source, no event on either side.
func TestQEMUALiveMigrationReportsWhatLibvirtSaw(t *testing.T) {
	src, dst, _ := migrationPair(t, "m2")

	dest, err := dst.SetupMigrationTarget("r1", "m2", "127.0.0.1")
	mustOK(t, err)
	wantFault(t, dst.StartVM("r1", "m2"), agentapi.FaultBusy, "being migrated")
	res, err := src.MigrateVM(t.Context(), "r1", "m2", dest, true, false)
	mustOK(t, err)
	if res.BytesSent <= 0 || res.Rounds < 1 || res.DurationMS <= 0 || !res.Converged {
		t.Errorf("migration result %+v", res)
	}
	if st := src.state(t, "m2"); st != "none" {
		t.Errorf("the source still has the domain: %s", st)
	}
	d, err := dst.ListVM("r1", "m2")
	mustOK(t, err)
	if d.State != agentapi.StateRunning || d.UUID != uuidOf("m2") {
		t.Errorf("on the destination: %+v", d)
	}
	if p, err := src.OperationProgress(agentapi.ProgressMigrate + "m2"); err != nil || p.State != agentapi.ProgressDone {
		t.Errorf("migration progress %+v, %v", p, err)
	}
	if e1, e2 := src.Events(0).Events, dst.Events(0).Events; len(e1)+len(e2) != 0 {
		t.Errorf("events of a migration the agents made: source %+v, destination %+v", e1, e2)
	}
	// Landed, the target is spent: the destination stops it like any other.
	mustOK(t, dst.StopVM("r1", "m2", true))
}

// A VM whose disk is locked elsewhere does not start, and the agent says so
// in its own words (InvalidState, the VM may be running there; not
// libvirt's or QEMU's, which name the file): on a second host while the
// VM runs on the first (QEMU's image locking refuses), and on the first
// while another server's virtlockd holds the disk (libvirt's lock manager
// refuses). Meanwhile the running guest's disk is locked by its host's
// virtlockd, and once the locks are gone the VM starts.
func TestQEMUAStartOnLockedDisksIsInvalidState(t *testing.T) {
	img := needQEMUImage(t)
	libvirthost.Require(t, libvirthost.LockdAvailable())
	daemon := needSecondHost(t)
	dir := qemuDir(t, img)
	h1 := qemuHost(t, dir, "q1", Config{})
	h2 := qemuHost(t, dir, "q2", Config{Socket: daemon.Socket})
	mustOK(t, h1.CreateVirtualDisk("r1", "d1", 1, true))
	disk := filepath.Join(h1.repo, "VirtualDisks", "d1.img")
	h1.createGuest(t, "lk1", "", agentapi.VMParams{"disk": []any{"file:/OVS/Repositories/r1/VirtualDisks/d1.img,xvda,w"}})

	mustOK(t, h1.StartVM("r1", "lk1"))
	if holders, err := libvirthost.LockdHolders(disk); err != nil || len(holders) != 1 {
		t.Fatalf("virtlockd processes holding the running guest's disk: %v (%v); want the first host's", holders, err)
	}
	err := h2.StartVM("r1", "lk1")
	wantFault(t, err, agentapi.FaultInvalidState, "cannot start VM lk1: its disks are locked by another server")
	notEchoed(t, err, disk)
	if st := h2.state(t, "lk1"); st != "none" {
		t.Fatalf("the second host has a domain of lk1 after the refusal: %s", st)
	}
	if st := h1.state(t, "lk1"); st != agentapi.StateRunning {
		t.Fatalf("the first host's guest is %s after the second start was refused", st)
	}

	mustOK(t, h1.StopVM("r1", "lk1", true))
	release := libvirthost.HoldLikeLockd(t, disk)
	err = h1.StartVM("r1", "lk1")
	wantFault(t, err, agentapi.FaultInvalidState, "cannot start VM lk1: its disks are locked by another server")
	notEchoed(t, err, disk)
	release()
	mustOK(t, h2.StartVM("r1", "lk1"))
	mustOK(t, h2.StopVM("r1", "lk1", true))
}

// notEchoed fails when a fault carries libvirt's or QEMU's words.
func notEchoed(t *testing.T, err error, disk string) {
	t.Helper()
	for _, w := range []string{disk, "Lockspace", "Failed to get", "qemu-system", "internal error"} {
		if strings.Contains(err.Error(), w) {
			t.Errorf("the fault echoes libvirt (%q): %v", w, err)
		}
	}
}

// list_vms answers while a start is under way (QEMU takes seconds to
// start, holding the domain's job): the HA lease renewal lists the domains,
// and waiting out a start longer than the fence timeout fenced the server.
// The starting domain is listed, in the state libvirt has for it then.
func TestQEMUListingDoesNotWaitForAStart(t *testing.T) {
	img := needQEMUImage(t)
	dir := qemuDir(t, img)
	h := qemuHost(t, dir, "q1", Config{})
	h.createGuest(t, "ls1", "", nil)
	l, err := h.drv.conn.current()
	mustOK(t, err)
	started := make(chan error, 1)
	go func() { started <- h.StartVM("r1", "ls1") }()
	waitForGuest(t, "libvirt to have the domain being started", func() bool {
		_, err := l.DomainLookupByName("ls1")
		return err == nil
	})
	doms, err := h.ListVMs()
	mustOK(t, err)
	select {
	case err := <-started:
		mustOK(t, err)
		t.Fatalf("list_vms answered only once the start had ended: it waited for the domain's job")
	default:
	}
	if len(doms) != 1 || doms[0].Name != "ls1" {
		t.Errorf("list_vms during the start: %+v; want ls1", doms)
	}
	mustOK(t, <-started)
}
