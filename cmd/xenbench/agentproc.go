package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"xenmanager/backend/agentclient"
)

// agentProc is a xenagent process on a free loopback port (figures 8, 10,
// 11 and 12): the simulated host unless its flags say otherwise. Unlike the
// agents of startFleet, its CPU and its files are its own, as a server's
// are.
type agentProc struct {
	*listener
	name, password string
	data           string // its data directory
}

// startAgentProc runs the xenagent binary named name, with its data
// directory dir/name, a password of its own and then the flags extra; stop
// waits grace between SIGTERM and SIGKILL.
func (b *bench) startAgentProc(ctx context.Context, dir, name string, grace time.Duration, extra ...string) (*agentProc, error) {
	data := filepath.Join(dir, name)
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	password := name + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	pwFile := data + ".pw"
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		return nil, err
	}
	args := append([]string{"--listen", "127.0.0.1:0", "--data", data, "--password-file", pwFile, "--hostname", name}, extra...)
	cmd := exec.Command(filepath.Join(b.bin, "xenagent"), args...)
	l, err := startListener(ctx, cmd, "xenagent "+name, data+".log", agentListenRx, 30*time.Second, grace)
	if err != nil {
		return nil, err
	}
	return &agentProc{listener: l, name: name, password: password, data: data}, nil
}

// discoverLine is the command that makes a manager own the agent.
func (a *agentProc) discoverLine() string {
	return fmt.Sprintf("discoverServer ipAddress=127.0.0.1 port=%d password=%s\n", a.port, a.password)
}

// client is an agent client of the harness's own for the agent, whose
// calls give up after timeout (the long calls only when ctx ends).
func (a *agentProc) client(timeout time.Duration) (*agentclient.Client, error) {
	return agentclient.New(agentclient.Config{Address: "127.0.0.1", Port: a.port, Password: a.password, Timeout: timeout})
}

// freeze stops the process (SIGSTOP) as a hung server stops; thaw resumes
// it (SIGCONT).
func (a *agentProc) freeze() error { return syscall.Kill(a.pid, syscall.SIGSTOP) }
func (a *agentProc) thaw() error   { return syscall.Kill(a.pid, syscall.SIGCONT) }

// stopAll resumes and stops agents (a frozen process would hold its SIGTERM
// until SIGKILL).
func stopAll(agents []*agentProc) {
	for _, a := range agents {
		a.thaw()
	}
	for _, a := range agents {
		a.stop()
	}
}
