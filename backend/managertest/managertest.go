// Package managertest opens a manager core for tests, in the manner of
// net/http/httptest: a backend.Manager on a store in a temporary directory,
// with real agents (agenttest) on 127.0.0.1 ports the kernel picks, all shut
// down when the test ends. A test of the core then needs no SSH server, and
// one call gives it a ready fleet: servers discovered, in a pool, with a
// repository.
//
// The store is SQLite, or PostgreSQL (a new database of store/pgtest) when
// Options.Postgres is set or the environment has
// XENMANAGER_TEST_ENGINE=postgres, which runs a suite of core tests on
// PostgreSQL as they are.
package managertest

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"xenmanager/backend"
	"xenmanager/backend/agent"
	"xenmanager/backend/agent/agenttest"
	"xenmanager/backend/agentclient"
	"xenmanager/backend/metrics"
	"xenmanager/store"
	"xenmanager/store/pgtest"
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
	// Postgres opens the store on a new PostgreSQL database (store/pgtest:
	// the test is skipped without a server) rather than in Dir; EngineEnv
	// set to postgres does the same for every core.
	Postgres bool
	// Database, when set, is the database to open, whatever Postgres
	// says: one several cores share (a URL of store/pgtest.Database).
	Database string
	// SecretKeyFile is the sealer's key file (created when missing):
	// cores sharing a Database must be given the same, as managers
	// sharing one are; Dir's secret.key when empty.
	SecretKeyFile string
	// WithoutEventsWait lists the agents (by index, 0 for ovs1) that
	// neither list nor serve agentapi.ExtEventsWait, as agents from before
	// it (agent.Config.WithoutEventsWait).
	WithoutEventsWait []int
}

// EngineEnv names the environment variable that, set to postgres, opens
// every core's store on PostgreSQL (Options.Postgres).
const EngineEnv = "XENMANAGER_TEST_ENGINE"

// Core is a manager core open for one test, and its agents.
type Core struct {
	Manager *backend.Manager
	Store   *store.Store
	// Dir holds the sealer's key, and the store when it is SQLite.
	Dir string
	// Target is the store's database as store.Open took it: the SQLite
	// file's path, or the PostgreSQL database's URL.
	Target string
	// AdminPassword is the password EnsureAdmin gave user admin ("" when
	// another core on the same Database had made it).
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
			CPUs: opts.CPUs, MemoryMiB: opts.MemoryMiB, RebootDelay: opts.RebootDelay,
			WithoutEventsWait: slices.Contains(opts.WithoutEventsWait, i-1)}))
	}
	target := filepath.Join(c.Dir, "manager.db")
	switch {
	case opts.Database != "":
		target = opts.Database
	case (opts.Postgres || os.Getenv(EngineEnv) == "postgres") && pgtest.Configured():
		tpl, err := schemaTemplate()
		if err != nil {
			t.Fatalf("managertest: %v", err)
		}
		target = pgtest.DatabaseFrom(t, tpl)
	case opts.Postgres || os.Getenv(EngineEnv) == "postgres":
		target = pgtest.Database(t) // skips, or fails under CI=true
	}
	c.Target = target
	st, err := store.Open(ctx, target)
	if err != nil {
		t.Fatalf("managertest: open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	c.Store = st
	keyFile := opts.SecretKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(c.Dir, "secret.key")
	}
	sealer, err := backend.LoadOrCreateSealer(keyFile)
	if err != nil {
		t.Fatalf("managertest: sealer: %v", err)
	}
	m, err := backend.New(ctx, backend.Config{Store: st, Sealer: sealer, Logger: opts.Logger, DataDir: c.Dir,
		AgentTimeout: opts.AgentTimeout, PasswordCost: bcrypt.MinCost, Metrics: opts.Metrics})
	if err != nil {
		t.Fatalf("managertest: open manager: %v", err)
	}
	t.Cleanup(m.Close)
	c.Manager = m
	pw, created, err := m.EnsureAdmin(ctx, nil)
	if err != nil || !created && opts.Database == "" { // a shared database may have its admin already
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

// Behind opens a connection pool on the core's database behind the store's
// back, for tests that break or change a table as a failing database or a
// hand-edit would; it is closed when the test ends. Foreign keys are not
// checked on it: SQLite's default, and on PostgreSQL the session's
// replication role (which the test server's superuser may set; it skips
// triggers too, as SQLite's hook of the store's own connection does not
// see this one's changes).
func (c *Core) Behind() *sql.DB {
	c.t.Helper()
	var db *sql.DB
	var err error
	if store.IsPostgres(c.Target) {
		u, perr := url.Parse(c.Target)
		if perr != nil {
			c.t.Fatal("managertest: the database URL does not parse")
		}
		q := u.Query()
		q.Set("session_replication_role", "replica")
		u.RawQuery = q.Encode()
		db, err = sql.Open("pgx", u.String()) // registered by store's driver
	} else {
		u := url.URL{Scheme: "file", Path: c.Target, RawQuery: "_pragma=busy_timeout(5000)"}
		db, err = sql.Open("sqlite", u.String())
	}
	if err != nil {
		c.t.Fatalf("managertest: open the database: %v", err)
	}
	c.t.Cleanup(func() { db.Close() })
	return db
}

// schemaTemplate is the name of a PostgreSQL database holding the store's
// schema, migrated once per server and schema (pgtest.Template): every
// core's database is a copy of it, which takes a fraction of the time its
// migrations do.
var schemaTemplate = sync.OnceValues(func() (string, error) {
	digest, err := store.SchemaDigest(store.PostgreSQL)
	if err != nil {
		return "", err
	}
	return pgtest.Template("xm_schema_"+digest[:16], func(url string) error {
		st, err := store.Open(context.Background(), url)
		if err != nil {
			return err
		}
		return st.Close()
	})
})
