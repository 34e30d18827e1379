package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	"xenmanager/backend/agent/libvirt/guestimage"
	"xenmanager/backend/agent/libvirt/libvirthost"
)

// systemSocket is this machine's libvirtd, the first host's.
const systemSocket = libvirthost.SystemSocket

// virtlogdSocket is virtlogd's: libvirtd needs it to start a guest with a
// logged serial console.
const virtlogdSocket = "/run/libvirt/virtlogd-sock"

// aptLine installs what the lab needs on Debian 12 (the packages .ci/run
// installs for the tests that boot real guests).
const aptLine = "apt-get install --no-install-recommends libvirt-daemon-system qemu-system-x86 qemu-utils busybox-static cpio iproute2 xz-utils"

// startDaemons says how to start libvirt's daemons on a machine without
// systemd (as .ci/run does), and with it.
const startDaemons = `start libvirt's daemons as root, without systemd:
        virtlogd -d
        libvirtd -d
    (with systemd: systemctl start libvirtd)`

// libvirtTimeout bounds a question to a libvirtd.
const libvirtTimeout = 10 * time.Second

// problem is something the machine lacks: what, and how to get it.
type problem struct{ what, how string }

// preflight says what the lab lacks on this machine, before anything is
// started or created; and whether the second host will run (with a note
// saying why not, when --second auto leaves it out).
func preflight(o options, dataDir string) (problems []problem, second bool, note string) {
	for _, name := range []string{"xenmanager", "xenagent"} {
		p := filepath.Join(o.bin, name)
		if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			problems = append(problems, problem{p + " is missing", "build it with make build (make run-libvirt does), or name the directory with --bin"})
		}
	}

	installed := true
	for _, p := range []string{"/usr/sbin/libvirtd", "/usr/sbin/virtlogd"} {
		if _, err := os.Stat(p); err != nil {
			installed = false
		}
	}
	_, qemuErr := exec.LookPath("qemu-system-x86_64")
	switch {
	case !installed:
		problems = append(problems, problem{"libvirt's daemons are not installed (no /usr/sbin/libvirtd or /usr/sbin/virtlogd)",
			"install them and QEMU, on Debian 12:\n        " + aptLine + "\n    then " + startDaemons})
	default:
		caps, err := systemCapabilities()
		switch {
		case err != nil && (errors.Is(err, fs.ErrPermission) || os.Geteuid() != 0 && answers(systemSocket)):
			problems = append(problems, problem{fmt.Sprintf("libvirtd on %s refuses this user: %v", systemSocket, err),
				"run the lab as root (sudo make run-libvirt), or as a member of group libvirt"})
		case err != nil:
			problems = append(problems, problem{fmt.Sprintf("libvirtd does not answer on %s: %v", systemSocket, err),
				startDaemons + "\n    Installed? On Debian 12: " + aptLine})
		case !strings.Contains(caps, "<domain type='qemu'"):
			problems = append(problems, problem{"this machine's libvirtd knows no QEMU emulator (its capabilities have no domain type qemu)",
				"install QEMU (Debian 12: apt-get install --no-install-recommends qemu-system-x86), then restart libvirtd"})
		}
		if err == nil && !answers(virtlogdSocket) {
			problems = append(problems, problem{"virtlogd does not answer on " + virtlogdSocket + " (libvirtd needs it to start a guest with a logged console)",
				"start it as root: virtlogd -d"})
		}
		if lm, lerr := libvirthost.SystemLockManager(); err == nil && lerr == nil && lm == "lockd" && !answers(libvirthost.LockdSocket) {
			problems = append(problems, problem{"virtlockd does not answer on " + libvirthost.LockdSocket + " (qemu.conf sets lock_manager = \"lockd\": libvirtd needs it to start any guest)",
				"start it as root: virtlockd -d"})
		}
	}
	if qemuErr != nil && installed {
		problems = append(problems, problem{"QEMU is missing (no qemu-system-x86_64 in PATH)",
			"on Debian 12: apt-get install --no-install-recommends qemu-system-x86"})
	}
	if err := guestimage.Available(); err != nil {
		problems = append(problems, problem{err.Error(), "on Debian 12: " + aptLine})
	}

	switch o.second {
	case "yes", "auto":
		err := libvirthost.Available()
		switch {
		case err == nil:
			second = true
		case o.second == "yes":
			how := "run as root (sudo make run-libvirt), with iproute2, util-linux and libvirt-daemon-system installed; or run one host with --second no (LAB_SECOND=no)"
			problems = append(problems, problem{"the second libvirt host cannot start: " + err.Error(), how})
		default:
			note = "one libvirt host only: " + err.Error() + " (the second host, for migration, needs root and namespaces)"
		}
	}

	if l, err := net.Listen("tcp", o.listen); err != nil {
		problems = append(problems, problem{fmt.Sprintf("the manager's address %s is not free: %v", o.listen, err),
			"stop what listens there (another make run-libvirt?), or choose another address: make run-libvirt LAB_LISTEN=:10002 (xenlab --listen)"})
	} else {
		l.Close()
	}

	if p := reachableByQEMU(filepath.Join(dataDir, "repo", "Kernels")); p != nil {
		problems = append(problems, *p)
	}
	return problems, second, note
}

// systemCapabilities asks this machine's libvirtd for its capabilities XML.
func systemCapabilities() (string, error) {
	var caps string
	err := withLibvirt(systemSocket, func(l *golibvirt.Libvirt) error {
		var err error
		caps, err = l.ConnectGetCapabilities()
		return err
	})
	return caps, err
}

// withLibvirt connects to the libvirtd of socket (qemu:///system), calls
// fn, and disconnects; bounded by libvirtTimeout (a daemon that accepts
// connections but does not answer is an error too).
func withLibvirt(socket string, fn func(*golibvirt.Libvirt) error) error {
	done := make(chan error, 1)
	go func() {
		l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(socket), dialers.WithLocalTimeout(libvirtTimeout)))
		if err := l.ConnectToURI(golibvirt.QEMUSystem); err != nil {
			done <- err
			return
		}
		err := fn(l)
		l.Disconnect()
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(libvirtTimeout):
		return fmt.Errorf("no answer within %v", libvirtTimeout)
	}
}

// answers says whether a daemon accepts connections on a unix socket.
func answers(socket string) bool {
	c, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// qemuConf is where libvirt's QEMU driver is configured, with the user
// QEMU runs as.
const qemuConf = "/etc/libvirt/qemu.conf"

// defaultQEMUUser is the user Debian's libvirt runs QEMU as when qemu.conf
// names none.
const defaultQEMUUser = "libvirt-qemu"

var confUserRx = regexp.MustCompile(`^\s*user\s*=\s*"([^"]*)"`)

// reachableByQEMU checks that the user QEMU runs as can traverse every
// directory down to dir (its existing part): libvirt gives QEMU the guest
// image's files, not the directories above them. A problem names the first
// directory it cannot enter.
func reachableByQEMU(dir string) *problem {
	name := defaultQEMUUser
	if f, err := os.Open(qemuConf); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if m := confUserRx.FindStringSubmatch(sc.Text()); m != nil {
				name = m[1]
			}
		}
		f.Close()
	}
	var uid int
	var gids []int
	if n, ok := strings.CutPrefix(name, "+"); ok {
		id, err := strconv.Atoi(n)
		if err != nil {
			return nil
		}
		uid = id
	} else {
		u, err := user.Lookup(name)
		if err != nil {
			return nil // no such user: nothing to check against
		}
		uid, _ = strconv.Atoi(u.Uid)
		if groups, err := u.GroupIds(); err == nil {
			for _, g := range groups {
				if id, err := strconv.Atoi(g); err == nil {
					gids = append(gids, id)
				}
			}
		}
	}
	if uid == 0 {
		return nil
	}
	for d := dir; ; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil {
			if !canEnter(fi, uid, gids) {
				return &problem{
					fmt.Sprintf("QEMU runs as %s, which cannot enter %s (mode %04o): the guest image in the lab's repository would be out of its reach", name, d, fi.Mode().Perm()),
					"choose a data directory it can reach, such as make run-libvirt LAB_DATA=/var/tmp/xenlab-data (xenlab --data), or give the directory o+x"}
			}
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// canEnter says whether uid, in groups gids, may traverse the directory.
func canEnter(fi fs.FileInfo, uid int, gids []int) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	perm := fi.Mode().Perm()
	switch {
	case int(st.Uid) == uid:
		return perm&0o100 != 0
	case containsInt(gids, int(st.Gid)):
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}

func containsInt(xs []int, x int) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}
