package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"xenmanager/backend/agent/libvirt/guestimage"
	"xenmanager/backend/agent/libvirt/libvirthost"
)

var (
	managerReadyRx = regexp.MustCompile(`^xenmanager listening on (\S+)`)
	agentReadyRx   = regexp.MustCompile(`^xenagent listening on (\S+)`)
)

// lab is what the lab runs; down stops whatever of it has started.
type lab struct {
	o   options
	out io.Writer

	dir      string // the data directory, absolute
	repoDir  string // the repository's fsLocation
	started  bool   // past the preflight: down has something to do
	lockFile *os.File

	second      *libvirthost.Daemon
	manager     *proc
	managerAddr string // where xenlab dials the manager
	managerPort string
	agents      []*agentProc
	exited      chan *proc // the lab's processes, as they end
	shell       *managerShell
	guestStatus string // guest1's, once set up
}

// agentProc is a running xenagent.
type agentProc struct {
	name string
	p    *proc
	port string
}

func (l *lab) say(format string, args ...any) {
	fmt.Fprintf(l.out, "xenlab: "+format+"\n", args...)
}

// up checks the machine, then starts the lab and sets its fleet up.
func (l *lab) up(ctx context.Context) error {
	dir, err := filepath.Abs(l.o.data)
	if err != nil {
		return err
	}
	l.dir, l.repoDir = dir, filepath.Join(dir, "repo")
	problems, withSecond, note := preflight(l.o, dir)
	if strings.ContainsAny(dir, "\"'") {
		problems = append(problems, problem{"the data directory's path " + dir + " holds a quote character", "choose another one with LAB_DATA (xenlab --data)"})
	}
	if len(problems) > 0 {
		fmt.Fprintln(l.out, "xenlab: this machine lacks what the lab needs:")
		for _, p := range problems {
			fmt.Fprintf(l.out, "\n  - %s\n    %s\n", p.what, p.how)
		}
		fmt.Fprintln(l.out)
		return errors.New("cannot start the lab (above); nothing was started or created")
	}
	if note != "" {
		l.say("%s", note)
	}
	l.started = true
	l.exited = make(chan *proc, 8)

	// The logs hold the admin password the manager prints on its first
	// start: they, the agents' data and the manager's are private.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range []string{filepath.Join(dir, "logs"), filepath.Join(dir, "agents")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	// QEMU, which runs as another user, must traverse the data directory
	// to reach the repository; its other subdirectories are private.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	if err := l.lock(); err != nil {
		return err
	}

	l.say("the guest image (the first time, apt-get downloads about 70 MB and the build takes about 10 s)")
	ictx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	img, err := guestimage.Ensure(ictx)
	cancel()
	if err != nil {
		return fmt.Errorf("the guest image: %w", err)
	}
	l.say("guest image: kernel %s, %s", img.Version, filepath.Dir(img.Kernel))

	hosts := []struct {
		name string
		args []string
	}{{firstHost, nil}}
	if withSecond {
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		l.second, err = libvirthost.Start(sctx, libvirthost.Options{Hostname: secondHost})
		cancel()
		if err != nil {
			return fmt.Errorf("the second libvirt host: %w", err)
		}
		l.say("second libvirt host: a private libvirtd in network namespace %s, at %s", l.second.Name, l.second.URI)
		hosts = append(hosts, struct {
			name string
			args []string
		}{secondHost, []string{"--libvirt-socket", l.second.Socket, "--libvirt-migration-uri", l.second.URI, "--migration-host", l.second.Addr}})
	}

	p, m, err := startProc(ctx, "the manager", filepath.Join(dir, "logs", "manager.log"), managerReadyRx, l.exited,
		filepath.Join(l.o.bin, "xenmanager"), "serve", "--listen", l.o.listen, "--data", filepath.Join(dir, "manager"))
	if err != nil {
		return err
	}
	l.manager = p
	host, port, err := net.SplitHostPort(m[1])
	if err != nil {
		return fmt.Errorf("the manager listens on %q: %w", m[1], err)
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	l.managerAddr, l.managerPort = net.JoinHostPort(host, port), port
	l.say("manager: listening on %s (log: %s)", m[1], filepath.Join(dir, "logs", "manager.log"))

	passwords := map[string]string{}
	for _, h := range hosts {
		data := filepath.Join(dir, "agents", h.name)
		logPath := filepath.Join(dir, "logs", h.name+".log")
		args := append([]string{"--listen", "127.0.0.1:0", "--data", data, "--hostname", h.name,
			"--hypervisor", "libvirt", "--libvirt-uri", "qemu:///system"}, h.args...)
		p, m, err := startProc(ctx, "agent "+h.name, logPath, agentReadyRx, l.exited, filepath.Join(l.o.bin, "xenagent"), args...)
		if err != nil {
			return err
		}
		_, port, err := net.SplitHostPort(m[1])
		if err != nil {
			return fmt.Errorf("agent %s listens on %q: %w", h.name, m[1], err)
		}
		l.agents = append(l.agents, &agentProc{name: h.name, p: p, port: port})
		pw, err := os.ReadFile(filepath.Join(data, "agent-password"))
		if err != nil {
			return fmt.Errorf("agent %s's password: %w", h.name, err)
		}
		passwords[h.name] = strings.TrimSpace(string(pw))
		l.say("agent %s: listening on %s (log: %s)", h.name, m[1], logPath)
	}

	pw, err := os.ReadFile(filepath.Join(dir, "manager", "admin-password"))
	if err != nil {
		return fmt.Errorf("the manager's admin password: %w", err)
	}
	l.shell, err = dialManager(ctx, l.managerAddr, strings.TrimSpace(string(pw)), filepath.Join(dir, "known_hosts"))
	if err != nil {
		return err
	}
	return l.setup(ctx, img, passwords)
}

// setup makes the fleet through the manager's shell: every agent
// discovered (again), and what the manager lacks of the pool, its servers,
// the repository and guest1.
func (l *lab) setup(ctx context.Context, img guestimage.Image, passwords map[string]string) error {
	send := func(cmd string) error {
		fmt.Fprintf(l.out, "  OVM> %s\n", mask(cmd))
		_, err := l.shell.run(ctx, cmd)
		if err != nil {
			return fmt.Errorf("setting the lab up: %w", err)
		}
		return nil
	}
	l.say("setting the fleet up through the manager's shell:")
	var names []string
	for _, a := range l.agents {
		names = append(names, a.name)
		if err := send(discoverCommand(a.port, passwords[a.name])); err != nil {
			return err
		}
	}
	f, err := readFleet(ctx, l.shell, names)
	if err != nil {
		return fmt.Errorf("setting the lab up: %w", err)
	}
	cmds, err := poolCommands(f, names, l.repoDir)
	if err != nil {
		return err
	}
	for _, c := range append(refreshCommands(f, names), cmds...) {
		if err := send(c); err != nil {
			return err
		}
	}
	if err := copyImage(img, l.repoDir); err != nil {
		return fmt.Errorf("copy the guest image into the repository: %w", err)
	}
	l.say("the guest image is in %s", filepath.Join(l.repoDir, "Kernels"))
	guest := guestCommands(f)
	for _, c := range guest {
		if err := send(c); err != nil {
			return err
		}
	}
	if len(cmds) == 0 && len(guest) == 0 {
		l.say("pool %s, repository %s and Vm %s are there from an earlier run", poolName, repoName, guestName)
	}
	l.guestStatus = "Stopped" // as create Vm makes it
	if len(guest) == 0 {
		r, err := l.shell.run(ctx, "show Vm name="+guestName)
		if err != nil {
			return fmt.Errorf("setting the lab up: %w", err)
		}
		l.guestStatus = r.attrs["Status"]
	}
	return nil
}

// lock keeps a second xenlab off the same data directory.
func (l *lab) lock() error {
	path := filepath.Join(l.dir, "xenlab.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("another xenlab runs on %s (%v): stop it first, or use another data directory (LAB_DATA)", l.dir, err)
	}
	l.lockFile = f
	return nil
}

// printHowTo says how to reach the lab and what to try.
func (l *lab) printHowTo() {
	pwFile := filepath.Join(l.o.data, "manager", "admin-password")
	hosts := firstHost + " (this machine's libvirtd)"
	if l.second != nil {
		hosts += " and " + secondHost + " (a private libvirtd in network namespace " + l.second.Name + ")"
	}
	w := l.out
	fmt.Fprintf(w, "\nxenlab: ready: a manager, %d libvirt host(s), pool %s, repository %s, Vm %s (%s).\n\n", len(l.agents), poolName, repoName, guestName, l.guestStatus)
	fmt.Fprintf(w, "Connect (user admin; the password is in %s):\n\n", pwFile)
	fmt.Fprintf(w, "    ssh admin@localhost -p %s\n", l.managerPort)
	fmt.Fprintf(w, "    sshpass -f %s ssh admin@localhost -p %s     # without typing it\n\n", pwFile, l.managerPort)
	fmt.Fprintf(w, "The servers are %s. At the OVM> prompt, try:\n\n", hosts)
	try := [][2]string{
		{"list Server", ""},
		{"start Vm name=" + guestName, "a real QEMU guest boots on " + firstHost + " (software emulation: about 7 s)"},
		{"console Vm name=" + guestName, "its serial console: XENGUEST READY, then a XENGUEST HEARTBEAT a second; Ctrl-] detaches"},
	}
	if l.second != nil {
		try = append(try,
			[2]string{"migrate Vm name=" + guestName + " destServer=" + secondHost, "live migration (about 3 s): the heartbeat goes on counting there"},
			[2]string{"", "(one way only: " + firstHost + "'s libvirtd does not listen on TCP; stop and start brings it back)"})
	}
	try = append(try, [2]string{"stop Vm name=" + guestName, "the guest powers off (ACPI)"})
	width := 0
	for _, t := range try {
		width = max(width, len(t[0]))
	}
	for _, t := range try {
		fmt.Fprintf(w, "    %-*s   %s\n", width, t[0], t[1])
	}
	fmt.Fprintln(w)
	if l.manager != nil {
		fmt.Fprintf(w, "The manager's host key is %s (ssh asks about it on first connect).\n", l.hostKeyFingerprint())
	}
	fmt.Fprintf(w, "Logs: %s. Ctrl-C here stops the lab: running guests are killed, everything stopped; %s stays for the next run.\n\n", filepath.Join(l.o.data, "logs"), l.o.data)
	l.say("ready")
}

// hostKeyFingerprint is the manager's host key as recorded in the lab's
// known_hosts, as ssh prints it.
func (l *lab) hostKeyFingerprint() string {
	data, err := os.ReadFile(filepath.Join(l.dir, "known_hosts"))
	if err != nil {
		return "(unknown)"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if fp := fingerprintOfLine(line); fp != "" {
			return fp
		}
	}
	return "(unknown)"
}

// wait blocks until the lab is asked to stop, or one of its processes
// ends by itself (an error).
func (l *lab) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case p := <-l.exited:
		return fmt.Errorf("%s exited while the lab ran (%v); the end of its log, %s:\n%s", p.name, p.err, p.logPath, tailFile(p.logPath, 15))
	}
}

// down stops whatever of the lab has started and leaves only the data
// directory: the guests still running are killed through the manager,
// then the manager and the agents stop (SIGINT, SIGKILL after a bounded
// wait), a domain of the lab's VMs still on this machine's libvirtd is
// destroyed, and the private libvirt host is closed.
func (l *lab) down() {
	if !l.started {
		return
	}
	if l.manager != nil && !l.manager.exitedEarly() {
		l.killGuests()
	}
	if l.shell != nil {
		l.shell.close()
	}
	var wg sync.WaitGroup
	for _, p := range l.procs() {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop() }()
	}
	wg.Wait()
	if len(l.procs()) > 0 {
		l.say("stopped the manager and the agents")
	}
	l.destroyLeftovers()
	if l.second != nil {
		if err := l.second.Close(); err != nil {
			l.say("closing the second libvirt host: %v", err)
		} else {
			l.say("closed the second libvirt host (namespace %s)", l.second.Name)
		}
	}
	if l.lockFile != nil {
		l.lockFile.Close()
	}
	l.say("stopped; the data stay in %s", l.dir)
}

// procs are the lab's processes that have started.
func (l *lab) procs() []*proc {
	var ps []*proc
	if l.manager != nil {
		ps = append(ps, l.manager)
	}
	for _, a := range l.agents {
		ps = append(ps, a.p)
	}
	return ps
}

// killGuests kills, through the manager, every VM that runs or is paused:
// the libvirt domains are transient, so a guest left running would outlive
// the lab (on this machine's libvirtd).
func (l *lab) killGuests() {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if l.shell == nil {
		return
	}
	for _, status := range []string{"Running", "Paused"} {
		r, err := l.shell.run(ctx, "list Vm status="+status)
		if err != nil {
			l.say("listing the VMs to kill: %v", err)
			return
		}
		for _, row := range r.rows {
			if _, err := l.shell.run(ctx, "kill Vm id="+row["id"]); err != nil {
				l.say("killing Vm %s: %v", row["name"], err)
			} else {
				l.say("killed Vm %s (it was %s)", row["name"], status)
			}
		}
	}
}

// destroyLeftovers destroys the domains of the lab's VMs (named by their
// ids, the directories of the repository's VirtualMachines) that are still
// on this machine's libvirtd: when the manager could not kill them.
func (l *lab) destroyLeftovers() {
	entries, err := os.ReadDir(filepath.Join(l.repoDir, "VirtualMachines"))
	if err != nil || len(entries) == 0 {
		return
	}
	err = withLibvirt(systemSocket, func(lv *golibvirt.Libvirt) error {
		for _, e := range entries {
			dom, err := lv.DomainLookupByName(e.Name())
			if err != nil {
				continue // not there: the usual case
			}
			if err := lv.DomainDestroy(dom); err != nil {
				l.say("destroying the leftover domain %s: %v", e.Name(), err)
			} else {
				l.say("destroyed the leftover domain %s on this machine's libvirtd", e.Name())
			}
		}
		return nil
	})
	if err != nil {
		l.say("looking for leftover domains on this machine's libvirtd: %v", err)
	}
}
