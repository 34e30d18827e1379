package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"xenmanager/backend/agent/libvirt/guestimage"
	"xenmanager/backend/agent/libvirt/libvirthost"
)

// needQEMU skips the test with one loud line when this machine's libvirtd,
// QEMU or what builds the guest image is missing, and fails it in CI
// (.ci/run installs and starts them).
func needQEMU(t *testing.T) {
	t.Helper()
	var qemu, libvirtd error
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		qemu = fmt.Errorf("QEMU (qemu-system-x86_64) is missing: %w", err)
	}
	if _, err := systemCapabilities(); err != nil {
		libvirtd = fmt.Errorf("no libvirtd answers on %s: %w", systemSocket, err)
	}
	libvirthost.Require(t, guestimage.Available(), qemu, libvirtd)
}

// buildAll builds xenlab, xenmanager and xenagent into a directory.
func buildAll(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, pkg := range []string{".", "../xenmanager", "../xenagent"} {
		if out, err := exec.Command("go", "build", "-o", dir, pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	return dir
}

// labRun is a running xenlab and its output.
type labRun struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
}

func (r *labRun) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

var sshPortRx = regexp.MustCompile(`ssh admin@localhost -p (\d+)`)

// startLab runs xenlab on data and waits until it is ready; it returns the
// run and the manager's port.
func startLab(t *testing.T, bin, data string) (*labRun, string) {
	t.Helper()
	r := &labRun{done: make(chan struct{})}
	r.cmd = exec.Command(filepath.Join(bin, "xenlab"), "--bin", bin, "--data", data, "--listen", "127.0.0.1:0")
	pr, pw := io.Pipe()
	r.cmd.Stdout, r.cmd.Stderr = pw, pw
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		once := sync.Once{}
		for sc.Scan() {
			r.mu.Lock()
			r.out.WriteString(sc.Text() + "\n")
			r.mu.Unlock()
			if sc.Text() == "xenlab: ready" {
				once.Do(func() { close(ready) })
			}
		}
	}()
	go func() { r.cmd.Wait(); pw.Close(); close(r.done) }()
	t.Cleanup(func() {
		r.cmd.Process.Signal(os.Interrupt)
		<-r.done
	})
	select {
	case <-ready:
	case <-r.done:
		t.Fatalf("xenlab exited before it was ready (%v):\n%s", r.cmd.ProcessState, r.output())
	case <-time.After(10 * time.Minute):
		t.Fatalf("xenlab was not ready within 10 minutes:\n%s", r.output())
	}
	m := sshPortRx.FindStringSubmatch(r.output())
	if m == nil {
		t.Fatalf("xenlab did not say how to connect:\n%s", r.output())
	}
	return r, m[1]
}

// stop interrupts the lab as Ctrl-C does and waits for it; it must exit 0.
func (r *labRun) stop(t *testing.T) {
	t.Helper()
	r.cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("xenlab did not stop within 2 minutes of SIGINT:\n%s", r.output())
	}
	if !r.cmd.ProcessState.Success() {
		t.Fatalf("xenlab exited with %v:\n%s", r.cmd.ProcessState, r.output())
	}
}

// adminShell logs in to the lab's manager as xenlab does.
func adminShell(t *testing.T, data, port string) *managerShell {
	t.Helper()
	pw, err := os.ReadFile(filepath.Join(data, "manager", "admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := dialManager(context.Background(), "127.0.0.1:"+port, strings.TrimSpace(string(pw)), filepath.Join(data, "known_hosts"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.close)
	return m
}

// TestQEMULabRunsAndStopsCleanly runs the lab of make run-libvirt for real:
// it comes up with guest1, which starts on the machine's libvirtd; SIGINT
// kills the guest and stops everything, leaving no domain and no network
// namespace; a second run on the same data directory reuses what the first
// made.
func TestQEMULabRunsAndStopsCleanly(t *testing.T) {
	needQEMU(t)
	bin := buildAll(t)
	// QEMU runs as another user and must reach the repository in the data
	// directory (t.TempDir's are private to the user).
	base, err := os.MkdirTemp("", "xenlab-qemu-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(base, "data")

	lab, port := startLab(t, bin, data)
	m := adminShell(t, data, port)
	r, err := m.run(context.Background(), "show Vm name=guest1")
	if err != nil {
		t.Fatal(err)
	}
	if r.attrs["Status"] != "Stopped" || r.attrs["Kernel"] != "Kernels/vmlinuz" {
		t.Fatalf("guest1 after the lab came up: %v", r.attrs)
	}
	id := r.attrs["Id"]
	if r, err = m.run(context.Background(), "start Vm name=guest1"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.attrs["Server"], "["+firstHost+"]") || r.attrs["Status"] != "Running" {
		t.Fatalf("guest1 after start: %v", r.attrs)
	}
	if !domainExists(t, id) {
		t.Fatalf("guest1 runs, but the machine's libvirtd has no domain %s", id)
	}
	ns := regexp.MustCompile(`network namespace (xmlvh\d+)`).FindStringSubmatch(lab.output())
	lab.stop(t)
	out := lab.output()
	if !strings.Contains(out, "killed Vm guest1") {
		t.Errorf("xenlab did not say it killed guest1:\n%s", out)
	}
	if domainExists(t, id) {
		t.Errorf("domain %s is still on the machine's libvirtd after the lab stopped", id)
	}
	if ns != nil {
		if _, err := os.Stat(filepath.Join("/run/netns", ns[1])); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("network namespace %s is still there after the lab stopped (%v)", ns[1], err)
		}
	} else {
		t.Logf("one libvirt host only:\n%s", out)
	}

	lab, port = startLab(t, bin, data)
	if out := lab.output(); !strings.Contains(out, "from an earlier run") || strings.Contains(out, "OVM> create") {
		t.Errorf("the second run did not reuse the first's pool, repository and guest1:\n%s", out)
	}
	m = adminShell(t, data, port)
	if r, err := m.run(context.Background(), "show Vm name=guest1"); err != nil || r.attrs["Status"] != "Stopped" || r.attrs["Id"] != id {
		t.Errorf("guest1 on the second run: %v, %v", r.attrs, err)
	}
	lab.stop(t)
}

// domainExists says whether the machine's libvirtd has a domain of that
// name.
func domainExists(t *testing.T, name string) bool {
	t.Helper()
	found := false
	err := withLibvirt(systemSocket, func(l *golibvirt.Libvirt) error {
		_, err := l.DomainLookupByName(name)
		found = err == nil
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
