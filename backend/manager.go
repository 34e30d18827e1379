package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"xenmanager/backend/agentclient"
	"xenmanager/store"
)

// Config is what a Manager needs.
type Config struct {
	Store  *store.Store
	Sealer *Sealer
	Logger *slog.Logger
	// Name is the manager's name given to agents in take_ownership.
	Name string
	// AgentTimeout bounds one agent call; 30 s when zero.
	AgentTimeout time.Duration
	// PasswordCost is the bcrypt cost of new password hashes;
	// bcrypt.DefaultCost when zero. Tests lower it.
	PasswordCost int
}

// Manager is the backend: every operation the command layer can ask for.
// It is safe for concurrent use by many sessions.
type Manager struct {
	st      *store.Store
	sealer  *Sealer
	log     *slog.Logger
	name    string
	uuid    string
	timeout time.Duration
	locks   objectLocks

	passwordCost int

	mu      sync.Mutex // guards clients
	clients map[string]*agentclient.Client

	jobsMu  sync.Mutex // guards running
	running map[string]*runningJob

	placeMu     sync.Mutex // serialises placement decisions
	reserved    reservations
	capacity    capacity
	serverLists serverLists

	hb    heartbeats
	audit *auditWriter
}

const metaManagerUUID = "manager_uuid"

// New opens the manager on cfg.Store, creating its identity on first use.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.Store == nil || cfg.Sealer == nil {
		return nil, errors.New("backend: a store and a sealer are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Name == "" {
		cfg.Name = "xenmanager"
	}
	if cfg.AgentTimeout <= 0 {
		cfg.AgentTimeout = 30 * time.Second
	}
	if cfg.PasswordCost == 0 {
		cfg.PasswordCost = bcrypt.DefaultCost
	}
	m := &Manager{passwordCost: cfg.PasswordCost, st: cfg.Store, sealer: cfg.Sealer, log: cfg.Logger, name: cfg.Name,
		timeout: cfg.AgentTimeout, clients: map[string]*agentclient.Client{}, running: map[string]*runningJob{}}
	err := m.st.Write(ctx, func(q *store.Queries) error {
		id, err := q.GetMeta(ctx, metaManagerUUID)
		if errors.Is(err, store.ErrNotFound) {
			id = NewID(TypeManager)
			err = q.SetMeta(ctx, metaManagerUUID, id)
		}
		m.uuid = id
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load manager identity: %w", err)
	}
	m.audit = newAuditWriter(m.st, m.log)
	return m, nil
}

// UUID is the manager's identity, sent to agents as their owner.
func (m *Manager) UUID() string { return m.uuid }

// Close writes the pending audit records and drops the agent connections.
func (m *Manager) Close() {
	m.audit.close()
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, c := range m.clients {
		c.Close()
		delete(m.clients, id)
	}
}

// client returns the cached pinned client for s, building it on first use.
func (m *Manager) client(s store.Server) (*agentclient.Client, error) {
	password, err := m.sealer.Open(s.AgentPassword)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "cannot read the agent password of server " + s.Name, Cause: err}
	}
	cfg := agentclient.Config{Address: s.Address, Port: s.Port, Password: password,
		PinSHA256: s.CertSPKISHA256, Timeout: m.timeout}
	m.mu.Lock()
	defer m.mu.Unlock()
	// A cached client built from an older row (another address, password or
	// pin) is replaced, whoever read which row first.
	if c, ok := m.clients[s.ID]; ok {
		if c.Reaches(cfg) {
			return c, nil
		}
		c.Close()
	}
	c, err := agentclient.New(cfg)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "cannot build a client for server " + s.Name, Cause: err}
	}
	m.clients[s.ID] = c
	return c, nil
}

// forgetClient drops the cached client of server id (its address, password
// or pin changed).
func (m *Manager) forgetClient(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.clients[id]; ok {
		c.Close()
		delete(m.clients, id)
	}
}

// Ref names one object: by id, or by name (which may match several).
type Ref struct {
	ID   string
	Name string
}

func (r Ref) String() string {
	if r.ID != "" {
		return "id=" + r.ID
	}
	return fmt.Sprintf("%q", r.Name)
}

// IsPattern reports whether a name is a glob pattern (* ? [...]); object
// names cannot hold those characters (ValidateName), so the two never mix.
func IsPattern(name string) bool { return strings.ContainsAny(name, "*?[") }

// matchName reports whether name matches pattern (path.Match syntax) or, for
// a plain name, equals it.
func matchName(pattern, name string) (bool, error) {
	if !IsPattern(pattern) {
		return pattern == name, nil
	}
	ok, err := path.Match(pattern, name)
	if err != nil {
		return false, errorf(KindInvalidArgument, "name pattern %q is malformed: use * ? and [...] as in shell globs", pattern)
	}
	return ok, nil
}

func joinComma(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ", "
		}
		out += v
	}
	return out
}

var nameRx = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N} ._@+:-]{0,99}$`)

// ValidateName checks an object name: 1 to 100 characters, starting with a
// letter or digit, then letters, digits, spaces and . _ @ + : -
func ValidateName(kind, name string) error {
	if !nameRx.MatchString(name) {
		return errorf(KindInvalidArgument, "invalid %s name %q: use 1 to 100 letters, digits, spaces and . _ @ + : - starting with a letter or digit", kind, name)
	}
	return nil
}

// objectLocks serialises operations on one object (a VM being started is not
// deleted at the same time). Each key holds a one-slot channel and, while
// taken, who holds it, so that a waiter that gives up can say.
type objectLocks struct {
	mu      sync.Mutex // guards slots and holders
	slots   map[string]chan struct{}
	holders map[string]holder
}

// holder is the job that holds a lock.
type holder struct {
	jobID, summary string
	since          time.Time
}

// lockWait bounds how long an operation waits for another one on the same
// object before it gives up (the caller's context may end it sooner: the
// command layer gives it commandTimeout).
const lockWait = 5 * time.Minute

// lock takes key for an operation that is not a job.
func (l *objectLocks) lock(ctx context.Context, key string) (func(), error) {
	return l.lockFor(ctx, key, holder{summary: "an internal operation", since: time.Now()})
}

// lockFor waits until key is free, ctx ends or lockWait passes; the
// returned func releases it. The error of a wait that gives up names the job
// that holds the lock.
func (l *objectLocks) lockFor(ctx context.Context, key string, h holder) (func(), error) {
	l.mu.Lock()
	if l.slots == nil {
		l.slots = map[string]chan struct{}{}
		l.holders = map[string]holder{}
	}
	slot, ok := l.slots[key]
	if !ok {
		slot = make(chan struct{}, 1)
		l.slots[key] = slot
	}
	l.mu.Unlock()
	timer := time.NewTimer(lockWait)
	defer timer.Stop()
	start := time.Now()
	select {
	case slot <- struct{}{}:
		l.mu.Lock()
		l.holders[key] = h
		l.mu.Unlock()
		return func() {
			l.mu.Lock()
			delete(l.holders, key)
			l.mu.Unlock()
			<-slot
		}, nil
	case <-ctx.Done():
	case <-timer.C:
	}
	l.mu.Lock()
	cur, held := l.holders[key]
	l.mu.Unlock()
	by := "another operation"
	if held && cur.jobID != "" {
		by = fmt.Sprintf("job %s (%s, running for %s)", cur.jobID, cur.summary, time.Since(cur.since).Round(time.Second))
	}
	return nil, errorf(KindConflict, "object %s is locked by %s; gave up after waiting %s", key, by, time.Since(start).Round(time.Millisecond))
}

// ManagerInfo describes this manager (show Manager).
type ManagerInfo struct {
	ID, Name                         string
	Started                          time.Time
	Pools, Servers, VMs, RunningJobs int
}

var startedAt = time.Now()

// Info returns what the manager is and holds.
func (m *Manager) Info(ctx context.Context) (ManagerInfo, error) {
	q := m.st.Read()
	pools, err := q.ServerPools(ctx)
	if err != nil {
		return ManagerInfo{}, &Error{Kind: KindInternal, Msg: "read pools", Cause: err}
	}
	servers, err := q.Servers(ctx)
	if err != nil {
		return ManagerInfo{}, &Error{Kind: KindInternal, Msg: "read servers", Cause: err}
	}
	var vms int
	for _, p := range pools {
		n, _ := q.Count(ctx, "vms", "pool_id", p.ID)
		vms += n
	}
	m.jobsMu.Lock()
	running := len(m.running)
	m.jobsMu.Unlock()
	return ManagerInfo{ID: m.uuid, Name: m.name, Started: startedAt, Pools: len(pools), Servers: len(servers), VMs: vms, RunningJobs: running}, nil
}
