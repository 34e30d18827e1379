package libvirthost_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
	"libvirt.org/go/libvirtxml"

	"xenmanager/backend/agent/libvirt/guestimage"
	"xenmanager/backend/agent/libvirt/libvirthost"
)

// These tests start private libvirt daemons and boot real guests (QEMU under
// TCG). Their names contain QEMU: make test runs them in a step of their
// own, one package at a time.

// guestWait bounds every wait for a guest (a boot takes about 10 s under
// TCG) and for a migration (about 5 s).
const guestWait = 120 * time.Second

// TestQEMULibvirtHostMigrates boots the guest image on the system daemon,
// live-migrates it peer-to-peer to a private daemon, and checks on the
// private daemon's console that the guest's heartbeat counter kept
// counting.
func TestQEMULibvirtHostMigrates(t *testing.T) {
	img := requireAll(t)
	d := start(t)
	dst := dial(t, d.Socket)
	src := dial(t, libvirthost.SystemSocket)
	noDefaultNetwork(t, "private daemon", dst)
	noDefaultNetwork(t, "system daemon", src)
	if h, err := dst.ConnectGetHostname(); err != nil || h != d.Hostname {
		t.Errorf("private daemon's hostname = %q, %v; want %q", h, err, d.Hostname)
	}
	// Migration needs distinct host UUIDs.
	for _, c := range []struct {
		which string
		l     *libvirt.Libvirt
		want  bool
	}{{"private", dst, true}, {"system", src, false}} {
		caps, err := c.l.ConnectGetCapabilities()
		if err != nil {
			t.Fatalf("%s daemon's capabilities: %v", c.which, err)
		}
		if has := strings.Contains(caps, "<uuid>"+d.HostUUID+"</uuid>"); has != c.want {
			t.Errorf("%s daemon's capabilities name host UUID %s: %v, want %v", c.which, d.HostUUID, has, c.want)
		}
	}

	name := fmt.Sprintf("xm-lvh-test-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	consoleLog := filepath.Join(t.TempDir(), "console.log")
	xml, err := domainXML(name, img, consoleLog)
	if err != nil {
		t.Fatal(err)
	}
	booted := time.Now()
	dom, err := src.DomainCreateXML(xml, 0)
	if err != nil {
		t.Fatalf("DomainCreateXML on the system daemon: %v", err)
	}
	t.Cleanup(func() {
		destroy(src, name)
		destroy(dst, name)
		// The system daemon's log of the domain's qemu (the private
		// daemon's goes with its directory).
		os.Remove(filepath.Join("/var/log/libvirt/qemu", name+".log"))
	})

	waitLog(t, consoleLog, guestimage.Ready)
	t.Logf("DomainCreateXML to %s: %v", guestimage.Ready, time.Since(booted).Round(10*time.Millisecond))
	before := waitLog(t, consoleLog, guestimage.Heartbeat)

	migrating := time.Now()
	_, err = src.DomainMigratePerform3Params(dom, libvirt.OptString{d.URI},
		[]libvirt.TypedParam{{Field: libvirt.MigrateParamURI, Value: *libvirt.NewTypedParamValueString(d.MigrateURI())}},
		nil, libvirt.MigrateLive|libvirt.MigratePeer2peer)
	if err != nil {
		t.Fatalf("migrate %s to %s (%s): %v\n%s", name, d.URI, d.MigrateURI(), err, tailFile(d.LogPath(), 20))
	}
	t.Logf("live migration (peer to peer, system daemon to %s): %v", d.URI, time.Since(migrating).Round(10*time.Millisecond))

	if _, err := src.DomainLookupByName(name); !libvirt.IsNotFound(err) {
		t.Errorf("the system daemon still knows %s after the migration (err %v)", name, err)
	}
	moved, err := dst.DomainLookupByName(name)
	if err != nil {
		t.Fatalf("the private daemon does not know %s after the migration: %v", name, err)
	}
	if state, reason, err := dst.DomainGetState(moved, 0); err != nil || libvirt.DomainState(state) != libvirt.DomainRunning {
		t.Fatalf("state on the private daemon: %d (reason %d), %v; want running", state, reason, err)
	}

	// The destination's console: the counter goes on from where it was.
	cons := &lines{changed: make(chan struct{})}
	streamDone := make(chan error, 1)
	go func() { streamDone <- dst.DomainOpenConsole(moved, nil, cons, uint32(libvirt.DomainConsoleForce)) }()
	last := before
	for i := 0; i < 3; i++ {
		n, up := cons.nextHeartbeat(t)
		if n <= last.n || up <= last.uptime {
			t.Fatalf("heartbeat %d at %.2f s on the destination after %d at %.2f s: the guest did not keep running", n, up, last.n, last.uptime)
		}
		last = heartbeat{n, up}
	}
	t.Logf("heartbeat %d (uptime %.2f s) before the migration, %d (%.2f s) on the destination", before.n, before.uptime, last.n, last.uptime)

	if err := dst.DomainDestroy(moved); err != nil {
		t.Fatalf("destroy on the private daemon: %v", err)
	}
	select {
	case err := <-streamDone:
		if err != nil {
			t.Logf("console stream ended: %v", err)
		}
	case <-time.After(guestWait):
		t.Errorf("the console stream did not end within %v of the destroy", guestWait)
	}
}

// TestQEMULibvirtHostTwoAtOnce starts two private daemons at once: their
// names, addresses and host UUIDs differ, both answer, and Close leaves
// nothing behind.
func TestQEMULibvirtHostTwoAtOnce(t *testing.T) {
	libvirthost.Require(t, libvirthost.Available())
	var wg sync.WaitGroup
	ds := make([]*libvirthost.Daemon, 2)
	errs := make([]error, 2)
	for i := range ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ds[i], errs[i] = libvirthost.Start(context.Background(), libvirthost.Options{})
		}()
	}
	wg.Wait()
	for i, d := range ds {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		t.Cleanup(func() { closeAndCheck(t, d) })
	}
	a, b := ds[0], ds[1]
	if a.Name == b.Name || a.Addr == b.Addr || a.PeerAddr == b.PeerAddr || a.HostUUID == b.HostUUID || a.Socket == b.Socket {
		t.Errorf("two daemons collide: %+v and %+v", a, b)
	}
	for _, d := range ds {
		l := dial(t, d.Socket)
		if h, err := l.ConnectGetHostname(); err != nil || h != d.Name {
			t.Errorf("hostname of %s = %q, %v", d.Name, h, err)
		}
		noDefaultNetwork(t, d.Name, l)
		c, err := net.DialTimeout("tcp", net.JoinHostPort(d.Addr, "16509"), 5*time.Second)
		if err != nil {
			t.Errorf("%s's TCP socket: %v", d.Name, err)
		} else {
			c.Close()
		}
	}
}

// TestQEMULibvirtHostCloseStopsGuests boots the guest on a private daemon
// and closes the daemon with the guest still running, as a failed test
// would: Close stops its qemu too.
func TestQEMULibvirtHostCloseStopsGuests(t *testing.T) {
	img := requireAll(t)
	d := start(t)
	l := dial(t, d.Socket)
	name := fmt.Sprintf("xm-lvh-left-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	consoleLog := filepath.Join(t.TempDir(), "console.log")
	xml, err := domainXML(name, img, consoleLog)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.DomainCreateXML(xml, 0); err != nil {
		t.Fatalf("DomainCreateXML on the private daemon: %v\n%s", err, tailFile(d.DomainLogPath(name), 20))
	}
	waitLog(t, consoleLog, guestimage.Ready)
	procs := d.Processes()
	if len(procs) < 4 {
		t.Fatalf("processes in %s's namespace: %v; want libvirtd, virtlogd, virtlockd and the guest's qemu", d.Name, procs)
	}
	// closeAndCheck (the cleanup) checks that every one of them ends.
}

// TestQEMULibvirtHostStartFailsCleanly makes Start fail half-way (a
// hostname the kernel refuses, after the namespace, the veth and the
// directory exist) and checks that it removed what it had made.
func TestQEMULibvirtHostStartFailsCleanly(t *testing.T) {
	libvirthost.Require(t, libvirthost.Available())
	before := leftovers()
	d, err := libvirthost.Start(context.Background(), libvirthost.Options{Hostname: strings.Repeat("h", 100)})
	if err == nil {
		closeAndCheck(t, d)
		t.Fatal("Start with a 100-character hostname succeeded")
	}
	t.Logf("Start failed as it should: %v", err)
	if after := leftovers(); !slices.Equal(before, after) {
		t.Errorf("a failed Start left %v (before: %v)", after, before)
	}
}

// TestQEMULibvirtHostSweeps starts a daemon in a child process and kills
// the child (as a go test timeout would: no cleanup runs); the next Start
// tears the orphan down.
func TestQEMULibvirtHostSweeps(t *testing.T) {
	if os.Getenv("XM_LIBVIRTHOST_CHILD") == "1" {
		d, err := libvirthost.Start(context.Background(), libvirthost.Options{})
		if err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		l, v, k := d.PIDs()
		fmt.Println("DAEMON", d.Name, d.Dir, l, v, k)
		os.Stdin.Read(make([]byte, 1)) // until killed
		os.Exit(0)
	}
	libvirthost.Require(t, libvirthost.Available())
	child := exec.Command(os.Args[0], "-test.run=^TestQEMULibvirtHostSweeps$")
	child.Env = append(os.Environ(), "XM_LIBVIRTHOST_CHILD=1")
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	child.Process.Kill()
	child.Wait()
	var name, dir string
	var libvirtd, virtlogd, virtlockd int
	if _, err := fmt.Sscanf(line, "DAEMON %s %s %d %d %d", &name, &dir, &libvirtd, &virtlogd, &virtlockd); err != nil {
		t.Fatalf("child: %q, %v", line, err)
	}
	if !alive(libvirtd) {
		t.Fatalf("the orphan's libvirtd %d is not running: nothing to sweep", libvirtd)
	}
	d := start(t) // sweeps
	for _, pid := range []int{libvirtd, virtlogd, virtlockd} {
		if alive(pid) {
			t.Errorf("the orphan's daemon %d still runs after Start", pid)
		}
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("the orphan's directory %s is still there after Start", dir)
	}
	if name != d.Name {
		if _, err := os.Stat(filepath.Join("/run/netns", name)); err == nil {
			t.Errorf("the orphan's namespace %s is still there after Start", name)
		}
	}
}

// leftovers lists the namespaces, interfaces and temporary directories
// named like a private daemon's.
func leftovers() []string {
	var names []string
	ns, _ := filepath.Glob("/run/netns/xmlvh*")
	names = append(names, ns...)
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if strings.HasPrefix(i.Name, "xmlvh") {
			names = append(names, i.Name)
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "xmlvh*"))
	names = append(names, dirs...)
	slices.Sort(names)
	return names
}

// requireAll checks the machine (root, namespaces, both libvirt daemons,
// the image's build tools) and returns the guest image.
func requireAll(t *testing.T) guestimage.Image {
	t.Helper()
	return libvirthost.RequireGuestImage(t, libvirthost.Available(), libvirthost.SystemAvailable())
}

// start starts a private daemon, closed (and checked gone) when the test
// ends.
func start(t *testing.T) *libvirthost.Daemon {
	t.Helper()
	began := time.Now()
	d, err := libvirthost.Start(context.Background(), libvirthost.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("private daemon %s (%s, peer %s) ready in %v", d.Name, d.URI, d.PeerAddr, time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() { closeAndCheck(t, d) })
	return d
}

// closeAndCheck closes d and checks that nothing of it is left: daemons,
// guests, namespace, veth, directory.
func closeAndCheck(t *testing.T, d *libvirthost.Daemon) {
	t.Helper()
	procs := d.Processes()
	libvirtd, virtlogd, virtlockd := d.PIDs()
	for _, pid := range []int{libvirtd, virtlogd, virtlockd} {
		if !slices.Contains(procs, pid) {
			t.Errorf("daemon process %d is not among the processes of %s's namespace %v", pid, d.Name, procs)
		}
	}
	began := time.Now()
	if err := d.Close(); err != nil {
		t.Error(err)
	}
	t.Logf("private daemon %s closed in %v (%d processes stopped)", d.Name, time.Since(began).Round(time.Millisecond), len(procs))
	for _, pid := range procs {
		if alive(pid) {
			t.Errorf("process %d of %s still runs after Close", pid, d.Name)
		}
	}
	if _, err := os.Stat(filepath.Join("/run/netns", d.Name)); err == nil {
		t.Errorf("network namespace %s left after Close", d.Name)
	}
	for _, link := range []string{d.Name + "r", d.Name + "n"} {
		if _, err := net.InterfaceByName(link); err == nil {
			t.Errorf("interface %s left after Close", link)
		}
	}
	if _, err := os.Stat(d.Dir); err == nil {
		t.Errorf("directory %s left after Close", d.Dir)
	}
}

// alive says whether pid runs (a zombie does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}

// dial connects to the libvirtd listening on socket, qemu:///system.
func dial(t *testing.T, socket string) *libvirt.Libvirt {
	t.Helper()
	l := libvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(socket)))
	if err := l.ConnectToURI(libvirt.QEMUSystem); err != nil {
		t.Fatalf("connect to %s: %v", socket, err)
	}
	t.Cleanup(func() { l.Disconnect() })
	return l
}

// noDefaultNetwork checks that no network of the daemon is active or set
// to autostart: libvirt's default network (virbr0, dnsmasq) must never run
// in the tests' daemons.
func noDefaultNetwork(t *testing.T, which string, l *libvirt.Libvirt) {
	t.Helper()
	nets, _, err := l.ConnectListAllNetworks(1, 0)
	if err != nil {
		t.Fatalf("%s: list networks: %v", which, err)
	}
	for _, n := range nets {
		active, err1 := l.NetworkIsActive(n)
		auto, err2 := l.NetworkGetAutostart(n)
		if err1 != nil || err2 != nil || active != 0 || auto != 0 {
			t.Errorf("%s: network %s active=%d autostart=%d (%v %v); no network may run or autostart", which, n.Name, active, auto, err1, err2)
		}
	}
}

// domainXML is a transient guest of the image: TCG, 128 MiB, direct kernel
// boot, no disk, the serial console on a pty logged to consoleLog.
//
// qemu runs as root without relabelling (a static DAC label): the image is
// in root's cache (~/.cache, mode 0700), which libvirt-qemu cannot reach,
// and two daemons relabelling the same files would undo each other.
func domainXML(name string, img guestimage.Image, consoleLog string) (string, error) {
	return domainXMLWithDisk(name, img, consoleLog, "")
}

// domainXMLWithDisk is domainXML with the raw file disk as a writable
// virtio disk (none when "").
func domainXMLWithDisk(name string, img guestimage.Image, consoleLog, disk string) (string, error) {
	port := uint(0)
	pty := &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}}
	dom := libvirtxml.Domain{
		Type:   "qemu",
		Name:   name,
		Memory: &libvirtxml.DomainMemory{Value: 128, Unit: "MiB"},
		VCPU:   &libvirtxml.DomainVCPU{Value: 1},
		OS: &libvirtxml.DomainOS{
			Type:    &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "pc", Type: "hvm"},
			Kernel:  img.Kernel,
			Initrd:  img.Initrd,
			Cmdline: guestimage.Cmdline + " xenguest.hostname=migrant",
		},
		Features:   &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}},
		OnPoweroff: "destroy",
		OnReboot:   "destroy",
		OnCrash:    "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			Serials: []libvirtxml.DomainSerial{{
				Source: pty,
				Target: &libvirtxml.DomainSerialTarget{Port: &port},
				Log:    &libvirtxml.DomainChardevLog{File: consoleLog, Append: "on"},
			}},
			Consoles: []libvirtxml.DomainConsole{{
				Source: pty,
				Target: &libvirtxml.DomainConsoleTarget{Type: "serial", Port: &port},
			}},
		},
		SecLabel: []libvirtxml.DomainSecLabel{{Type: "static", Model: "dac", Relabel: "no", Label: "+0:+0"}},
	}
	if disk != "" {
		dom.Devices.Disks = []libvirtxml.DomainDisk{{
			Device: "disk",
			Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw"},
			Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: disk}},
			Target: &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
		}}
	}
	return dom.Marshal()
}

// destroy destroys the domain called name if l has it (a test's cleanup,
// whichever side the guest ended on).
func destroy(l *libvirt.Libvirt, name string) {
	if dom, err := l.DomainLookupByName(name); err == nil {
		l.DomainDestroy(dom)
	}
}

type heartbeat struct {
	n      int
	uptime float64
}

// waitLog polls the console log file until a line contains s, and returns
// the last heartbeat seen by then.
func waitLog(t *testing.T, path, s string) heartbeat {
	t.Helper()
	deadline := time.Now().Add(guestWait)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		var hb heartbeat
		found := false
		if f, err := os.Open(path); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if n, up, ok := guestimage.ParseHeartbeat(sc.Text()); ok {
					hb = heartbeat{n, up}
				}
				if strings.Contains(sc.Text(), s) {
					found = true
				}
			}
			f.Close()
		}
		if found {
			return hb
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in %s within %v:\n%s", s, path, guestWait, tailFile(path, 20))
		}
		<-tick.C
	}
}

// lines collects a console stream (an io.Writer that never blocks, as
// go-libvirt's stream reader requires) into lines.
type lines struct {
	mu      sync.Mutex
	partial string
	done    []string
	read    int
	changed chan struct{} // closed and replaced on every write
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial += string(p)
	for {
		i := strings.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.done = append(l.done, strings.TrimRight(l.partial[:i], "\r"))
		l.partial = l.partial[i+1:]
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

// nextHeartbeat waits for the next heartbeat line of the stream.
func (l *lines) nextHeartbeat(t *testing.T) (int, float64) {
	t.Helper()
	timer := time.NewTimer(guestWait)
	defer timer.Stop()
	for {
		l.mu.Lock()
		for l.read < len(l.done) {
			line := l.done[l.read]
			l.read++
			if n, up, ok := guestimage.ParseHeartbeat(line); ok {
				l.mu.Unlock()
				return n, up
			}
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("no heartbeat on the destination's console within %v; got:\n%s", guestWait, strings.Join(l.done, "\n"))
		}
	}
}

// tailFile is the end of a file, for failure messages.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return path + ":\n" + strings.Join(ls, "\n")
}

// TestQEMULibvirtHostLockManagerRefusesSecondGuest starts a guest with a
// disk on the system daemon, whose virtlockd then holds the disk's lock,
// and the same guest on a private daemon, which refuses it until the first
// is gone (QEMU's own image locking speaks first: libvirt takes the lock
// manager's locks only when the guest's CPUs start, after QEMU opened the
// disk); then the private daemon starts it, and its own virtlockd holds
// the lock.
func TestQEMULibvirtHostLockManagerRefusesSecondGuest(t *testing.T) {
	img := requireAll(t)
	libvirthost.Require(t, libvirthost.LockdAvailable())
	d := start(t)
	if d.LockManager != "lockd" {
		t.Fatalf("the private daemon's lock manager is %q; want lockd, as the system's", d.LockManager)
	}
	sys := dial(t, libvirthost.SystemSocket)
	priv := dial(t, d.Socket)
	dir := t.TempDir()
	disk := sparseDisk(t, dir)
	name := fmt.Sprintf("xm-lvh-lock-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	xml, err := domainXMLWithDisk(name, img, filepath.Join(dir, "console.log"), disk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		destroy(sys, name)
		destroy(priv, name)
		os.Remove(filepath.Join("/var/log/libvirt/qemu", name+".log"))
	})
	first, err := sys.DomainCreateXML(xml, 0)
	if err != nil {
		t.Fatalf("DomainCreateXML on the system daemon: %v", err)
	}
	sysLockd := onlyHolder(t, disk)
	_, _, privLockd := d.PIDs()
	if sysLockd == privLockd {
		t.Fatalf("the private daemon's virtlockd (%d) holds the system daemon's guest's disk", privLockd)
	}
	_, err = priv.DomainCreateXML(xml, 0)
	if err == nil {
		t.Fatalf("the private daemon started a second guest on %s while the system daemon's runs", disk)
	}
	t.Logf("the second start was refused: %v", err)
	if doms, _, err := priv.ConnectListAllDomains(1, libvirt.ConnectListDomainsActive); err != nil || len(doms) != 0 {
		t.Fatalf("the private daemon's domains after the refusal: %v, %v; want none", doms, err)
	}
	if holder := onlyHolder(t, disk); holder != sysLockd {
		t.Fatalf("after the refusal the disk's lock is held by %d, not the system's virtlockd %d", holder, sysLockd)
	}
	if err := sys.DomainDestroy(first); err != nil {
		t.Fatal(err)
	}
	if holders, err := libvirthost.LockdHolders(disk); err != nil || len(holders) != 0 {
		t.Fatalf("the disk's lock outlives its guest: held by %v (%v)", holders, err)
	}
	if _, err := priv.DomainCreateXML(xml, 0); err != nil {
		t.Fatalf("the private daemon cannot start the guest once the system daemon's is gone: %v", err)
	}
	if holder := onlyHolder(t, disk); holder != privLockd {
		t.Fatalf("the private daemon's guest's disk is locked by %d, not by its virtlockd %d", holder, privLockd)
	}
}

// TestQEMULibvirtHostLockManagerRefusesLockedDisk holds the lock that
// another server's virtlockd would hold on a disk (a write lock on its
// first byte) and starts a guest on it: QEMU's image locking does not see
// that lock, libvirt's lock manager does, and libvirt refuses with its
// resource-busy error; with the lock released the guest starts.
func TestQEMULibvirtHostLockManagerRefusesLockedDisk(t *testing.T) {
	img := requireAll(t)
	libvirthost.Require(t, libvirthost.LockdAvailable())
	sys := dial(t, libvirthost.SystemSocket)
	dir := t.TempDir()
	disk := sparseDisk(t, dir)
	name := fmt.Sprintf("xm-lvh-locked-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	xml, err := domainXMLWithDisk(name, img, filepath.Join(dir, "console.log"), disk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		destroy(sys, name)
		os.Remove(filepath.Join("/var/log/libvirt/qemu", name+".log"))
	})
	release := libvirthost.HoldLikeLockd(t, disk)
	_, err = sys.DomainCreateXML(xml, 0)
	var lerr libvirt.Error
	if !errors.As(err, &lerr) || libvirt.ErrorNumber(lerr.Code) != libvirt.ErrResourceBusy {
		t.Fatalf("a start on a disk another virtlockd holds: %v; want libvirt's resource-busy error", err)
	}
	t.Logf("refused: code %s, %q", libvirt.ErrorNumber(lerr.Code), lerr.Message)
	if doms, _, err := sys.ConnectListAllDomains(1, libvirt.ConnectListDomainsActive); err == nil {
		for _, dom := range doms {
			if dom.Name == name {
				t.Fatalf("the refused guest runs")
			}
		}
	}
	release()
	if _, err := sys.DomainCreateXML(xml, 0); err != nil {
		t.Fatalf("the start once the lock is released: %v", err)
	}
}

// sparseDisk makes a 1 MiB sparse raw disk in dir.
func sparseDisk(t *testing.T, dir string) string {
	t.Helper()
	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 1<<20); err != nil {
		t.Fatal(err)
	}
	return disk
}

// onlyHolder is the one virtlockd that holds the disk's lock.
func onlyHolder(t *testing.T, disk string) int {
	t.Helper()
	holders, err := libvirthost.LockdHolders(disk)
	if err != nil || len(holders) != 1 {
		t.Fatalf("virtlockd processes holding %s: %v (%v); want one: is libvirtd running with lock_manager = \"lockd\"?", disk, holders, err)
	}
	return holders[0]
}
