package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

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

	mu      sync.Mutex // guards clients
	clients map[string]*agentclient.Client
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
	m := &Manager{st: cfg.Store, sealer: cfg.Sealer, log: cfg.Logger, name: cfg.Name,
		timeout: cfg.AgentTimeout, clients: map[string]*agentclient.Client{}}
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
	return m, nil
}

// UUID is the manager's identity, sent to agents as their owner.
func (m *Manager) UUID() string { return m.uuid }

// Close drops the agent connections.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, c := range m.clients {
		c.Close()
		delete(m.clients, id)
	}
}

// client returns the cached pinned client for s, building it on first use.
func (m *Manager) client(s store.Server) (*agentclient.Client, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.clients[s.ID]; ok {
		return c, nil
	}
	password, err := m.sealer.Open(s.AgentPassword)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "cannot read the agent password of server " + s.Name, Cause: err}
	}
	c, err := agentclient.New(agentclient.Config{Address: s.Address, Port: s.Port, Password: password,
		PinSHA256: s.CertSPKISHA256, Timeout: m.timeout})
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

// resolve finds the one object ref names, or fails with NotFound or
// Ambiguous (listing the ids, so that the operator can pick one).
func resolve[T any](ctx context.Context, typeName string, ref Ref,
	byID func(context.Context, string) (T, error),
	byName func(context.Context, string) ([]T, error),
	idOf func(T) string) (T, error) {
	var zero T
	if ref.ID != "" {
		v, err := byID(ctx, ref.ID)
		if errors.Is(err, store.ErrNotFound) {
			return zero, errorf(KindNotFound, "%s id=%s not found", typeName, ref.ID)
		}
		if err != nil {
			return zero, &Error{Kind: KindInternal, Msg: "read " + typeName, Cause: err}
		}
		return v, nil
	}
	found, err := byName(ctx, ref.Name)
	if err != nil {
		return zero, &Error{Kind: KindInternal, Msg: "read " + typeName, Cause: err}
	}
	switch len(found) {
	case 0:
		return zero, errorf(KindNotFound, "%s %q not found", typeName, ref.Name)
	case 1:
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, f := range found {
		ids[i] = idOf(f)
	}
	return zero, errorf(KindAmbiguous, "name %q matches %d %s objects (%s); name one with id=", ref.Name, len(found), typeName, joinComma(ids))
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
// deleted at the same time). Each key holds a one-slot channel.
type objectLocks struct {
	mu    sync.Mutex // guards slots
	slots map[string]chan struct{}
}

// lock waits until key is free or ctx ends; the returned func releases it.
func (l *objectLocks) lock(ctx context.Context, key string) (func(), error) {
	l.mu.Lock()
	if l.slots == nil {
		l.slots = map[string]chan struct{}{}
	}
	slot, ok := l.slots[key]
	if !ok {
		slot = make(chan struct{}, 1)
		l.slots[key] = slot
	}
	l.mu.Unlock()
	select {
	case slot <- struct{}{}:
		return func() { <-slot }, nil
	case <-ctx.Done():
		return nil, errorf(KindConflict, "another operation on the same object did not finish in time")
	}
}
