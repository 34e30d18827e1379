// Package agenttest starts real agents for tests, in the manner of
// net/http/httptest: each serves HTTPS XML-RPC on 127.0.0.1 on a port the
// kernel picks, over a simulated host in a temporary directory, with fault
// injection (sim_set) on, and is shut down when the test ends.
package agenttest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"

	"xenmanager/backend/agent"
	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agent/xensim"
)

// Agent is an agent serving for the length of one test.
type Agent struct {
	*agent.Agent
	Addr     *net.TCPAddr // where it listens: 127.0.0.1 and a free port
	Password string       // the basic-auth password of user "oracle"
	Hostname string
}

// Port is the port the agent listens on.
func (a *Agent) Port() int { return a.Addr.Port }

// count numbers the agents of a test binary, for default hostnames and
// passwords that differ between agents.
var count atomic.Int64

// Start starts an agent configured by cfg on 127.0.0.1:0 and registers its
// shutdown with t.Cleanup. Fields of cfg left zero get test defaults: a
// data directory under t.TempDir, a hostname "ovs<n>" and a password
// "agent-pw-<n>" unique in the test binary, a logger that discards. Fault
// injection is always on.
func Start(t testing.TB, cfg agent.Config) *Agent {
	t.Helper()
	n := count.Add(1)
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Hostname == "" {
		cfg.Hostname = fmt.Sprintf("ovs%d", n)
	}
	if cfg.Password == "" {
		cfg.Password = fmt.Sprintf("agent-pw-%d", n)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg.SimControl = true
	a, addr, err := agent.Start(cfg, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("agenttest: start agent %s: %v", cfg.Hostname, err)
	}
	t.Cleanup(func() {
		if err := a.Shutdown(context.Background()); err != nil {
			t.Errorf("agenttest: shut down agent %s: %v", cfg.Hostname, err)
		}
	})
	return &Agent{Agent: a, Addr: addr.(*net.TCPAddr), Password: cfg.Password, Hostname: cfg.Hostname}
}

// RunningDomains counts the guest domains the agent's host runs (dom0
// left out): what a test checks the manager's starts and stops against.
func (a *Agent) RunningDomains(t testing.TB) int {
	t.Helper()
	doms, err := a.Host().ListVMs()
	if err != nil {
		t.Fatalf("agenttest: list the domains of %s: %v", a.Hostname, err)
	}
	n := 0
	for _, d := range doms {
		if d.DomID != 0 {
			n++
		}
	}
	return n
}

// SimulatedAs is a driver for Config.Driver: the simulated host (of
// xensim's default size) reporting hypervisor kind and version in
// discover_server, so that tests of what the manager does with servers of
// another hypervisor (a pool refuses to mix types) need not run one. The
// rest is the simulated host's, fault injection included, though
// Agent.Sim, which looks for the simulated host itself, is nil.
func SimulatedAs(kind, version string) hypervisor.NewDriver {
	return func(env hypervisor.Env) (hypervisor.Driver, error) {
		sim, err := xensim.New(xensim.Config{}, env)
		if err != nil {
			return nil, err
		}
		return reportedAs{Sim: sim, kind: kind, version: version}, nil
	}
}

// reportedAs is a simulated host that names another hypervisor.
type reportedAs struct {
	*xensim.Sim
	kind, version string
}

func (d reportedAs) Hypervisor() (kind, version string) { return d.kind, d.version }
