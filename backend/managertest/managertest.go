// Package managertest opens a manager core for tests, in the manner of
// net/http/httptest: a backend.Manager on a store in a temporary directory,
// with real agents (agenttest) on 127.0.0.1 ports the kernel picks, all shut
// down when the test ends. A test of the core then needs no SSH server, and
// one call gives it a ready fleet: servers discovered, in a pool, with a
// repository.
package managertest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"xenmanager/backend"
	"xenmanager/backend/agent"
	"xenmanager/backend/agent/agenttest"
	"xenmanager/backend/agentclient"
	"xenmanager/backend/metrics"
	"xenmanager/store"
)

// Options says what to open. Zero values give a manager with no agents.
type Options struct {
	// Agents is how many agents to start, hostnames ovs1, ovs2, ...
	Agents int
	// MemoryMiB and CPUs are each agent's simulated host; the agent's
	// defaults when zero.
	MemoryMiB int64
	CPUs      int
	// RebootDelay is how long a simulated host stays down after a reboot;
	// the agent's default when zero.
	RebootDelay time.Duration
	// AgentTimeout bounds one agent call of the manager; 5 s when zero, so
	// that a test against a hung agent fails in seconds, not in the 30 s of
	// production.
	AgentTimeout time.Duration
	// Logger is the manager's; one that discards when nil.
	Logger *slog.Logger
	// Dir, when set, is where the store and the sealer's key go (say, a
	// filesystem of the test's own that it fills); a temporary directory
	// when empty.
	Dir string
	// Metrics is the manager's (backend.Config.Metrics); none when nil.
	Metrics *metrics.Manager
}

// Core is a manager core open for one test, and its agents.
type Core struct {
	Manager *backend.Manager
	Store   *store.Store
	// Dir holds the store and the sealer's key.
	Dir string
	// AdminPassword is the password EnsureAdmin gave user admin.
	AdminPassword string
	// Agents are the agents started, in the order of their hostnames.
	Agents []*agenttest.Agent

	t testing.TB
}

// Pool and Repo are the names Ready gives the pool and the repository.
const (
	Pool = "pool1"
	Repo = "repo1"
)

// Open opens a manager core as opts says, with user admin created, and
// registers its closing (and its agents' shutdown) with t.Cleanup.
func Open(t testing.TB, opts Options) *Core {
	t.Helper()
	ctx := context.Background()
	if opts.AgentTimeout <= 0 {
		opts.AgentTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = discard()
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	c := &Core{Dir: opts.Dir, t: t}
	for i := 1; i <= opts.Agents; i++ {
		c.Agents = append(c.Agents, agenttest.Start(t, agent.Config{Hostname: fmt.Sprintf("ovs%d", i),
			CPUs: opts.CPUs, MemoryMiB: opts.MemoryMiB, RebootDelay: opts.RebootDelay}))
	}
	st, err := store.Open(ctx, filepath.Join(c.Dir, "manager.db"))
	if err != nil {
		t.Fatalf("managertest: open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	c.Store = st
	sealer, err := backend.LoadOrCreateSealer(filepath.Join(c.Dir, "secret.key"))
	if err != nil {
		t.Fatalf("managertest: sealer: %v", err)
	}
	m, err := backend.New(ctx, backend.Config{Store: st, Sealer: sealer, Logger: opts.Logger,
		AgentTimeout: opts.AgentTimeout, PasswordCost: bcrypt.MinCost, Metrics: opts.Metrics})
	if err != nil {
		t.Fatalf("managertest: open manager: %v", err)
	}
	t.Cleanup(m.Close)
	c.Manager = m
	pw, created, err := m.EnsureAdmin(ctx, nil)
	if err != nil || !created {
		t.Fatalf("managertest: EnsureAdmin = %v, %v", created, err)
	}
	c.AdminPassword = pw
	return c
}

// Ready opens a manager core whose agents are discovered, in pool Pool,
// which has repository Repo in a temporary directory: a fleet where VMs can
// be created and started.
func Ready(t testing.TB, opts Options) *Core {
	t.Helper()
	c := Open(t, opts)
	c.Discover()
	c.CreatePool(Pool)
	c.CreateRepository(Repo, Pool, filepath.Join(t.TempDir(), "repo"))
	return c
}

// Admin returns a context whose operations run as user admin.
func (c *Core) Admin() context.Context {
	return backend.WithActor(context.Background(), backend.Actor{User: "admin", Role: backend.RoleAdministrator})
}

// Discover discovers every agent (discoverServer) and returns the servers,
// in the order of the agents.
func (c *Core) Discover() []backend.Server {
	c.t.Helper()
	var out []backend.Server
	for _, a := range c.Agents {
		s, err := c.Manager.DiscoverServer(c.Admin(), backend.DiscoverRequest{Address: "127.0.0.1", Port: a.Port(), Password: a.Password})
		if err != nil {
			c.t.Fatalf("managertest: discover %s: %v", a.Hostname, err)
		}
		out = append(out, s)
	}
	return out
}

// CreatePool creates a server pool and adds every agent's server to it (they
// must have been discovered).
func (c *Core) CreatePool(name string) backend.ServerPool {
	c.t.Helper()
	p, err := c.Manager.CreateServerPool(c.Admin(), name, "")
	if err != nil {
		c.t.Fatalf("managertest: create pool %s: %v", name, err)
	}
	for _, a := range c.Agents {
		if _, err := c.Manager.AddServerToPool(c.Admin(), backend.Ref{Name: a.Hostname}, backend.Ref{ID: p.ID}); err != nil {
			c.t.Fatalf("managertest: add %s to pool %s: %v", a.Hostname, name, err)
		}
	}
	return p
}

// CreateRepository creates a repository at dir on a pool.
func (c *Core) CreateRepository(name, pool, dir string) backend.Repository {
	c.t.Helper()
	r, err := c.Manager.CreateRepository(c.Admin(), backend.CreateRepositoryRequest{Name: name, FSLocation: dir, Pool: backend.Ref{Name: pool}})
	if err != nil {
		c.t.Fatalf("managertest: create repository %s: %v", name, err)
	}
	return r
}

// AgentClient returns a client of agent i (from 0) of its own, pinned to
// the agent's certificate, for what a test does behind the manager's back
// (sim_set, a domain stopped outside it); it is closed when the test ends.
func (c *Core) AgentClient(i int) *agentclient.Client {
	c.t.Helper()
	a := c.Agents[i]
	cl, err := agentclient.New(agentclient.Config{Address: "127.0.0.1", Port: a.Port(), Password: a.Password,
		PinSHA256: a.SPKISHA256()})
	if err != nil {
		c.t.Fatalf("managertest: client of %s: %v", a.Hostname, err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
