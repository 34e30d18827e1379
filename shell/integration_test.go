package shell

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"xenmanager/backend"
	"xenmanager/backend/agent/agenttest"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
	"xenmanager/backend/managertest"
	"xenmanager/commands"
	"xenmanager/store"
)

// env is a manager core (managertest: store, backend, agents) and an SSH
// server on 127.0.0.1:0, all in this process but talking over real sockets.
type env struct {
	t        *testing.T
	core     *managertest.Core
	mgr      *backend.Manager
	store    *store.Store
	sshAddr  string
	password string
	agents   []*agenttest.Agent
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newEnv(t *testing.T, agents int, memoryMiB int64) *env {
	t.Helper()
	return newEnvWith(t, managertest.Options{Agents: agents, MemoryMiB: memoryMiB, CPUs: 4,
		RebootDelay: 200 * time.Millisecond})
}

// newEnvWith is newEnv with the core opened as opts says.
func newEnvWith(t *testing.T, opts managertest.Options) *env {
	t.Helper()
	core := managertest.Open(t, opts)
	e := &env{t: t, core: core, mgr: core.Manager, store: core.Store, password: core.AdminPassword, agents: core.Agents}
	srv, err := New(e.config())
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	e.sshAddr = l.Addr().String()
	return e
}

// config is the configuration of an SSH server on the env's manager, with
// the manager's host key.
func (e *env) config() Config {
	e.t.Helper()
	hostKey, _, err := e.mgr.HostKey(context.Background(), "")
	if err != nil {
		e.t.Fatal(err)
	}
	return Config{HostKey: hostKey, Core: e.mgr, Registry: commands.Default, Logger: quietLogger(),
		NewSession: func(ctx context.Context, reg *commands.Registry, actor backend.Actor, out io.Writer, opts commands.Options) *commands.Session {
			return commands.NewSession(ctx, reg, e.mgr, actor, out, opts)
		}}
}

// run executes one exec request and returns its output and exit status.
func (e *env) run(command string) (string, int) {
	e.t.Helper()
	return e.session(command, nil)
}

// batch sends script on stdin of a session without a command.
func (e *env) batch(script string) (string, int) {
	e.t.Helper()
	return e.session("", strings.NewReader(script))
}

func (e *env) session(command string, stdin io.Reader) (string, int) {
	e.t.Helper()
	return e.sessionAs("admin", gossh.Password(e.password), command, stdin)
}

// runAs executes one command as another user.
func (e *env) runAs(user, password, command string) (string, int) {
	e.t.Helper()
	return e.sessionAs(user, gossh.Password(password), command, nil)
}

func (e *env) sessionAs(user string, auth gossh.AuthMethod, command string, stdin io.Reader) (string, int) {
	e.t.Helper()
	return e.sessionAtAs(e.sshAddr, user, auth, command, stdin)
}

// sessionAt runs a session as admin on the SSH server at addr.
func (e *env) sessionAt(addr, command string, stdin io.Reader) (string, int) {
	e.t.Helper()
	return e.sessionAtAs(addr, "admin", gossh.Password(e.password), command, stdin)
}

func (e *env) sessionAtAs(addr, user string, auth gossh.AuthMethod, command string, stdin io.Reader) (string, int) {
	e.t.Helper()
	cfg := &gossh.ClientConfig{User: user, Auth: []gossh.AuthMethod{auth},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}
	c, err := gossh.Dial("tcp", addr, cfg)
	if err != nil {
		e.t.Fatalf("ssh dial: %v", err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		e.t.Fatal(err)
	}
	// Separate buffers: two io.Copy calls into one bytes.Buffer race.
	var out, errOut bytes.Buffer
	s.Stdout, s.Stderr, s.Stdin = &out, &errOut, stdin
	if command != "" {
		err = s.Run(command)
	} else {
		if err = s.Shell(); err == nil {
			err = s.Wait()
		}
	}
	var exitErr *gossh.ExitError
	switch {
	case err == nil:
		return out.String() + errOut.String(), 0
	case errors.As(err, &exitErr):
		return out.String() + errOut.String(), exitErr.ExitStatus()
	}
	e.t.Fatalf("session %q: %v", command, err)
	return "", -1
}

// mustRun runs command and fails the test unless every command succeeded.
func (e *env) mustRun(command string) string {
	e.t.Helper()
	out, status := e.run(command)
	if status != 0 || strings.Contains(out, "Status: Failure") {
		e.t.Fatalf("%q: exit %d\n%s", command, status, out)
	}
	return out
}

func (e *env) discoverAll() {
	e.t.Helper()
	for _, a := range e.agents {
		e.mustRun(fmt.Sprintf("discoverServer ipAddress=127.0.0.1 port=%d password=%s", a.Port(), a.Password))
	}
}

// prop returns the value of "Key = value" in Verbose output.
func prop(out, key string) string {
	m := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(key) + ` = (.*)$`).FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[1]
}

func (e *env) agentClient(i int) *agentclient.Client { return e.core.AgentClient(i) }

func (e *env) setupPool(repoDir string) {
	e.t.Helper()
	e.discoverAll()
	e.mustRun("create ServerPool name=pool1")
	for i := range e.agents {
		e.mustRun(fmt.Sprintf("add Server name=ovs%d to ServerPool name=pool1", i+1))
	}
	e.mustRun("create Repository name=repo1 fsLocation=" + repoDir + " on ServerPool name=pool1")
}

// The whole path: two agents and a manager, discover both, create and start
// a VM; the agent that runs it lists it running and show Vm agrees.
func TestEndToEndSlice(t *testing.T) {
	e := newEnv(t, 2, 8192)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))

	out := e.mustRun("list Server")
	for _, name := range []string{"ovs1", "ovs2"} {
		if !strings.Contains(out, "name:"+name) {
			t.Fatalf("list Server lacks %s:\n%s", name, out)
		}
	}
	// Fill ovs1 a little so that placement must pick ovs2 (most free memory).
	e.mustRun("create Vm name=filler repository=repo1 memory=1024")
	e.mustRun("start Vm name=filler")
	first := prop(e.mustRun("show Vm name=filler"), "Server")

	e.mustRun("create Vm name=web1 repository=repo1 memory=2048 cpuCount=2 on ServerPool name=pool1")
	e.mustRun("start Vm name=web1")
	out = e.mustRun("show Vm name=web1")
	if got := prop(out, "Status"); got != "Running" {
		t.Fatalf("show Vm Status = %q, want Running\n%s", got, out)
	}
	server := prop(out, "Server")
	if server == "" || server == first {
		t.Fatalf("web1 placed on %q, filler on %q: want the other server (most free memory)", server, first)
	}
	idx := 0
	if strings.HasSuffix(server, "[ovs2]") {
		idx = 1
	}
	vmID := prop(out, "Id")
	domains, err := e.agentClient(idx).ListVMs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range domains {
		if d.UUID == vmID && d.State == agentapi.StateRunning && d.MemoryMiB == 2048 && d.VCPUs == 2 {
			found = true
		}
	}
	if !found {
		t.Fatalf("agent %d list_vms = %+v; want %s running with 2048 MiB, 2 vCPUs", idx+1, domains, vmID)
	}
	other, _ := e.agentClient(1 - idx).ListVMs(context.Background())
	for _, d := range other {
		if d.UUID == vmID {
			t.Fatalf("VM %s runs on both servers", vmID)
		}
	}

	e.mustRun("stop Vm name=web1")
	if got := prop(e.mustRun("show Vm name=web1"), "Status"); got != "Stopped" {
		t.Fatalf("after stop Status = %q", got)
	}
	e.mustRun("delete Vm name=web1")
	if out, _ := e.run("show Vm name=web1"); !strings.Contains(out, "XM_0404E") {
		t.Fatalf("show after delete:\n%s", out)
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t, 2, 4096)
	repo := filepath.Join(t.TempDir(), "repo")
	e.setupPool(repo)
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	deadPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()

	tests := []struct {
		name    string
		command string
		code    string
		msg     string
	}{
		{"wrong agent password", fmt.Sprintf("discoverServer ipAddress=127.0.0.1 port=%d password=wrong", e.agents[0].Port()),
			"XM_0401E", "refused the password"},
		{"unreachable address", fmt.Sprintf("discoverServer ipAddress=127.0.0.1 port=%d password=x", deadPort),
			"XM_0503E", "does not answer"},
		{"bad address", "discoverServer ipAddress=no/such password=x", "XM_0400E", "neither an IP address nor a host name"},
		{"unknown server", "show Server name=ovs9", "XM_0404E", `Server "ovs9" not found`},
		{"unknown vm", "start Vm name=web9", "XM_0404E", `Vm "web9" not found`},
		{"unknown vm id", "show Vm id=0004fb00000600000000000000000000", "XM_0404E", "not found"},
		{"unknown repository", "create Vm name=x repository=nope", "XM_0404E", `Repository "nope" not found`},
		{"unknown pool", "add Server name=ovs1 to ServerPool name=nope", "XM_0404E", `ServerPool "nope" not found`},
		{"server already in pool", "add Server name=ovs1 to ServerPool name=pool1", "XM_0409E", "already in ServerPool pool1"},
		{"bad vm name", `create Vm name=a/b repository=repo1`, "XM_0400E", "invalid Vm name"},
		{"relative repository path", "create Repository name=r2 fsLocation=relative/dir on ServerPool name=pool1", "XM_0400E", "clean absolute path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, status := e.run(tc.command)
			if status != 1 || !strings.Contains(out, "Status: Failure") || !strings.Contains(out, "Error Msg: "+tc.code+": ") || !strings.Contains(out, tc.msg) {
				t.Fatalf("%q: exit %d, want 1 with %s %q\n%s", tc.command, status, tc.code, tc.msg, out)
			}
			if strings.Contains(out, "password=wrong") || strings.Contains(out, "password=x ") {
				t.Fatalf("output echoes the password:\n%s", out)
			}
		})
	}
	if out := e.mustRun("list Server"); strings.Count(out, "  id:") != 2 {
		t.Fatalf("failed discoveries changed the servers:\n%s", out)
	}

	t.Run("vm that fits no server", func(t *testing.T) {
		e.mustRun("create Vm name=huge repository=repo1 memory=6000")
		out, status := e.run("start Vm name=huge")
		if status != 1 || !strings.Contains(out, "XM_0507E") || !strings.Contains(out, "the most free memory is") {
			t.Fatalf("start huge: exit %d\n%s", status, out)
		}
		if got := prop(e.mustRun("show Vm name=huge"), "Status"); got != "Stopped" {
			t.Fatalf("huge Status = %q after a failed start", got)
		}
	})

	t.Run("failed create writes nothing", func(t *testing.T) {
		before := e.mustRun("list Vm")
		for i := range e.agents {
			err := e.agentClient(i).Call(context.Background(), agentapi.MethodSimSet, nil,
				map[string]any{"fail_next": map[string]any{agentapi.MethodCreateVM: "disk full"}})
			if err != nil {
				t.Fatal(err)
			}
		}
		out, status := e.run("create Vm name=doomed repository=repo1")
		if status != 1 || !strings.Contains(out, "disk full") {
			t.Fatalf("create with failing agent: exit %d\n%s", status, out)
		}
		if after := e.mustRun("list Vm"); stripTimes(after) != stripTimes(before) {
			t.Fatalf("list Vm changed after a failed create:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})

	t.Run("state rules", func(t *testing.T) {
		out, status := e.run("stop Vm name=huge")
		if status != 1 || !strings.Contains(out, "XM_0412E") || !strings.Contains(out, "Vm huge is Stopped; stop needs Running") {
			t.Fatalf("stop of stopped VM: exit %d\n%s", status, out)
		}
	})
}

func stripTimes(s string) string {
	return regexp.MustCompile(`(?m)^Time: .*$`).ReplaceAllString(s, "")
}

// Exec, batch and exit statuses (docs/command-language.md): 0 all succeeded, 1 a command
// failed, 2 a command could not be parsed; the batch goes on after both.
func TestSessionsAndExitStatus(t *testing.T) {
	e := newEnv(t, 1, 8192)
	e.discoverAll()

	if out, status := e.run("list Server; list ServerPool"); status != 0 || strings.Count(out, "Status: Success") != 2 {
		t.Fatalf("joined exec: exit %d\n%s", status, out)
	}
	out, status := e.batch("list Server\nshow Server name=nope\nlist ServerPool\n")
	if status != 1 || strings.Count(out, "Status: Success") != 2 || strings.Count(out, "Status: Failure") != 1 {
		t.Fatalf("batch with one failure: exit %d\n%s", status, out)
	}
	out, status = e.batch("garbage here\nlist Server\nshow Server name=nope\n")
	if status != 2 || !strings.Contains(out, "XM_0001E") || !strings.Contains(out, "name:ovs1") {
		t.Fatalf("batch with a garbage line: exit %d, want 2 and the next line answered\n%s", status, out)
	}
	// A last line without a newline still runs; exit stops the batch.
	out, status = e.batch("list Server\nexit\nshow Server name=nope")
	if status != 0 || strings.Contains(out, "nope") {
		t.Fatalf("exit in batch: exit %d\n%s", status, out)
	}
	out, status = e.batch("list Server\r\nlist ServerPool")
	if status != 0 || strings.Count(out, "Status: Success") != 2 {
		t.Fatalf("CRLF batch without final newline: exit %d\n%s", status, out)
	}
	out, status = e.batch("show Server name=" + strings.Repeat("x", 2<<20) + "\nlist Server\n")
	if status != 2 || !strings.Contains(out, "none of it was run") || !strings.Contains(out, "name:ovs1") {
		t.Fatalf("over-long line: exit %d\n%.500s", status, out)
	}
}
