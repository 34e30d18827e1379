// Package libvirthost starts a second libvirt host on this machine, for tests
// that need two (live migration, HA failover): a private libvirtd, virtlogd
// and virtlockd in a network namespace of their own, joined to the root namespace by a
// veth pair on a private /30, and in a mount namespace where private copies
// of libvirt's directories hide the system daemon's. The machine's own
// daemon (SystemSocket) is the first host; the private one listens on TCP
// on its veth address only, so that the system daemon reaches it for
// peer-to-peer migration, and on a unix socket that a process in the root
// namespace dials through Daemon.Socket.
//
// It is test support code, not a _test file, so that the tests of other
// packages (the libvirt driver's) can use it. It needs root, iproute2,
// util-linux's unshare and mount, and libvirt-daemon-system (Available says
// what is missing).
package libvirthost

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// SystemSocket is the unix socket of the machine's own libvirtd, the other
// host of a migration test.
const SystemSocket = "/run/libvirt/libvirt-sock"

// The libvirt directories each private daemon gets its own copy of. The
// system daemon's state, sockets, logs, caches and configuration all live
// there; the rest of the filesystem (a guest's kernel, a console log file)
// is shared.
const (
	runDir   = "/run/libvirt"
	libDir   = "/var/lib/libvirt"
	logDir   = "/var/log/libvirt"
	cacheDir = "/var/cache/libvirt"
	etcDir   = "/etc/libvirt"
)

// The daemons' programs (Debian 12 has no split daemons such as
// virtqemud).
const (
	libvirtdPath  = "/usr/sbin/libvirtd"
	virtlogdPath  = "/usr/sbin/virtlogd"
	virtlockdPath = "/usr/sbin/virtlockd"
)

// stateDir holds a lock that makes choosing a free index atomic across
// processes, and one record per daemon naming its owner, so that a later
// Start tears down what a killed test binary left.
const stateDir = "/run/xenmanager-libvirthost"

// prefix starts every name this package gives: network namespaces, veth
// interfaces (at most 15 characters: prefix, index, one letter), hostnames,
// temporary directories.
const prefix = "xmlvh"

// maxIndex bounds the daemons at once: index i gets 10.213.i.0/30.
const maxIndex = 256

// stopWait bounds how long Close waits for a process to end after SIGTERM,
// and then after SIGKILL.
const stopWait = 15 * time.Second

// startWait bounds how long Start waits for the daemon's sockets when its
// context has no earlier deadline (it is ready in well under a second).
const startWait = 60 * time.Second

// Options configures a daemon. The zero value is fine.
type Options struct {
	// Hostname is the hostname of the daemon's namespace (what libvirt on
	// that host reports, and puts in migration cookies); default the
	// namespace's name.
	Hostname string
}

// Daemon is a running private libvirt host.
type Daemon struct {
	// Name names the network namespace (ip netns) and starts the names of
	// the veth ends (Name+"r" in the root namespace, Name+"n" in the
	// daemon's).
	Name string
	// Socket is the path of the daemon's read-write unix socket as seen
	// from the root namespace (dial it with go-libvirt's
	// dialers.NewLocal(dialers.WithSocket(Socket))); qemu:///system on it.
	Socket string
	// Addr is the daemon's address on the veth, in its namespace: it
	// listens there on TCP port 16509 (no authentication), and a guest
	// migrating in listens there too.
	Addr string
	// PeerAddr is the root namespace's end of the veth.
	PeerAddr string
	// URI is how another daemon reaches this one, for peer-to-peer
	// migration's dconnuri: qemu+tcp://Addr/system.
	URI string
	// HostUUID is the daemon's host_uuid, distinct from every other host's:
	// libvirt refuses to migrate between hosts with equal UUIDs.
	HostUUID string
	// Hostname is the hostname of the daemon's namespace.
	Hostname string
	// Dir is the daemon's temporary directory: run, lib, log, cache and etc
	// are its copies of libvirt's directories (log/libvirtd.log is the
	// daemon's log, log/qemu/NAME.log each domain's qemu log), and the pid
	// files.
	Dir string
	// LockManager is the lock manager of the daemon's QEMU driver, as its
	// copy of qemu.conf (the system's) sets it: "lockd" when virtlockd
	// locks each running guest's disks, "" for none. The private
	// daemon follows the system's setting because libvirt refuses to
	// migrate between daemons with different lock managers; its virtlockd
	// is its own, like its virtlogd, and runs in either case.
	LockManager string

	veth         string // the root namespace's end
	libvirtdPID  int
	virtlogdPID  int
	virtlockdPID int

	closeOnce sync.Once
	closeErr  error
}

// MigrateURI is the migrate_uri parameter that makes a guest migrating to
// this daemon listen on its veth address, on a port libvirt chooses from its
// migration range (the default would be the host's name, which resolves to
// nothing here).
func (d *Daemon) MigrateURI() string { return "tcp://" + d.Addr }

// PIDs are libvirtd's, virtlogd's and virtlockd's process ids (in the root
// PID namespace: the daemons share it), so that a test can check they are
// gone after Close.
func (d *Daemon) PIDs() (libvirtd, virtlogd, virtlockd int) {
	return d.libvirtdPID, d.virtlogdPID, d.virtlockdPID
}

// Processes lists the live processes in the daemon's network namespace:
// the daemons, their guests' qemu, anything they started.
func (d *Daemon) Processes() []int { return netnsPIDs(d.Name) }

// LogPath is the daemon's log file (warnings and errors).
func (d *Daemon) LogPath() string { return filepath.Join(d.Dir, "log", "libvirtd.log") }

// DomainLogPath is the log of a domain's qemu process on this daemon (its
// command line and errors; not the guest's console).
func (d *Daemon) DomainLogPath(name string) string {
	return filepath.Join(d.Dir, "log", "qemu", name+".log")
}

// Available says why a private daemon cannot start on this machine, or nil:
// tests skip (or, in CI, fail) with its reason instead of failing half-way.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("private libvirt host: needs root (network and mount namespaces, bind mounts)")
	}
	var missing []string
	for _, tool := range []string{"ip", "unshare", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	for _, p := range []string{libvirtdPath, virtlogdPath, virtlockdPath} {
		if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
			missing = append(missing, p)
		}
	}
	for _, dir := range []string{runDir, libDir, logDir, cacheDir, etcDir} {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			missing = append(missing, dir)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("private libvirt host: missing %s (Debian: iproute2, util-linux, libvirt-daemon-system)", strings.Join(missing, ", "))
	}
	if out, err := exec.Command("unshare", "-m", "-u", "--propagation", "private", "true").CombinedOutput(); err != nil {
		return fmt.Errorf("private libvirt host: cannot make namespaces here: unshare: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// SystemAvailable says why the machine's own libvirtd does not answer on
// SystemSocket, or nil.
func SystemAvailable() error {
	c, err := net.DialTimeout("unix", SystemSocket, 5*time.Second)
	if err != nil {
		return fmt.Errorf("system libvirtd: %w", err)
	}
	c.Close()
	return nil
}

// LockdSocket is the system virtlockd's socket, which a libvirtd with
// lock_manager = "lockd" needs to start any guest.
const LockdSocket = runDir + "/virtlockd-sock"

// qemuConf is the QEMU driver's configuration, which names the lock
// manager.
const qemuConf = etcDir + "/qemu.conf"

// SystemLockManager is the lock manager the machine's qemu.conf sets for
// libvirt's QEMU driver: "lockd", "sanlock", or "" for none.
func SystemLockManager() (string, error) {
	lm, err := confString(qemuConf, "lock_manager")
	if err != nil {
		return "", fmt.Errorf("libvirt's lock manager: %w", err)
	}
	return lm, nil
}

// LockdAvailable says why the machine's libvirt is not set up with its
// lock manager, or nil: qemu.conf must set lock_manager = "lockd" (locks
// on the disk files, which a private daemon's copy of the configuration
// inherits) and virtlockd must answer on its system socket. It reads the
// configuration, not the running daemon's mind: a libvirtd started before
// the setting was made runs without it until it is restarted.
func LockdAvailable() error {
	lm, err := SystemLockManager()
	if err != nil {
		return err
	}
	if lm != "lockd" {
		return fmt.Errorf(`libvirt's lock manager: %s sets lock_manager = %q, not "lockd" (.ci/run sets it; restart libvirtd after)`, qemuConf, lm)
	}
	c, err := net.DialTimeout("unix", LockdSocket, 5*time.Second)
	if err != nil {
		return fmt.Errorf("libvirt's lock manager: virtlockd does not answer (start it as root: virtlockd -d): %w", err)
	}
	c.Close()
	return nil
}

// Start starts a private daemon: it takes a free index (a network
// namespace of that name, a veth pair on 10.213.<index>.0/30), copies
// libvirt's directories into a temporary directory (with the default
// network's and every other autostart link removed, and a libvirtd.conf
// that listens on TCP on the veth address only with a fresh host_uuid),
// starts virtlogd, virtlockd and libvirtd in the namespaces, and waits until the
// daemon answers on its unix socket and, from the root namespace, on TCP.
// Close it when done (t.Cleanup): nothing is left behind. Start also tears
// down what a killed test binary left.
func Start(ctx context.Context, opts Options) (*Daemon, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, startWait)
		defer cancel()
	}
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return nil, fmt.Errorf("private libvirt host: %w", err)
	}
	unlock, err := lockState()
	if err != nil {
		return nil, err
	}
	sweep()
	d, err := reserve(ctx)
	unlock()
	if err != nil {
		return nil, err
	}
	d.Hostname = opts.Hostname
	if d.Hostname == "" {
		d.Hostname = d.Name
	}
	err = d.prepare()
	if err == nil {
		err = d.launch(ctx)
	}
	if err != nil {
		err = fmt.Errorf("private libvirt host %s: %w", d.Name, err)
		if cerr := d.Close(); cerr != nil {
			err = fmt.Errorf("%w (and cleaning up: %v)", err, cerr)
		}
		return nil, err
	}
	return d, nil
}

// lockState takes the lock on stateDir (flock; released when the file
// closes, also if the process dies).
func lockState() (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(stateDir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("private libvirt host: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("private libvirt host: lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// record is what stateDir keeps per daemon, so that a later Start can tear
// it down if its owner died without closing it.
type record struct {
	Name      string `json:"name"`
	Veth      string `json:"veth"`
	Dir       string `json:"dir"`
	OwnerPID  int    `json:"owner_pid"`
	OwnerTime string `json:"owner_start_time"` // /proc/PID/stat's field 22, against PID reuse
}

// reserve takes the first free index: its network namespace (ip netns add
// fails if the name exists, so the name is the reservation) and veth pair,
// and writes its record. The caller holds the state lock.
func reserve(ctx context.Context) (*Daemon, error) {
	used, err := usedAddrs()
	if err != nil {
		return nil, err
	}
	for i := 0; i < maxIndex; i++ {
		name := fmt.Sprintf("%s%d", prefix, i)
		if used[fmt.Sprintf("10.213.%d.", i)] {
			continue
		}
		if _, err := os.Stat(filepath.Join(stateDir, name+".json")); err == nil {
			continue
		}
		if _, err := os.Stat(filepath.Join("/run/netns", name)); err == nil {
			continue
		}
		if err := run(ctx, "ip", "netns", "add", name); err != nil {
			if strings.Contains(err.Error(), "exists") {
				continue // taken meanwhile by a process that does not use the lock
			}
			return nil, fmt.Errorf("private libvirt host: %w", err)
		}
		d := &Daemon{
			Name:     name,
			veth:     name + "r",
			Addr:     fmt.Sprintf("10.213.%d.2", i),
			PeerAddr: fmt.Sprintf("10.213.%d.1", i),
		}
		d.URI = "qemu+tcp://" + d.Addr + "/system"
		dir, err := os.MkdirTemp("", name+"-")
		if err != nil {
			run(context.Background(), "ip", "netns", "delete", name)
			return nil, fmt.Errorf("private libvirt host: %w", err)
		}
		d.Dir = dir
		d.Socket = filepath.Join(dir, "run", "libvirt-sock")
		self := os.Getpid()
		rec := record{Name: name, Veth: d.veth, Dir: dir, OwnerPID: self, OwnerTime: startTime(self)}
		b, _ := json.Marshal(rec)
		if err := os.WriteFile(filepath.Join(stateDir, name+".json"), b, 0o644); err != nil {
			d.Close()
			return nil, fmt.Errorf("private libvirt host: %w", err)
		}
		if err := d.network(ctx); err != nil {
			d.Close()
			return nil, fmt.Errorf("private libvirt host %s: %w", name, err)
		}
		return d, nil
	}
	return nil, fmt.Errorf("private libvirt host: no free index below %d (ip netns list)", maxIndex)
}

// usedAddrs is the set of "10.213.<i>." prefixes that an address of the
// root namespace already uses, so that a daemon's /30 collides with
// nothing.
func usedAddrs() (map[string]bool, error) {
	out, err := exec.Command("ip", "-o", "-4", "addr", "show").Output()
	if err != nil {
		return nil, fmt.Errorf("private libvirt host: ip addr: %w", err)
	}
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`inet (10\.213\.\d+\.)`).FindAllStringSubmatch(string(out), -1) {
		used[m[1]] = true
	}
	return used, nil
}

// network makes the veth pair: Name+"r" with PeerAddr in the root
// namespace, Name+"n" with Addr in the daemon's, both up, and the
// namespace's loopback.
func (d *Daemon) network(ctx context.Context) error {
	nsEnd := d.Name + "n"
	for _, args := range [][]string{
		{"link", "add", d.veth, "type", "veth", "peer", "name", nsEnd, "netns", d.Name},
		{"addr", "add", d.PeerAddr + "/30", "dev", d.veth},
		{"link", "set", d.veth, "up"},
		{"-n", d.Name, "addr", "add", d.Addr + "/30", "dev", nsEnd},
		{"-n", d.Name, "link", "set", nsEnd, "up"},
		{"-n", d.Name, "link", "set", "lo", "up"},
	} {
		if err := run(ctx, "ip", args...); err != nil {
			return err
		}
	}
	return nil
}

// prepare fills Dir with the daemon's copies of libvirt's directories and
// its configuration.
func (d *Daemon) prepare() error {
	if err := os.Chmod(d.Dir, 0o711); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(d.Dir, "run"), 0o755); err != nil {
		return err
	}
	// State, logs: the directories (with their owners: qemu runs as
	// libvirt-qemu and needs some of them), not the system daemon's files.
	if err := copyTree(libDir, filepath.Join(d.Dir, "lib"), false, nil); err != nil {
		return err
	}
	if err := copyTree(logDir, filepath.Join(d.Dir, "log"), false, nil); err != nil {
		return err
	}
	// The cache holds QEMU's probed capabilities: a copy saves the daemon
	// probing qemu again.
	if err := copyTree(cacheDir, filepath.Join(d.Dir, "cache"), true, nil); err != nil {
		return err
	}
	// The configuration, without the system daemon's persistent domains
	// and without any autostart link: the default network (virbr0 and
	// dnsmasq) must not start here.
	etc := filepath.Join(d.Dir, "etc")
	if err := copyTree(etcDir, etc, true, func(rel string, fi fs.FileInfo) bool {
		if filepath.Base(filepath.Dir(rel)) == "autostart" || fi.Mode()&fs.ModeSymlink != 0 {
			return true
		}
		return filepath.Dir(rel) == "qemu" && strings.HasSuffix(rel, ".xml") && !fi.IsDir()
	}); err != nil {
		return err
	}
	uuid, err := newUUID()
	if err != nil {
		return err
	}
	d.HostUUID = uuid
	if d.LockManager, err = confString(filepath.Join(etc, "qemu.conf"), "lock_manager"); err != nil {
		return err
	}
	return editConf(filepath.Join(etc, "libvirtd.conf"), []string{
		"listen_tls = 0",
		"listen_tcp = 1",
		`auth_tcp = "none"`,
		fmt.Sprintf("listen_addr = %q", d.Addr),
		fmt.Sprintf("host_uuid = %q", uuid),
		// The log in Dir/log: warnings and errors.
		`log_outputs = "3:file:/var/log/libvirt/libvirtd.log"`,
	})
}

// launchScript runs in the daemon's namespaces: it bind-mounts the copies
// over libvirt's directories, names the host, and starts virtlogd,
// virtlockd, then libvirtd, each of which forks into the background and
// exits once ready. Arguments: Dir, the hostname, virtlogd's, libvirtd's
// and virtlockd's paths.
const launchScript = `set -e
dir=$1
mount --bind "$dir/run" /run/libvirt
mount --bind "$dir/lib" /var/lib/libvirt
mount --bind "$dir/log" /var/log/libvirt
mount --bind "$dir/cache" /var/cache/libvirt
mount --bind "$dir/etc" /etc/libvirt
hostname "$2"
"$3" -d -p "$dir/virtlogd.pid"
"$5" -d -p "$dir/virtlockd.pid"
"$4" -d --listen -p "$dir/libvirtd.pid"
`

// launch starts the daemons in a new mount and UTS namespace inside the
// network namespace, then waits for them.
func (d *Daemon) launch(ctx context.Context) error {
	// ip netns exec enters the network namespace (and a mount namespace
	// of its own, where /sys is the namespace's); unshare gives the daemons
	// a private mount namespace for the bind mounts (which die with the
	// last process in it) and their own hostname.
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", d.Name,
		"unshare", "-m", "-u", "--propagation", "private",
		"sh", "-c", launchScript, "sh", d.Dir, d.Hostname, virtlogdPath, libvirtdPath, virtlockdPath)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("start the daemons: %w: %s%s", err, bytes.TrimSpace(out), d.logTail())
	}
	if d.virtlogdPID, err = readPID(filepath.Join(d.Dir, "virtlogd.pid")); err != nil {
		return err
	}
	if d.virtlockdPID, err = readPID(filepath.Join(d.Dir, "virtlockd.pid")); err != nil {
		return err
	}
	if d.libvirtdPID, err = readPID(filepath.Join(d.Dir, "libvirtd.pid")); err != nil {
		return err
	}
	// libvirtd -d returns once the daemon is initialised; a bounded poll
	// covers the sockets' last steps all the same.
	if err := waitDial(ctx, "unix", d.Socket); err != nil {
		return fmt.Errorf("unix socket: %w%s", err, d.logTail())
	}
	if err := waitDial(ctx, "tcp", net.JoinHostPort(d.Addr, "16509")); err != nil {
		return fmt.Errorf("tcp from the root namespace: %w%s", err, d.logTail())
	}
	return nil
}

// KillLibvirtd kills the daemon's libvirtd with SIGKILL, as a crash of the
// daemon would, and waits until it is gone; its guests, its virtlogd and
// its virtlockd (with the guests' disk locks) go on (and keep the daemon's
// namespaces alive). StartLibvirtd brings it back.
func (d *Daemon) KillLibvirtd(ctx context.Context) error {
	pid := d.libvirtdPID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill libvirtd %d: %w", pid, err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for running(pid) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("libvirtd %d outlived SIGKILL: %w", pid, ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

// StartLibvirtd starts the daemon's libvirtd again after KillLibvirtd, in
// the namespaces of its virtlogd (with the same bind mounts), as an
// administrator restarting the service would, and waits for its socket.
func (d *Daemon) StartLibvirtd(ctx context.Context) error {
	t := strconv.Itoa(d.virtlogdPID)
	out, err := exec.CommandContext(ctx, "nsenter", "-t", t, "-m", "-u", "-n",
		libvirtdPath, "-d", "--listen", "-p", filepath.Join(d.Dir, "libvirtd.pid")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("restart libvirtd: %w: %s%s", err, bytes.TrimSpace(out), d.logTail())
	}
	if d.libvirtdPID, err = readPID(filepath.Join(d.Dir, "libvirtd.pid")); err != nil {
		return err
	}
	return waitDial(ctx, "unix", d.Socket)
}

// waitDial polls until addr accepts a connection or ctx ends.
func waitDial(ctx context.Context, network, addr string) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s %s: %w (last: %v)", network, addr, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// logTail is the end of the daemon's log, for error messages.
func (d *Daemon) logTail() string {
	b, err := os.ReadFile(d.LogPath())
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return "; libvirtd.log:\n" + strings.Join(lines, "\n")
}

// Close stops everything of the daemon: the processes in its network
// namespace (its guests' qemu first, then libvirtd, virtlockd and virtlogd
// by PID:
// SIGTERM, then SIGKILL after a bounded wait), the veth pair and the
// namespace (the bind mounts die with the last process of their mount
// namespace), its temporary directory and its record. It may be called
// more than once.
func (d *Daemon) Close() error {
	d.closeOnce.Do(func() {
		d.closeErr = teardown(record{Name: d.Name, Veth: d.veth, Dir: d.Dir}, d.libvirtdPID, d.virtlockdPID, d.virtlogdPID)
	})
	return d.closeErr
}

// teardown removes what rec names; the daemons' PIDs are 0 when unknown
// (then they are found in the namespace like any other process).
func teardown(rec record, daemonPIDs ...int) error {
	var errs []error
	if _, err := os.Stat(filepath.Join("/run/netns", rec.Name)); err == nil {
		inNS := func() map[int]bool {
			set := map[int]bool{}
			for _, pid := range netnsPIDs(rec.Name) {
				set[pid] = true
			}
			return set
		}
		// The guests (and anything else a daemon started) first, so that
		// libvirtd sees them go; then libvirtd, then virtlockd (which
		// holds the guests' disk locks), then virtlogd, which writes the
		// guests' console logs.
		var daemons []int
		for _, pid := range daemonPIDs {
			if pid > 0 && inNS()[pid] {
				daemons = append(daemons, pid)
			}
		}
		var others []int
		for pid := range inNS() {
			if !contains(daemons, pid) {
				others = append(others, pid)
			}
		}
		errs = append(errs, stop(others)...)
		for _, pid := range daemons {
			errs = append(errs, stop([]int{pid})...)
		}
		// Whatever is left (a daemon whose pid file was never written).
		var rest []int
		for pid := range inNS() {
			rest = append(rest, pid)
		}
		errs = append(errs, stop(rest)...)
		if left := netnsPIDs(rec.Name); len(left) > 0 {
			errs = append(errs, fmt.Errorf("processes %v still in namespace %s", left, rec.Name))
		}
	}
	if rec.Veth != "" && linkExists(rec.Veth) {
		if err := run(context.Background(), "ip", "link", "delete", rec.Veth); err != nil && linkExists(rec.Veth) {
			errs = append(errs, err)
		}
	}
	if _, err := os.Stat(filepath.Join("/run/netns", rec.Name)); err == nil {
		if err := run(context.Background(), "ip", "netns", "delete", rec.Name); err != nil {
			errs = append(errs, err)
		}
	}
	if rec.Dir != "" && strings.Contains(filepath.Base(rec.Dir), prefix) {
		if err := os.RemoveAll(rec.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	if rec.Name != "" {
		if err := os.Remove(filepath.Join(stateDir, rec.Name+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("private libvirt host %s: close: %w", rec.Name, err)
	}
	return nil
}

// sweep tears down the daemons whose owner process is gone (a test binary
// killed by a timeout runs no cleanup). The caller holds the state lock.
func sweep() {
	matches, _ := filepath.Glob(filepath.Join(stateDir, prefix+"*.json"))
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		var rec record
		if json.Unmarshal(b, &rec) != nil || rec.Name == "" || !strings.HasPrefix(rec.Name, prefix) {
			continue
		}
		if rec.OwnerPID > 0 && startTime(rec.OwnerPID) == rec.OwnerTime && rec.OwnerTime != "" {
			continue // its owner lives: it closes it
		}
		teardown(rec)
	}
}

// stop sends SIGTERM to pids, waits for them to end (a zombie has ended)
// up to stopWait, then sends SIGKILL to the rest and waits again.
func stop(pids []int) []error {
	if len(pids) == 0 {
		return nil
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGTERM)
	}
	left := waitGone(pids, stopWait)
	if len(left) == 0 {
		return nil
	}
	for _, pid := range left {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if left = waitGone(left, stopWait); len(left) > 0 {
		return []error{fmt.Errorf("processes %v survived SIGKILL", left)}
	}
	return nil
}

// waitGone polls until every pid has ended or d has passed, and returns
// those still alive.
func waitGone(pids []int, d time.Duration) []int {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var alive []int
		for _, pid := range pids {
			if running(pid) {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 || time.Now().After(deadline) {
			return alive
		}
		<-tick.C
	}
}

// running says whether pid exists and is not a zombie (a daemon's parent is
// init, which reaps it in its own time).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	return s[i+2] != 'Z' && s[i+2] != 'X'
}

// startTime is field 22 of /proc/PID/stat (when the process started, in
// clock ticks since boot), or "" if there is no such process.
func startTime(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// netnsPIDs lists the live processes in network namespace name.
func netnsPIDs(name string) []int {
	out, err := exec.Command("ip", "netns", "pids", name).Output()
	if err != nil {
		return nil
	}
	var pids []int
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		pid, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
		if err == nil && running(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// linkExists says whether the root namespace has an interface name.
func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

func contains(pids []int, pid int) bool {
	for _, p := range pids {
		if p == pid {
			return true
		}
	}
	return false
}

// run runs a command, its output in the error.
func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// readPID reads a pid file.
func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s: %q is not a pid", path, b)
	}
	return pid, nil
}

// newUUID is a random (version 4) UUID.
func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("host uuid: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// confString is the string value of key in a libvirt configuration file
// (the first uncommented `key = "value"` line: libvirt reads the first),
// "" when no line sets it.
func confString(path, key string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) != key {
			continue
		}
		v = strings.TrimSpace(v)
		if u, err := strconv.Unquote(v); err == nil {
			v = u
		}
		return v, nil
	}
	return "", nil
}

// editConf rewrites a libvirt configuration file with settings: the lines
// that set the same keys are dropped, the settings appended.
func editConf(path string, settings []string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	keys := map[string]bool{}
	for _, s := range settings {
		k, _, _ := strings.Cut(s, "=")
		keys[strings.TrimSpace(k)] = true
	}
	var out strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		k, _, ok := strings.Cut(line, "=")
		if ok && keys[strings.TrimSpace(k)] {
			continue
		}
		out.WriteString(line + "\n")
	}
	out.WriteString("\n# xenmanager libvirthost: a private daemon for tests\n")
	for _, s := range settings {
		out.WriteString(s + "\n")
	}
	return os.WriteFile(path, []byte(out.String()), 0o644)
}

// copyTree copies the directory src to dst with modes and owners: every
// directory, and the regular files too when files is set, except what skip
// (given the path relative to src) excludes.
func copyTree(src, dst string, files bool, skip func(rel string, fi fs.FileInfo) bool) error {
	return filepath.Walk(src, func(path string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if rel != "." && skip != nil && skip(rel, fi) {
			if fi.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		st, _ := fi.Sys().(*syscall.Stat_t)
		switch {
		case fi.IsDir():
			if err := os.Mkdir(target, fi.Mode().Perm()); err != nil {
				return err
			}
		case fi.Mode().IsRegular() && files:
			if err := copyFile(path, target, fi.Mode().Perm()); err != nil {
				return err
			}
		default:
			return nil
		}
		if err := os.Chmod(target, fi.Mode().Perm()); err != nil {
			return err
		}
		if st != nil {
			return os.Lchown(target, int(st.Uid), int(st.Gid))
		}
		return nil
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
