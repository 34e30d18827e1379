package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"xenmanager/backend/metrics"
	"xenmanager/backend/names"
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
	// PasswordChecks bounds the bcrypt computations that run at once
	// (logins by password, new passwords); DefaultPasswordChecks when zero.
	PasswordChecks int
	// ShownVMs bounds the show Vm lookups kept while the VMs they found
	// are unchanged (shownVMCache); DefaultShownVMs when zero, none when
	// negative.
	ShownVMs int
	// Metrics records jobs, agent calls and heartbeats; nil records
	// nothing (--metrics-listen off).
	Metrics *metrics.Manager
	// DataDir is the manager's data directory (its keys, and a SQLite
	// database), which no repository may hold; the SQLite database's
	// directory when empty. Required with a PostgreSQL store.
	DataDir string
}

// Manager is the backend: every operation the command layer can ask for.
// It is safe for concurrent use by many sessions.
type Manager struct {
	st       *store.Store
	invCache *inventoryCache // the names of pools, servers and repositories; shared by With's copies
	shownVMs *shownVMCache   // what show Vm read, while unchanged; shared by With's copies; nil keeps nothing
	data     string          // the absolute data directory (Config.DataDir)
	sealer   *Sealer
	log      *slog.Logger
	name     string
	uuid     string
	timeout  time.Duration

	passwordCost  int
	passwordSlots passwordSlots    // shared by every copy (With)
	creds         *credentialCache // passwords verified recently; shared by every copy (With)
	metrics       *metrics.Manager // nil: no metrics

	// opts say how this caller's operations run (With).
	opts RunOptions

	// The parts below have their own mutexes; the Manager holds none, so
	// that With can copy it and every copy shares them. locks is the object
	// lock table, which the job runner shares with heartbeats and
	// reconciliation.
	locks   *lockTable
	clients *clientCache
	jobs    *jobRunner
	place   *placer
	hb      *heartbeats
	ha      *haState
	audit   *auditSpool
	// clones knows the sources of the clones that run; copySlots bounds
	// their copies per server and per repository.
	clones    *cloneRegistry
	copySlots *copyLimiter
	// member is this process's id among the managers of the database
	// (list Manager), new at each start and recorded with every job it
	// runs; membership is what Join recorded of the membership.
	member     string
	membership *memberState
}

const metaManagerUUID = "manager_uuid"

// New opens the manager on cfg.Store, creating its identity on first use.
// It refuses a cfg.Sealer whose key is not the database's
// (ErrWrongSecretKey), having written nothing.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.Store == nil || cfg.Sealer == nil {
		return nil, errors.New("backend: a store and a sealer are required")
	}
	// Before anything is read or written: a manager with another key
	// could open none of the database's secrets.
	if err := checkSecretKey(ctx, cfg.Store, cfg.Sealer); err != nil {
		return nil, err
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
	if cfg.DataDir == "" {
		if cfg.Store.Engine() == store.PostgreSQL {
			return nil, errors.New("backend: a data directory is required with a PostgreSQL store")
		}
		cfg.DataDir = filepath.Dir(cfg.Store.Path())
	}
	data, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("backend: data directory: %w", err)
	}
	m := &Manager{passwordCost: cfg.PasswordCost, passwordSlots: newPasswordSlots(cfg.PasswordChecks), creds: newCredentialCache(), st: cfg.Store, invCache: &inventoryCache{},
		data: data, sealer: cfg.Sealer, log: cfg.Logger, name: cfg.Name,
		timeout: cfg.AgentTimeout, metrics: cfg.Metrics, locks: &lockTable{}, hb: &heartbeats{}, ha: newHAState(),
		clones: newCloneRegistry(), copySlots: newCopyLimiter(), member: NewID(TypeManager), membership: &memberState{}}
	shown := cfg.ShownVMs
	if shown == 0 {
		shown = DefaultShownVMs
	}
	m.shownVMs = newShownVMCache(m.st, shown)
	if m.st.Shared() {
		// Several managers may share this store: their jobs' object locks
		// meet there.
		m.locks.shared = &sharedLocks{st: m.st, member: m.member}
	}
	m.clients = newClientCache(m.sealer, m.timeout, m.metrics.AgentCallObserver())
	m.jobs = newJobRunner(m.st, m.log, m.locks, m.jobFailed, m.metrics, m.member, m.membership)
	m.place = &placer{st: m.st, clients: m.clients, inventory: m.inventory}
	err = m.st.Write(ctx, func(q *store.Queries) error {
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
	m.audit = newAuditSpool(m.st, m.log)
	return m, nil
}

// RunOptions say how the operations of one caller (a command) run, besides
// the actor its context carries.
type RunOptions struct {
	// Async makes operations return as soon as their job is recorded (an
	// error of KindStillRunning carrying the job id), leaving the job to
	// run: "set commandMode=Asynchronous".
	Async bool
	// Terse makes VM operations return only the VM's id and name, not its
	// full view: a multi-object action prints one line per VM and need not
	// build a thousand views.
	Terse bool
	// Observe, when set, is called with the id of each job an operation
	// starts, as soon as its row is written, and of the job WaitJob or
	// AbortJob waits for. The command layer uses it to answer at once in
	// asynchronous mode, to name the job when it stops waiting for it, and
	// to draw the progress of the jobs it waits for.
	Observe func(jobID string)
	// Found, when set, keeps the VMs FindVMs finds for the VM jobs of a
	// multi-object action (FoundVMs).
	Found *FoundVMs
}

// With returns a Manager that shares m's state (store, jobs, locks,
// clients, placement) and whose operations run as o says; m is unchanged.
// The options are a value of the Manager a caller holds, not of its
// context, so that what changes how an operation runs is in plain sight.
func (m *Manager) With(o RunOptions) *Manager {
	c := *m
	c.opts = o
	return &c
}

// Options returns the options m's operations run with.
func (m *Manager) Options() RunOptions { return m.opts }

// Metrics is where the manager's parts record what they do (the command
// layer its commands); nil when metrics are off, and a nil
// *metrics.Manager records nothing.
func (m *Manager) Metrics() *metrics.Manager { return m.metrics }

// UUID is the manager's identity, sent to agents as their owner.
func (m *Manager) UUID() string { return m.uuid }

// Close writes the audit records waiting in the spool (and logs those it
// cannot) and drops the agent connections.
func (m *Manager) Close() {
	m.ha.wg.Wait() // an HA round's agent calls use the clients
	m.audit.close()
	m.clients.closeAll()
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
// a plain name, equals it. The pattern matches in the form it was given and
// in NFC, the form names are stored in, so that a name typed with a
// combining accent finds the one stored with the accented letter, and a name
// stored before names were normalised is still found as it was given.
func matchName(pattern, name string) (bool, error) {
	nfc := names.Normalize(pattern)
	if !IsPattern(pattern) {
		return pattern == name || nfc == name, nil
	}
	ok, err := path.Match(pattern, name)
	if err != nil {
		return false, errorf(KindInvalidArgument, "name pattern %q is malformed: use * ? and [...] as in shell globs", pattern)
	}
	if !ok && nfc != pattern {
		ok, _ = path.Match(nfc, name)
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

// ValidateName checks a name given to an object of kind (the rule of
// package names) and returns it in the form it is stored in (NFC); the
// error says what is wrong with the name and what a name may be.
func ValidateName(kind, name string) (string, error) {
	n, err := names.Check(name)
	if err != nil {
		return "", errorf(KindInvalidArgument, "invalid %s name %s: %v; %s", kind, quoteName(name), err, names.Rule)
	}
	return n, nil
}

// quoteName quotes a name for a message, escaping what is not printable and
// cutting it after the length a name may have.
func quoteName(name string) string {
	if r := []rune(name); len(r) > names.MaxRunes+10 {
		return strconv.Quote(string(r[:names.MaxRunes])) + "..."
	}
	return strconv.Quote(name)
}

// ManagerInfo describes this manager (show Manager).
type ManagerInfo struct {
	ID, Name                         string
	Started                          time.Time
	Pools, Servers, VMs, RunningJobs int
	Settings                         ManagerSettings
	// Audit is what waits in the audit spool and what it lost.
	Audit AuditStats
	// Member is this manager among the managers of the database (its id
	// alone before it joined); LeaderID is the member that leads, "" when
	// none holds the lease.
	Member   ManagerMember
	LeaderID string
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
		n, err := counted(q.Count(ctx, "vms", "pool_id", p.ID))
		if err != nil {
			return ManagerInfo{}, err
		}
		vms += n
	}
	settings, err := m.settings(ctx)
	if err != nil {
		return ManagerInfo{}, err
	}
	members, err := m.Members(ctx)
	if err != nil {
		return ManagerInfo{}, err
	}
	return ManagerInfo{ID: m.uuid, Name: m.name, Started: startedAt, Pools: len(pools), Servers: len(servers), VMs: vms,
		RunningJobs: m.jobs.count(), Settings: settings, Audit: m.audit.stats(), Member: thisMember(m, members), LeaderID: leaderOf(members)}, nil
}
