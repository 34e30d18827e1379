package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests drive the built binary with the stock OpenSSH client and
// sshpass, as an operator's scripts do. CI installs both (.ci/run); elsewhere
// the tests are skipped when either is missing.

func needTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"ssh", "sshpass"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required in CI: %v", tool, err)
			}
			t.Skipf("%s not installed", tool)
		}
	}
}

var binaries struct {
	dir string
	err error
}

// buildBinary builds the manager and the agent once per test run and
// returns the path of the one named.
func buildBinary(t *testing.T, name ...string) string {
	t.Helper()
	if binaries.dir == "" && binaries.err == nil {
		dir, err := os.MkdirTemp("", "xenmanager-e2e")
		if err != nil {
			t.Fatal(err)
		}
		binaries.dir = dir
		for _, pkg := range []string{".", "../xenagent"} {
			out, err := exec.Command("go", "build", "-o", dir, pkg).CombinedOutput()
			if err != nil {
				binaries.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
			}
		}
	}
	if binaries.err != nil {
		t.Fatal(binaries.err)
	}
	if len(name) > 0 {
		return filepath.Join(binaries.dir, name[0])
	}
	return filepath.Join(binaries.dir, "xenmanager")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binaries.dir != "" {
		os.RemoveAll(binaries.dir)
	}
	os.Exit(code)
}

// manager is a running `xenmanager serve` process.
type manager struct {
	t        *testing.T
	cmd      *exec.Cmd
	port     string
	data     string
	password string
	stdout   []string // what it printed up to its admin password line
	stderr   *syncBuffer
	known    string // known_hosts file of this test's client
	stopped  bool
	// metrics is the address of /metrics and /healthz, when started with
	// --metrics-listen.
	metrics string
}

var (
	listenRx  = regexp.MustCompile(`^xenmanager listening on 127\.0\.0\.1:(\d+)$`)
	metricsRx = regexp.MustCompile(`^metrics listening on (127\.0\.0\.1:\d+)$`)
)

// startManager runs serve on a free loopback port with a demo fleet and
// waits until it is ready.
func startManager(t *testing.T, data string, demo int) *manager {
	t.Helper()
	return startManagerWith(t, data, nil, "--listen", "127.0.0.1:0", "--data", data, "--demo", fmt.Sprint(demo))
}

// startManagerWith runs serve with args and, beside the test's own
// environment, env; data is the data directory the manager is expected to
// use. It waits until the manager prints where its admin password is, the
// last line before it serves, having said where it listens.
func startManagerWith(t *testing.T, data string, env []string, args ...string) *manager {
	t.Helper()
	bin := buildBinary(t)
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	m := &manager{t: t, cmd: cmd, data: data, stderr: &syncBuffer{}, known: filepath.Join(data, "..", "known_hosts")}
	cmd.Stderr = m.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.stop)
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, stdout)
	}()
	timeout := time.After(60 * time.Second)
	for ready := false; !ready; {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("manager exited before listening:\n%s", m.stderr)
			}
			m.stdout = append(m.stdout, line)
			if mm := listenRx.FindStringSubmatch(line); mm != nil {
				m.port = mm[1]
			}
			if mm := metricsRx.FindStringSubmatch(line); mm != nil {
				m.metrics = mm[1]
			}
			ready = strings.HasPrefix(line, "admin password: in ")
		case <-timeout:
			t.Fatalf("manager did not start within 60 s:\n%s", m.stderr)
		}
	}
	if m.port == "" {
		t.Fatalf("manager did not say it listens on 127.0.0.1:\n%s", strings.Join(m.stdout, "\n"))
	}
	go func() {
		for range lines {
		}
	}()
	if m.metrics != "" && !slices.Contains(args, "--metrics-listen") && !slices.Contains(args, "--config") && len(env) == 0 {
		t.Fatalf("serve without --metrics-listen serves metrics on %s: they are off by default", m.metrics)
	}
	pw, err := os.ReadFile(filepath.Join(data, "admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	m.password = strings.TrimSpace(string(pw))
	return m
}

// syncBuffer is a bytes.Buffer safe to read while the child writes to it.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (m *manager) stop() {
	if m.stopped {
		return
	}
	m.stopped = true
	m.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { m.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		m.cmd.Process.Kill()
		<-done
	}
}

// ssh runs the OpenSSH client against the manager with password login.
// strict selects StrictHostKeyChecking=yes instead of accept-new.
func (m *manager) ssh(stdin string, strict bool, args ...string) (string, int) {
	m.t.Helper()
	cmd := m.sshCommand(strict, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &exitErr):
		if strings.Contains(errOut.String(), "Host key verification failed") || exitErr.ExitCode() == 255 {
			return out.String() + errOut.String(), 255
		}
		return out.String(), exitErr.ExitCode()
	}
	m.t.Fatalf("ssh: %v\n%s", err, errOut.String())
	return "", -1
}

// sshCommand is the OpenSSH client of ssh, not yet started: options first
// (arguments starting with -), then the command, if any.
func (m *manager) sshCommand(strict bool, args ...string) *exec.Cmd {
	check := "accept-new"
	if strict {
		check = "yes"
	}
	var opts, command []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") && len(command) == 0 {
			opts = append(opts, a)
		} else {
			command = append(command, a)
		}
	}
	full := append([]string{"-e", "ssh", "-p", m.port,
		"-o", "StrictHostKeyChecking=" + check, "-o", "UserKnownHostsFile=" + m.known,
		// The port changes across restarts; key the entry by a fixed alias.
		"-o", "HostKeyAlias=xenmanager-e2e",
		"-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no",
		"-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR"}, opts...)
	full = append(append(full, "admin@127.0.0.1"), command...)
	cmd := exec.Command("sshpass", full...)
	cmd.Env = append(os.Environ(), "SSHPASS="+m.password)
	return cmd
}

func TestOpenSSHExecAndBatches(t *testing.T) {
	needTools(t)
	m := startManager(t, filepath.Join(t.TempDir(), "data"), 2)

	out, status := m.ssh("", false, "list Server")
	if status != 0 || !strings.Contains(out, "Status: Success") || strings.Count(out, "  id:") != 2 {
		t.Fatalf("exec list Server: exit %d\n%s", status, out)
	}

	script := "create Vm name=e2e1 repository=demo-repo memory=512\nstart Vm name=e2e1\nstart Vm name=nosuchvm\nshow Vm name=e2e1\n"
	out, status = m.ssh(script, false)
	if status != 1 {
		t.Fatalf("batch with one failing command: exit %d, want 1\n%s", status, out)
	}
	if strings.Count(out, "Status: Success") != 3 || !strings.Contains(out, `Error Msg: XM_0404E: Vm "nosuchvm" not found`) {
		t.Fatalf("batch output:\n%s", out)
	}
	// An Oracle-style script reads "Key = value" lines of show Vm.
	fields := map[string]string{}
	for _, line := range strings.Split(out[strings.LastIndex(out, "Command: show Vm"):], "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), " = "); ok {
			fields[k] = v
		}
	}
	if fields["Name"] != "e2e1" || fields["Status"] != "Running" || len(fields["Id"]) != 32 {
		t.Fatalf("parsed show Vm = %v", fields)
	}

	out, status = m.ssh("this is garbage\nlist ServerPool\n", false)
	if status != 2 || !strings.Contains(out, "XM_0001E") || !strings.Contains(out, "name:demo-pool") {
		t.Fatalf("batch with a garbage line: exit %d, want 2 and the next line answered\n%s", status, out)
	}

	out, status = m.ssh("", false, "stop Vm name=e2e1; delete Vm name=e2e1; show Vm name=e2e1")
	if status != 1 || strings.Count(out, "Status: Success") != 2 || !strings.Contains(out, "XM_0404E") {
		t.Fatalf("joined exec: exit %d\n%s", status, out)
	}
}

// A restart keeps the host key (strict host key checking passes), the admin
// password, and the demo fleet, whose agents come back on new ports.
func TestOpenSSHRestartKeepsIdentity(t *testing.T) {
	needTools(t)
	data := filepath.Join(t.TempDir(), "data")
	m := startManager(t, data, 2)
	if out, status := m.ssh("", false, "create Vm name=keep repository=demo-repo memory=256"); status != 0 {
		t.Fatalf("create: exit %d\n%s", status, out)
	}
	m.stop()

	m2 := startManager(t, data, 2)
	m2.known = m.known
	if m2.password != m.password {
		t.Fatal("admin password changed across a restart")
	}
	if strings.Contains(m2.stderr.String(), "created user admin") {
		t.Fatal("a second start created the admin user again")
	}
	out, status := m2.ssh("", true, "start Vm name=keep; list Server")
	if status != 0 || strings.Count(out, "  id:") != 2 {
		t.Fatalf("after restart: exit %d\n%s", status, out)
	}

	// And the check can fail: a manager with a new host key is refused.
	m3 := startManager(t, filepath.Join(t.TempDir(), "other"), 0)
	m3.known = m.known
	if out, status := m3.ssh("", true, "list Server"); status != 255 || !strings.Contains(out, "Host key verification failed") {
		t.Fatalf("a different host key was accepted under strict checking: exit %d\n%s", status, out)
	}
}

var agentListenRx = regexp.MustCompile(`^xenagent listening on 127\.0\.0\.1:(\d+)$`)

// startAgent runs xenagent, with its simulated host, as its own process
// and returns its port.
func startAgent(t *testing.T, data, password string) string {
	t.Helper()
	port, _ := runAgent(t, data, password, "--hostname", "standalone1", "--memory-mib", "4096", "--cpus", "2")
	return port
}

// runAgent runs xenagent with args on a free loopback port, its password
// in a file beside data, and returns its port and its log; the agent is
// stopped when the test ends.
func runAgent(t *testing.T, data, password string, args ...string) (string, *syncBuffer) {
	t.Helper()
	port, log, _ := runAgentMetrics(t, data, password, args...)
	return port, log
}

// runAgentMetrics is runAgent that also returns the address of /metrics
// and /healthz, "" unless args hold --metrics-listen.
func runAgentMetrics(t *testing.T, data, password string, args ...string) (port string, log *syncBuffer, metrics string) {
	t.Helper()
	a := startAgentProcess(t, data, password, args...)
	return a.port, a.log, a.metrics
}

// agentProcess is a xenagent process a test started: where it listens, its
// log, the pin of its certificate, and the process (to freeze or kill).
type agentProcess struct {
	cmd            *exec.Cmd
	port, metrics  string
	pin            string
	log            *syncBuffer
	data, password string
	args           []string
	waited         chan struct{} // closed when the process has been waited for
}

// startAgentProcess runs xenagent with args on a free loopback port, its
// password in a file beside data, until the test ends (SIGINT, then wait).
func startAgentProcess(t *testing.T, data, password string, args ...string) *agentProcess {
	t.Helper()
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(data, "..", filepath.Base(data)+".pw")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(buildBinary(t, "xenagent"), append([]string{"--listen", "127.0.0.1:0", "--data", data,
		"--password-file", pwFile}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	a := &agentProcess{cmd: cmd, log: &syncBuffer{}, data: data, password: password, args: args, waited: make(chan struct{})}
	cmd.Stderr = a.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(a.waited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT) // a frozen agent cannot stop
		cmd.Process.Signal(os.Interrupt)
		<-a.waited
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if m := metricsRx.FindStringSubmatch(sc.Text()); m != nil {
			a.metrics = m[1]
		}
		if m := agentPinRx.FindStringSubmatch(sc.Text()); m != nil {
			a.pin = m[1]
		}
		if m := agentListenRx.FindStringSubmatch(sc.Text()); m != nil {
			a.port = m[1]
		}
		if a.port != "" && a.pin != "" {
			go io.Copy(io.Discard, stdout)
			if a.metrics != "" && !slices.Contains(args, "--metrics-listen") {
				t.Fatalf("xenagent without --metrics-listen serves metrics on %s: they are off by default", a.metrics)
			}
			return a
		}
	}
	t.Fatalf("xenagent exited before listening:\n%s", a.log)
	return nil
}

var agentPinRx = regexp.MustCompile(`^certificate SPKI SHA-256: ([0-9a-f]{64})$`)

// The manager drives an agent that runs as a separate process.
func TestOpenSSHWithStandaloneAgent(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	port := startAgent(t, filepath.Join(dir, "agent"), "standalone-secret")
	m := startManager(t, filepath.Join(dir, "data"), 0)
	script := fmt.Sprintf(`discoverServer ipAddress=127.0.0.1 port=%s password=standalone-secret
create ServerPool name=solo
add Server name=standalone1 to ServerPool name=solo
create Repository name=solorepo fsLocation=%s on ServerPool name=solo
create Vm name=big repository=solorepo memory=8192
start Vm name=big
create Vm name=small repository=solorepo memory=1024 cpuCount=2
start Vm name=small
show Vm name=small
`, port, filepath.Join(dir, "repo"))
	out, status := m.ssh(script, false)
	if status != 1 || strings.Count(out, "Status: Success") != 8 {
		t.Fatalf("standalone agent batch: exit %d, want 1 (big does not fit)\n%s", status, out)
	}
	if !strings.Contains(out, "XM_0507E") || !strings.Contains(out, "Vm big (8192 MiB, 1 vCPUs)") {
		t.Fatalf("start of a VM that fits no server:\n%s", out)
	}
	if strings.Contains(out, "standalone-secret") {
		t.Fatalf("the agent password is echoed:\n%s", out)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "repo", "VirtualMachines", lastID(out), "vm.cfg"))
	if err != nil || !strings.Contains(string(cfg), "memory = 1024") || !strings.Contains(string(cfg), "OVM_simple_name = 'small'") {
		t.Fatalf("vm.cfg in the repository: %v\n%s", err, cfg)
	}
}

// lastID returns the value of the last "Id = " line of Verbose output.
func lastID(out string) string {
	i := strings.LastIndex(out, "  Id = ")
	if i < 0 {
		return ""
	}
	id, _, _ := strings.Cut(out[i+len("  Id = "):], "\n")
	return id
}

// Scripts get structured output: Json lines read by a JSON parser, and a
// terminal session defaults to Table but keeps the Status header.
func TestOpenSSHStructuredOutput(t *testing.T) {
	needTools(t)
	m := startManager(t, filepath.Join(t.TempDir(), "data"), 2)
	if out, status := m.ssh("", false, "create Vm name=j1 repository=demo-repo memory=256; create Vm name=j2 repository=demo-repo memory=256"); status != 0 {
		t.Fatalf("create: exit %d\n%s", status, out)
	}
	// A PTY (ssh -tt) defaults to Table; the header lines stay.
	out2, status := m.ssh("", false, "-tt", "list Vm name=j*")
	if status != 0 || !strings.Contains(out2, "Status: Success") || !strings.Contains(out2, "| j1") && !strings.Contains(out2, "j1 ") {
		t.Fatalf("list over a PTY: exit %d\n%s", status, out2)
	}
	if !strings.Contains(out2, "\r\n") || !strings.Contains(out2, "+-") && !strings.Contains(out2, "─") {
		t.Fatalf("list over a PTY is not a table with CRLF line ends:\n%q", out2)
	}
	// Piped into a JSON parser, as a script would: python3 reads one JSON
	// value per line and prints what it found.
	parser := `import json, sys
for line in sys.stdin:
    r = json.loads(line)
    print(r["command"], r["status"], len(r.get("data", [])), ",".join(sorted(o["name"] for o in r.get("data", []))))`
	sshArgs := fmt.Sprintf("sshpass -e ssh -p %s -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=%s -o HostKeyAlias=xenmanager-e2e -o PreferredAuthentications=password -o PubkeyAuthentication=no -o LogLevel=ERROR admin@127.0.0.1",
		m.port, m.known)
	cmd := exec.Command("bash", "-o", "pipefail", "-c", sshArgs+` "set outputMode=Json; list Vm name=j*" | python3 -c "$PARSER"`)
	cmd.Env = append(os.Environ(), "SSHPASS="+m.password, "PARSER="+parser)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ssh | json parser: %v\n%s", err, out)
	}
	want := "set outputMode=Json Success 0 \nlist Vm name=j* Success 2 j1,j2\n"
	if string(out) != want {
		t.Fatalf("parsed Json stream:\n%s\nwant:\n%s", out, want)
	}

}

// A user logs in with a key made by ssh-keygen and registered with create
// SshKey, through the stock OpenSSH client.
func TestOpenSSHKeyLogin(t *testing.T) {
	needTools(t)
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen not installed")
	}
	dir := t.TempDir()
	m := startManager(t, filepath.Join(dir, "data"), 0)
	key := filepath.Join(dir, "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "e2e@test", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	create := fmt.Sprintf(`create User name=ops password=ops-password-1 role=Operator; create SshKey name=e2e user=ops key="%s"`, strings.TrimSpace(string(pub)))
	if out, status := m.ssh("", false, create); status != 0 {
		t.Fatalf("create user and key: exit %d\n%s", status, out)
	}
	cmd := exec.Command("ssh", "-p", m.port, "-i", key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "PasswordAuthentication=no", "-o", "StrictHostKeyChecking=accept-new", "-o", "UserKnownHostsFile="+m.known,
		"-o", "HostKeyAlias=xenmanager-e2e", "-o", "LogLevel=ERROR", "ops@127.0.0.1", "showclisession")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "User = ops") || !strings.Contains(string(out), "Role = Operator") {
		t.Fatalf("key login: %v\n%s", err, out)
	}
	// The key is not admin's.
	cmd = exec.Command("ssh", "-p", m.port, "-i", key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "PasswordAuthentication=no", "-o", "UserKnownHostsFile="+m.known, "-o", "HostKeyAlias=xenmanager-e2e",
		"-o", "LogLevel=ERROR", "admin@127.0.0.1", "showclisession")
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("ops's key logged in as admin:\n%s", out)
	}
}

// A script asks for Json version 2 with set jsonVersion=2 and gets typed
// values through the stock OpenSSH client: memory a number, flags
// booleans, references objects, one valid document per line (jq reads
// them when it is installed). Without the setting, a script gets version 1
// as before: explicitly asking for 1 prints the same bytes, the time
// aside; and 3 is refused, naming 1 and 2.
func TestOpenSSHJSONVersion2(t *testing.T) {
	needTools(t)
	m := startManager(t, filepath.Join(t.TempDir(), "data"), 1)
	if out, st := m.ssh("", false, "create Vm name=j2 repository=demo-repo memory=512; start Vm name=j2"); st != 0 {
		t.Fatalf("create and start: exit %d\n%s", st, out)
	}

	out, st := m.ssh("", false, "set outputMode=Json; set jsonVersion=2; show Vm name=j2")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var doc struct {
		JSONVersion int    `json:"jsonVersion"`
		Command     string `json:"command"`
		Status      string `json:"status"`
		Data        struct {
			Name             string `json:"name"`
			Memory           any    `json:"memory"`
			CPUCount         any    `json:"cpuCount"`
			HighAvailability any    `json:"highAvailability"`
			Server           any    `json:"server"`
			Repository       struct {
				ID, Name string
			} `json:"repository"`
			Disks any `json:"disks"`
		} `json:"data"`
	}
	if st != 0 || len(lines) != 3 {
		t.Fatalf("exit %d, %d lines, want 3\n%s", st, len(lines), out)
	}
	if err := json.Unmarshal([]byte(lines[2]), &doc); err != nil {
		t.Fatalf("%v\n%s", err, lines[2])
	}
	server, _ := doc.Data.Server.(map[string]any)
	if doc.JSONVersion != 2 || doc.Command != "show Vm name=j2" || doc.Status != "Success" || doc.Data.Name != "j2" ||
		doc.Data.Memory != float64(512) || doc.Data.CPUCount != float64(1) || doc.Data.HighAvailability != false ||
		server["name"] == nil || len(server["id"].(string)) != 32 || doc.Data.Repository.Name != "demo-repo" ||
		len(doc.Data.Repository.ID) != 32 || doc.Data.Disks == nil {
		t.Fatalf("show Vm in version 2:\n%s", lines[2])
	}
	if jq, err := exec.LookPath("jq"); err == nil {
		cmd := exec.Command(jq, "-e", `.jsonVersion == 2 and (.data.memory | type) == "number" and (.data.highAvailability | type) == "boolean" and (.data.server | type) == "object"`)
		cmd.Stdin = strings.NewReader(out)
		if res, err := cmd.CombinedOutput(); err != nil || !strings.HasSuffix(string(res), "true\n") {
			t.Fatalf("jq on the output: %v\n%s", err, res)
		}
	}

	timeRx := regexp.MustCompile(`"time":"[^"]*"`)
	v1, st1 := m.ssh("", false, "set outputMode=Json; show Vm name=j2; list Vm")
	explicit, st2 := m.ssh("", false, "set outputMode=Json; set jsonVersion=1; show Vm name=j2; list Vm")
	// The explicit session has one document more: its set jsonVersion=1.
	explicitLines := strings.SplitN(explicit, "\n", 3)
	if st1 != 0 || st2 != 0 || len(explicitLines) != 3 ||
		timeRx.ReplaceAllString(v1, "") != timeRx.ReplaceAllString(explicitLines[0]+"\n"+explicitLines[2], "") {
		t.Fatalf("version 1 by default and explicitly differ:\n%s\n%s", v1, explicit)
	}
	if !strings.Contains(v1, `"Memory (MB)":"512"`) || !strings.Contains(v1, `"High Availability":"No"`) || strings.Contains(v1, "jsonVersion") {
		t.Fatalf("version 1 is not the string form:\n%s", v1)
	}

	out, st = m.ssh("", false, "set jsonVersion=3")
	if st != 2 || !strings.Contains(out, "jsonVersion='3' is not valid for set; use one of 1, 2") {
		t.Fatalf("set jsonVersion=3: exit %d\n%s", st, out)
	}
}
