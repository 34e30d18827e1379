package guestimage_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"xenmanager/backend/agent/libvirt/guestimage"
	"xenmanager/backend/agent/libvirt/libvirthost"
)

// These tests boot the image with qemu-system-x86_64 directly (TCG, no
// libvirt). Their names contain QEMU: make test runs them in a step of
// their own, one package at a time. Each boot takes about 10 s of one core;
// the tests run in parallel.

// bootWait bounds every wait for the guest: a boot takes about 7 s under
// TCG alone, 15-20 s with a few at once on two cores.
const bootWait = 120 * time.Second

func TestParseHeartbeat(t *testing.T) {
	for _, c := range []struct {
		line   string
		n      int
		uptime float64
		ok     bool
	}{
		{"XENGUEST HEARTBEAT 1 2.60", 1, 2.60, true},
		{"\x1b[2JXENGUEST HEARTBEAT 42 107.13\r", 42, 107.13, true},
		{"XENGUEST HEARTBEAT x 1.0", 0, 0, false},
		{"XENGUEST HEARTBEAT 3", 0, 0, false},
		{"XENGUEST READY hostname=xenguest kernel=6.1.0-48-amd64", 0, 0, false},
	} {
		n, up, ok := guestimage.ParseHeartbeat(c.line)
		if n != c.n || up != c.uptime || ok != c.ok {
			t.Errorf("ParseHeartbeat(%q) = %d, %v, %v; want %d, %v, %v", c.line, n, up, ok, c.n, c.uptime, c.ok)
		}
	}
}

// TestQEMUGuestImageBoots builds (or reuses) the image, boots it, waits for
// READY and a heartbeat, and checks that xenguest.poweroff_after=2 powers
// the guest off: qemu exits by itself.
func TestQEMUGuestImageBoots(t *testing.T) {
	t.Parallel()
	img := ensure(t)
	q := boot(t, img, "xenguest.poweroff_after=2 xenguest.hostname=boots")
	ready := q.waitFor(t, guestimage.Ready)
	t.Logf("qemu start to %s: %v (%q)", guestimage.Ready, q.since(), ready)
	if !strings.Contains(ready, "hostname=boots") || !strings.Contains(ready, "kernel="+img.Version) {
		t.Errorf("ready line %q lacks hostname=boots or kernel=%s", ready, img.Version)
	}
	hb := q.waitFor(t, guestimage.Heartbeat)
	if n, _, ok := guestimage.ParseHeartbeat(hb); !ok || n != 1 {
		t.Errorf("first heartbeat %q: want counter 1", hb)
	}
	q.waitFor(t, guestimage.PowerOff+" after 2s")
	q.waitExit(t)
	t.Logf("qemu start to exit (powered off after 2 s): %v", q.since())
}

// TestQEMUGuestImageConsole types on the serial console: a line comes back
// as ECHO, and "poweroff" powers the guest off.
func TestQEMUGuestImageConsole(t *testing.T) {
	t.Parallel()
	img := ensure(t)
	q := boot(t, img, "")
	q.waitFor(t, guestimage.Ready)
	q.waitFor(t, guestimage.Heartbeat)
	q.typeLine(t, "hello guest")
	q.waitFor(t, guestimage.Echo+" hello guest")
	q.typeLine(t, "poweroff")
	q.waitFor(t, guestimage.PowerOff+" console")
	q.waitExit(t)
}

// TestQEMUGuestImagePowerButton presses the ACPI power button (QMP
// system_powerdown, what libvirt's shutdown does): acpid powers the guest
// off.
func TestQEMUGuestImagePowerButton(t *testing.T) {
	t.Parallel()
	img := ensure(t)
	qmp := filepath.Join(t.TempDir(), "qmp.sock")
	q := boot(t, img, "", "-qmp", "unix:"+qmp+",server=on,wait=off")
	q.waitFor(t, guestimage.Ready)
	if err := qmpCommand(qmp, "system_powerdown"); err != nil {
		t.Fatal(err)
	}
	q.waitFor(t, guestimage.PowerOff+" acpi")
	q.waitExit(t)
}

// TestQEMUGuestImagePanic checks xenguest.panic_after: the kernel panics
// (sysrq c) and, with panic=-1, reboots at once, which -no-reboot turns
// into qemu's exit.
func TestQEMUGuestImagePanic(t *testing.T) {
	t.Parallel()
	img := ensure(t)
	q := boot(t, img, "xenguest.panic_after=1 panic=-1")
	q.waitFor(t, guestimage.Ready)
	q.waitFor(t, "XENGUEST PANIC after 1s")
	q.waitFor(t, "Kernel panic")
	q.waitExit(t)
}

// ensure builds or reuses the image, after checking that the machine can
// build and boot it.
func ensure(t *testing.T) guestimage.Image {
	t.Helper()
	libvirthost.Require(t, guestimage.Available())
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		libvirthost.Require(t, fmt.Errorf("qemu-system-x86_64 not found (Debian: qemu-system-x86): %w", err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	img, err := guestimage.Ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("guest image %s (kernel %s) in %v", filepath.Dir(img.Kernel), img.Version, time.Since(start))
	return img
}

// qemu is a guest booted by qemu-system-x86_64, its console on stdio.
type qemu struct {
	start time.Time
	stdin io.WriteCloser
	done  chan struct{} // closed when qemu has exited
	err   error         // qemu's exit, once done is closed

	mu     sync.Mutex
	out    []string      // console lines so far, \r and trailing blanks removed
	eof    bool          // the console has ended
	notify chan struct{} // closed (and replaced) when out grows or ends
	pos    int           // the next line waitFor reads
}

// boot starts qemu on img with Cmdline and extra kernel options, and kills
// it when the test ends if it is still running.
func boot(t *testing.T, img guestimage.Image, options string, qemuArgs ...string) *qemu {
	t.Helper()
	args := append([]string{
		"-machine", "accel=tcg", "-m", "128", "-nographic", "-no-reboot",
		"-kernel", img.Kernel, "-initrd", img.Initrd,
		"-append", strings.TrimSpace(guestimage.Cmdline + " " + options),
	}, qemuArgs...)
	cmd := exec.Command("qemu-system-x86_64", args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	q := &qemu{start: time.Now(), stdin: stdin, done: make(chan struct{}), notify: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			q.mu.Lock()
			q.out = append(q.out, strings.TrimRight(sc.Text(), "\r\n\t "))
			close(q.notify)
			q.notify = make(chan struct{})
			q.mu.Unlock()
		}
		q.mu.Lock()
		q.eof = true
		close(q.notify)
		q.notify = make(chan struct{})
		q.mu.Unlock()
	}()
	go func() {
		<-read // Wait closes stdout: read it all first
		q.err = cmd.Wait()
		close(q.done)
	}()
	t.Cleanup(func() {
		select {
		case <-q.done:
		default:
			cmd.Process.Kill()
			<-q.done
		}
	})
	return q
}

// since is the time since qemu started.
func (q *qemu) since() time.Duration { return time.Since(q.start).Round(10 * time.Millisecond) }

// waitFor reads the console on from the last line it read until a line
// contains s, and returns that line.
func (q *qemu) waitFor(t *testing.T, s string) string {
	t.Helper()
	timer := time.NewTimer(bootWait)
	defer timer.Stop()
	for {
		q.mu.Lock()
		for q.pos < len(q.out) {
			line := q.out[q.pos]
			q.pos++
			if strings.Contains(line, s) {
				q.mu.Unlock()
				return line
			}
		}
		eof, notify := q.eof, q.notify
		q.mu.Unlock()
		if eof {
			<-q.done
			t.Fatalf("qemu exited (%v) before printing %q; output:\n%s", q.err, s, q.output())
		}
		select {
		case <-notify:
		case <-timer.C:
			t.Fatalf("no %q within %v; output:\n%s", s, bootWait, q.output())
		}
	}
}

// waitExit waits for qemu to exit by itself, successfully.
func (q *qemu) waitExit(t *testing.T) {
	t.Helper()
	select {
	case <-q.done:
		if q.err != nil {
			t.Fatalf("qemu: %v; output:\n%s", q.err, q.output())
		}
	case <-time.After(bootWait):
		t.Fatalf("qemu still running %v after the guest should have stopped; output:\n%s", bootWait, q.output())
	}
}

// typeLine types a line on the serial console.
func (q *qemu) typeLine(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(q.stdin, line+"\r"); err != nil {
		t.Fatalf("type %q: %v", line, err)
	}
}

// output is the console so far.
func (q *qemu) output() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return strings.Join(q.out, "\n")
}

// qmpCommand runs one QMP command without arguments on the socket at path.
func qmpCommand(path, command string) error {
	c, err := net.DialTimeout("unix", path, 10*time.Second)
	if err != nil {
		return fmt.Errorf("qmp: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	dec := json.NewDecoder(c)
	var greeting map[string]any
	if err := dec.Decode(&greeting); err != nil {
		return fmt.Errorf("qmp greeting: %w", err)
	}
	for _, cmd := range []string{"qmp_capabilities", command} {
		if _, err := fmt.Fprintf(c, `{"execute":%q}`+"\n", cmd); err != nil {
			return fmt.Errorf("qmp %s: %w", cmd, err)
		}
		for {
			var reply map[string]any
			if err := dec.Decode(&reply); err != nil {
				return fmt.Errorf("qmp %s: %w", cmd, err)
			}
			if e, ok := reply["error"]; ok {
				return fmt.Errorf("qmp %s: %v", cmd, e)
			}
			if _, ok := reply["return"]; ok {
				break
			}
			// An asynchronous event: read on.
		}
	}
	return nil
}
