package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tmuxServer is a tmux server of this test's own (its own socket), driving
// the stock OpenSSH client in panes as an operator would.
type tmuxServer struct {
	t      *testing.T
	socket string
}

func newTmux(t *testing.T) *tmuxServer {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("tmux is required in CI: %v", err)
		}
		t.Skip("tmux not installed")
	}
	x := &tmuxServer{t: t, socket: fmt.Sprintf("xm-e2e-%d-%d", os.Getpid(), time.Now().UnixNano())}
	// The test's temporary directory is removed after the server is
	// killed and its panes are gone (cleanups run last first), so that no
	// pane writes its status file into it while it is removed; TempDir
	// registers its removal on the first call.
	t.TempDir()
	t.Cleanup(x.kill)
	// The server outlives its sessions: otherwise it exits with the last
	// one, and a session opened right after that one ended races its exit
	// ("server exited unexpectedly").
	x.run("start-server", ";", "set-option", "-g", "exit-empty", "off")
	return x
}

// kill kills the server and waits, for up to 10 s, until the processes
// of its panes are gone: a pane's shell whose ssh the end of the test cut
// may still be writing its status file.
func (x *tmuxServer) kill() {
	out, _ := exec.Command("tmux", "-L", x.socket, "list-panes", "-a", "-F", "#{pane_pid}").Output()
	exec.Command("tmux", "-L", x.socket, "kill-server").Run()
	deadline := time.Now().Add(10 * time.Second)
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		for processLives(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond) // polling a condition, bounded
		}
	}
}

// processLives reports whether pid is a process that has not exited (a
// zombie nobody reaps has).
func processLives(pid int) bool {
	state := procState(pid)
	return state != "gone" && state != "Z"
}

func (x *tmuxServer) run(args ...string) string {
	x.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", x.socket}, args...)...).CombinedOutput()
	if err != nil {
		x.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// sshSession opens a session window running ssh -t to the manager; the
// client's exit status lands in statusFile.
func (x *tmuxServer) sshSession(m *manager, name string, width, height int, statusFile string) {
	x.t.Helper()
	cmd := fmt.Sprintf("SSHPASS=%s sshpass -e ssh -t -p %s -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=%s -o HostKeyAlias=xenmanager-e2e -o PreferredAuthentications=password -o PubkeyAuthentication=no -o LogLevel=ERROR admin@127.0.0.1; echo $? > %s",
		m.password, m.port, m.known, statusFile)
	x.run("new-session", "-d", "-s", name, "-x", strconv.Itoa(width), "-y", strconv.Itoa(height), cmd)
}

func (x *tmuxServer) keys(target string, keys ...string) {
	x.t.Helper()
	x.run(append([]string{"send-keys", "-t", target}, keys...)...)
}

// typeText types literally (no key names).
func (x *tmuxServer) typeText(target, text string) {
	x.t.Helper()
	x.run("send-keys", "-t", target, "-l", text)
}

func (x *tmuxServer) screen(target string) string {
	x.t.Helper()
	return x.run("capture-pane", "-p", "-t", target)
}

// waitFor polls the screen until it matches (a bounded wait on a condition,
// not a sleep).
func (x *tmuxServer) waitFor(target, what string, match func(string) bool) string {
	x.t.Helper()
	return x.waitWithin(20*time.Second, target, what, match)
}

// waitGuest is waitFor for what a guest under emulation prints, which a
// loaded 2-core machine can take minutes to show.
func (x *tmuxServer) waitGuest(target, what string, match func(string) bool) string {
	x.t.Helper()
	return x.waitWithin(3*time.Minute, target, what, match)
}

// waitWithin polls the screen until it matches, failing after bound.
func (x *tmuxServer) waitWithin(bound time.Duration, target, what string, match func(string) bool) string {
	x.t.Helper()
	deadline := time.Now().Add(bound)
	for {
		s := x.screen(target)
		if match(s) {
			return s
		}
		if time.Now().After(deadline) {
			x.t.Fatalf("%s: screen never showed %s:\n%s", target, what, s)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

func (x *tmuxServer) waitText(target, text string) string {
	x.t.Helper()
	return x.waitFor(target, strconv.Quote(text), func(s string) bool { return strings.Contains(s, text) })
}

// lastLine is the last non-empty line of a screen.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n "), "\n")
	return lines[len(lines)-1]
}

func waitFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil && len(bytes.TrimSpace(b)) > 0 {
			return strings.TrimSpace(string(b))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never written", path)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

func TestTmuxInteractiveSession(t *testing.T) {
	needTools(t)
	x := newTmux(t)
	dir := t.TempDir()
	m := startManager(t, filepath.Join(dir, "data"), 2)
	if out, st := m.ssh("", false, "create Vm name=idle repository=demo-repo memory=256; create Vm name=busy repository=demo-repo memory=256; start Vm name=busy"); st != 0 {
		t.Fatalf("setup: exit %d\n%s", st, out)
	}
	status := filepath.Join(dir, "status")
	x.sshSession(m, "s1", 120, 35, status)
	x.waitText("s1", "OVM>")

	x.typeText("s1", "sta")
	x.waitFor("s1", "start offered for sta", func(s string) bool { return regexp.MustCompile(`(?m)^\s+start\s+Start`).MatchString(s) })
	x.keys("s1", "BSpace")
	x.waitFor("s1", "start and stop offered for st", func(s string) bool {
		return regexp.MustCompile(`(?m)^\s+start\s`).MatchString(s) && regexp.MustCompile(`(?m)^\s+stop\s`).MatchString(s)
	})
	x.keys("s1", "C-c") // clears the line
	x.typeText("s1", "start Vm name=")
	scr := x.waitFor("s1", "the stopped VM offered", func(s string) bool { return regexp.MustCompile(`(?m)^\s+idle\s+Vm`).MatchString(s) })
	if regexp.MustCompile(`(?m)^\s+busy\s+Vm`).MatchString(scr) {
		t.Fatalf("start Vm name= offers a running VM:\n%s", scr)
	}
	x.keys("s1", "Tab")
	x.waitText("s1", "start Vm name=idle")
	x.keys("s1", "Enter")
	scr = x.waitText("s1", "Status: Success")
	if !strings.Contains(scr, "| Status") || !strings.Contains(scr, "Running") {
		t.Fatalf("start in Table mode:\n%s", scr)
	}

	// A resize takes effect at once: the prompt is drawn for the new width.
	x.run("resize-window", "-t", "s1", "-x", "70", "-y", "30")
	x.typeText("s1", "showclisession")
	x.keys("s1", "Enter")
	scr = x.waitText("s1", "Output Mode")
	for _, l := range strings.Split(scr, "\n") {
		if len(strings.TrimRight(l, " ")) > 70 {
			t.Fatalf("a line wider than the resized pane:\n%s", scr)
		}
	}

	// Ctrl-C while a long job runs: back at the prompt with the job's id;
	// the job goes on.
	if out, st := m.ssh("", false, "stop Vm name=* multiple=Yes"); st != 0 {
		t.Fatalf("stop all: %d\n%s", st, out)
	}
	x.typeText("s1", "restart Server name=ovs1")
	x.keys("s1", "Enter")
	bar := regexp.MustCompile(`\[#* *\] +\d+% restart Server ovs1`)
	x.waitFor("s1", "a progress bar", func(s string) bool { return bar.MatchString(s) })
	x.keys("s1", "C-c")
	scr = x.waitText("s1", "is still running")
	if !regexp.MustCompile(`job [0-9a-f]{32} \(restart Server ovs1\) is still running`).MatchString(strings.ReplaceAll(scr, "\n", "")) {
		t.Fatalf("Ctrl-C did not name the job:\n%s", scr)
	}
	x.waitFor("s1", "the prompt back", func(s string) bool { return strings.HasPrefix(lastLine(s), "OVM>") })

	// History survives the session: Up recalls the last command.
	x.typeText("s1", "exit")
	x.keys("s1", "Enter")
	if st := waitFile(t, status); st != "0" {
		t.Fatalf("ssh exited %s after exit, want 0", st)
	}
	status2 := filepath.Join(dir, "status2")
	x.sshSession(m, "s2", 120, 35, status2)
	x.waitText("s2", "OVM>")
	x.keys("s2", "Up")
	x.waitText("s2", "OVM> exit")
	x.keys("s2", "Up")
	x.waitText("s2", "OVM> restart Server name=ovs1")
	x.keys("s2", "C-c")
	x.keys("s2", "C-d")
	if st := waitFile(t, status2); st != "0" {
		t.Fatalf("ssh exited %s after Ctrl-D, want 0", st)
	}
}

// Ctrl-L, a resize and Ctrl-C in one session leave another untouched; a
// pasted block of lines runs line by line.
func TestTmuxTwoSessionsAndPaste(t *testing.T) {
	needTools(t)
	x := newTmux(t)
	dir := t.TempDir()
	m := startManager(t, filepath.Join(dir, "data"), 1)
	x.sshSession(m, "a", 100, 30, filepath.Join(dir, "sa"))
	x.sshSession(m, "b", 100, 30, filepath.Join(dir, "sb"))
	x.waitText("a", "OVM>")
	x.waitText("b", "OVM>")
	x.typeText("a", "list Server")
	x.waitText("a", "OVM> list Server")
	before := x.screen("a")

	x.typeText("b", "showversion")
	x.keys("b", "Enter")
	x.waitText("b", "Agent API Version")
	x.keys("b", "C-l")
	x.waitFor("b", "a cleared screen", func(s string) bool { return !strings.Contains(s, "Agent API Version") })
	x.run("resize-window", "-t", "b", "-x", "60", "-y", "20")
	x.typeText("b", "half typed")
	x.keys("b", "C-c")

	if after := x.screen("a"); after != before {
		t.Fatalf("session a changed while b was used:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	x.keys("a", "Enter")
	x.waitText("a", "ovs1")

	// A paste of several lines runs them one by one.
	x.run("set-buffer", "-b", "p", "create Vm name=p1 repository=demo-repo memory=128\rcreate Vm name=p2 repository=demo-repo memory=128\r")
	x.run("paste-buffer", "-b", "p", "-t", "b")
	x.waitFor("b", "both pasted commands run", func(s string) bool { return strings.Count(s, "Status: Success") >= 2 })
	if out, _ := m.ssh("", false, "list Vm name=p*"); strings.Count(out, "  id:") != 2 {
		t.Fatalf("after the paste:\n%s", out)
	}
}

// Killing the ssh client ends and reaps the session's front-end process;
// the manager keeps serving.
func TestKilledClientLeavesNoChild(t *testing.T) {
	needTools(t)
	x := newTmux(t)
	dir := t.TempDir()
	m := startManager(t, filepath.Join(dir, "data"), 0)
	x.sshSession(m, "k", 100, 30, filepath.Join(dir, "sk"))
	x.waitText("k", "OVM>")
	kids := childrenOf(t, m.cmd.Process.Pid)
	if len(kids) != 1 {
		t.Fatalf("manager children = %v, want one front-end", kids)
	}
	front := kids[0]
	// The ssh client is the sshpass child in the pane.
	pane := strings.TrimSpace(x.run("display", "-p", "-t", "k", "#{pane_pid}"))
	panePID, _ := strconv.Atoi(pane)
	var sshPIDs []int
	for _, p := range descendants(t, panePID) {
		if comm(p) == "ssh" {
			sshPIDs = append(sshPIDs, p)
		}
	}
	if len(sshPIDs) == 0 {
		t.Fatalf("no ssh process under the pane (%d)", panePID)
	}
	for _, p := range sshPIDs {
		syscall.Kill(p, syscall.SIGKILL)
	}
	deadline := time.Now().Add(15 * time.Second)
	for processExists(front) {
		if time.Now().After(deadline) {
			t.Fatalf("front-end %d still exists after the client was killed (state %s)", front, procState(front))
		}
		time.Sleep(30 * time.Millisecond)
	}
	if out, st := m.ssh("", false, "showversion"); st != 0 {
		t.Fatalf("the manager stopped serving: exit %d\n%s", st, out)
	}

	// A manager that shuts down ends its sessions' front-ends too.
	x.sshSession(m, "k2", 100, 30, filepath.Join(dir, "sk2"))
	x.waitText("k2", "OVM>")
	kids = childrenOf(t, m.cmd.Process.Pid)
	if len(kids) != 1 {
		t.Fatalf("manager children = %v, want one front-end", kids)
	}
	m.stop()
	if processExists(kids[0]) {
		t.Fatalf("front-end %d outlived the manager (state %s)", kids[0], procState(kids[0]))
	}
}

// childrenOf lists the pids whose parent is pid (from /proc).
func childrenOf(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc")
	}
	var out []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid(p) == pid {
			out = append(out, p)
		}
	}
	return out
}

func descendants(t *testing.T, pid int) []int {
	var out []int
	for _, c := range childrenOf(t, pid) {
		out = append(out, c)
		out = append(out, descendants(t, c)...)
	}
	return out
}

func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return append([]string{s[strings.IndexByte(s, '(')+1 : i]}, strings.Fields(s[i+1:])...)
}

func ppid(pid int) int {
	f := statFields(pid)
	if len(f) < 3 {
		return -1
	}
	p, _ := strconv.Atoi(f[2])
	return p
}

func comm(pid int) string {
	if f := statFields(pid); len(f) > 0 {
		return f[0]
	}
	return ""
}

func procState(pid int) string {
	if f := statFields(pid); len(f) > 1 {
		return f[1]
	}
	return "gone"
}

// processExists reports whether pid exists at all (a zombie counts: it was
// not reaped).
func processExists(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// top redraws until q; console attaches to the guest's serial console until
// Ctrl-]: its banner names the OS that show Vm names, and Enter (a CR, as
// a terminal sends it) ends a line on the guest.
func TestTmuxTopAndConsole(t *testing.T) {
	needTools(t)
	x := newTmux(t)
	dir := t.TempDir()
	m := startManager(t, filepath.Join(dir, "data"), 2)
	if out, st := m.ssh("", false, `create Vm name=guest1 repository=demo-repo memory=256 cpuCount=2; edit Vm name=guest1 osType="Debian 12"; start Vm name=guest1`); st != 0 {
		t.Fatalf("setup: %d\n%s", st, out)
	}
	if out, _ := m.ssh("", false, "show Vm name=guest1"); !strings.Contains(out, "  Operating System = Debian 12\n") {
		t.Fatalf("show Vm:\n%s", out)
	}
	// Outside a PTY, top prints one snapshot.
	if out, st := m.ssh("", false, "top"); st != 0 || !strings.Contains(out, "guest1") || !strings.Contains(out, "SERVER") {
		t.Fatalf("top without a PTY: exit %d\n%s", st, out)
	}
	x.sshSession(m, "c", 120, 30, filepath.Join(dir, "sc"))
	x.waitText("c", "OVM>")
	x.typeText("c", "top")
	x.keys("c", "Enter")
	x.waitFor("c", "top's view", func(s string) bool {
		return strings.Contains(s, "xenmanager top") && strings.Contains(s, "guest1") && strings.Contains(s, "(q to quit)")
	})
	x.typeText("c", "q")
	x.waitFor("c", "the prompt after top", func(s string) bool { return strings.HasPrefix(lastLine(s), "OVM>") })

	x.typeText("c", "console Vm name=guest1")
	x.keys("c", "Enter")
	scr := x.waitText("c", " login:")
	if !strings.Contains(scr, "Debian 12 (simulated)") || strings.Contains(scr, "Oracle Linux") {
		t.Fatalf("the console's banner does not name the VM's OS:\n%s", scr)
	}
	x.typeText("c", "root")
	x.keys("c", "Enter") // tmux sends CR, as a terminal's Enter does
	x.waitFor("c", "the guest's echo of root and its next prompt", func(s string) bool {
		return regexp.MustCompile(`(?m) login: root\s*\n\S+ login:`).MatchString(s)
	})
	x.keys("c", "C-]")
	x.waitFor("c", "the prompt after the console", func(s string) bool { return strings.HasPrefix(lastLine(s), "OVM>") })
	if out, st := m.ssh("", false, "console Vm name=guest1"); st != 1 || !strings.Contains(out, "needs an interactive session") {
		t.Fatalf("console without a PTY: exit %d\n%s", st, out)
	}
}

// The plain line editor, on request: Tab completes the common prefix, a
// second Tab lists the choices.
func TestTmuxSimpleEditor(t *testing.T) {
	needTools(t)
	x := newTmux(t)
	dir := t.TempDir()
	m := startManager(t, filepath.Join(dir, "data"), 0)
	if out, st := m.ssh("", false, "set lineEditor=simple"); st != 0 {
		t.Fatalf("set lineEditor: %d\n%s", st, out)
	}
	x.sshSession(m, "e", 100, 30, filepath.Join(dir, "se"))
	x.waitText("e", "OVM>")
	if n := len(childrenOf(t, m.cmd.Process.Pid)); n != 0 {
		t.Fatalf("the simple editor started %d front-end processes", n)
	}
	x.typeText("e", "showv")
	x.keys("e", "Tab")
	x.waitText("e", "OVM> showversion")
	x.keys("e", "Enter")
	x.waitText("e", "Agent API Version")
	x.typeText("e", "st")
	x.keys("e", "Tab")
	x.keys("e", "Tab")
	x.waitFor("e", "start and stop listed", func(s string) bool {
		return regexp.MustCompile(`(?m)^\s+start\s`).MatchString(s) && regexp.MustCompile(`(?m)^\s+stop\s`).MatchString(s)
	})
	x.keys("e", "C-c") // clears the line; the session goes on
	x.waitFor("e", "a cleared line", func(s string) bool { return lastLine(s) == "OVM>" })
	x.typeText("e", "set lineEditor=prompt")
	x.keys("e", "Enter")
	x.waitText("e", "Status: Success")
	x.typeText("e", "exit")
	x.keys("e", "Enter")
	if st := waitFile(t, filepath.Join(dir, "se")); st != "0" {
		t.Fatalf("exit status %s", st)
	}
}
