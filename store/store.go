// Package store keeps the manager's configuration in SQLite (the embedded
// default: one file, one manager) or PostgreSQL (several managers serving
// one fleet): numbered, embedded migrations for both engines, one writer
// connection whose write transactions serialise (SQLite's single writer;
// an advisory lock on PostgreSQL, writer.go) and a bounded pool of
// readers. SQL is portable: $n placeholders, RETURNING, ON CONFLICT, and
// the same queries run on both engines.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, registered as "sqlite"
)

// Store is an open manager database. It is safe for concurrent use: writes go
// through one connection (SQLite allows one writer) by the group-commit
// writer (writer.go), reads through a pool; on SQLite a background
// checkpointer (checkpoint.go) keeps the WAL short, on PostgreSQL a
// listener (generation_postgres.go) hears of other managers' changes to
// the servers.
type Store struct {
	engine     Engine
	where      string        // the database for messages, without a password (Describe)
	path       string        // the SQLite database file, for Backup; "" on PostgreSQL
	lock       *Lock         // the lock Open took, released by Close; nil after OpenLocked (the caller's) and on PostgreSQL
	pg         *pgListener   // the listener of the servers' generation; nil on SQLite
	writerPID  atomic.Uint32 // the backend pid of the writer's connection on PostgreSQL, whose notifications the listener skips
	write      *sql.DB
	read       *sql.DB
	readStmts  *stmtCache  // prepared statements of the reader pool
	writeStmts *writeStmts // prepared statements of the writer connection
	// inventoryGen counts writes to the servers, server_pools,
	// repositories and users tables, so
	// that callers may cache what they read of them and know when to read
	// again (generation.go). inventoryDirty is set by the writer
	// connection's hook when the running write changes such a row, and
	// taken by the writer after the write (runOne).
	inventoryGen   atomic.Int64
	inventoryDirty atomic.Bool
	// vmGen are the VMs' generations (vmgeneration.go), bumped as
	// inventoryGen is.
	vmGen vmGens

	// The group-commit writer (see Write): kick wakes the writer
	// goroutine, which closes writerDone on exit.
	wmu        sync.Mutex  // guards queue and wclosed
	queue      []*writeReq // the writes asked for and not yet taken
	wclosed    bool        // Close was called: no write joins the queue
	kick       chan struct{}
	writerDone chan struct{}
	writesRun  atomic.Int64 // the writes run, see WriteStats
	writeTxs   atomic.Int64 // the write transactions, see WriteStats
	// writeSent counts the statements sent on the writer connection, see
	// WriteStatements.
	writeSent atomic.Int64
	// writeTrips counts the round trips they took, see WriteRoundTrips.
	writeTrips atomic.Int64

	// The background checkpointer: ckKick asks for a checkpoint, ckStop
	// ends it, ckDone is closed when it has; ckEvery is how many write
	// transactions the writer lets pass between two.
	ckKick, ckStop, ckDone chan struct{}
	ckEvery                atomic.Int64

	// opts is what Open was given (Option).
	opts openOptions
}

// Option changes how Open and OpenLocked open a database.
type Option func(*openOptions)

type openOptions struct {
	// secretName and secretCheck: CheckSecretBeforeMigrating.
	secretName  string
	secretCheck func(sealed string) error
}

// CheckSecretBeforeMigrating makes Open call check with the sealed value of
// the secret called name, when the database holds it, before it applies any
// migration; check's error fails Open, which then has changed nothing, not
// even the schema. A manager given another secret key than its database's
// must refuse to start before it writes anything, and a migration is a
// write (one that older managers of the same database could not read
// past). A database without the secret (a new one, or one older than the
// secrets table) is migrated as before, and the caller checks its key
// after.
func CheckSecretBeforeMigrating(name string, check func(sealed string) error) Option {
	return func(o *openOptions) { o.secretName, o.secretCheck = name, check }
}

// dsn builds the connection string found to work for a server:
// WAL, a busy timeout, foreign keys, and immediate transactions so that a
// read-then-write transaction never fails with SQLITE_BUSY_SNAPSHOT.
func dsn(path string, readOnly bool) string {
	v := url.Values{}
	v.Add("_pragma", "busy_timeout(5000)")
	v.Add("_pragma", "journal_mode(WAL)")
	v.Add("_pragma", "synchronous(NORMAL)")
	v.Add("_pragma", "foreign_keys(1)")
	if readOnly {
		v.Add("_pragma", "query_only(1)")
	} else {
		v.Add("_txlock", "immediate")
		// The writer checkpoints the WAL itself only if the background
		// checkpointer (Store.checkpointer) falls far behind.
		v.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", writerAutoCheckpoint))
	}
	// Escape the path: '?', '#' and '%' in a directory name must not cut
	// the URI short (the database would land elsewhere).
	u := url.URL{Scheme: "file", Path: path, RawQuery: v.Encode()}
	return u.String()
}

// Open opens the database target names and applies every migration it has
// not seen yet. A postgres:// or postgresql:// URL (IsPostgres) opens that
// PostgreSQL database (openPostgres), which several managers may share.
// Anything else is the path of a SQLite database, created if needed:
// Open first takes its lock (LockDatabase: a second process on the same
// database fails with a *LockedError before anything is read or written),
// which Close releases.
func Open(ctx context.Context, target string, opts ...Option) (*Store, error) {
	var o openOptions
	for _, opt := range opts {
		opt(&o)
	}
	if IsPostgres(target) {
		return openPostgres(ctx, target, o)
	}
	path := target
	l, err := LockDatabase(path)
	if err != nil {
		return nil, err
	}
	s, err := open(ctx, path, o)
	if err != nil {
		l.Release()
		return nil, err
	}
	s.lock = l
	return s, nil
}

// open opens the database at path, whose lock the caller holds, and
// migrates it.
func open(ctx context.Context, path string, o openOptions) (*Store, error) {
	// The database holds password hashes and sealed agent passwords: create
	// it private (SQLite gives its -wal and -shm files the same mode).
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	f.Close()
	s := &Store{engine: SQLite, where: path, path: path, opts: o}
	w, err := openWriter(dsn(path, false), s)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s.write = w
	if err := s.migrate(ctx); err != nil {
		s.closeWriter()
		return nil, err
	}
	r, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		s.closeWriter()
		return nil, fmt.Errorf("open %s for reading: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	// Keep the readers open: reopening one re-runs its PRAGMAs.
	r.SetMaxIdleConns(8)
	r.SetConnMaxIdleTime(0)
	s.read = r
	s.start(maxCachedStmts)
	return s, nil
}

// start starts the writer (and on SQLite the checkpointer) of a store
// whose pools are open and whose schema is current; stmts is how many
// prepared statements each pool keeps (none on PostgreSQL, whose driver
// keeps its own).
func (s *Store) start(stmts int) {
	s.readStmts = newStmtCache(s.read, stmts)
	s.writeStmts = newWriteStmts(s.write, stmts)
	s.kick = make(chan struct{}, 1)
	s.writerDone = make(chan struct{})
	s.ckKick = make(chan struct{}, 1)
	s.ckStop = make(chan struct{})
	s.ckDone = make(chan struct{})
	s.ckEvery.Store(100) // until the checkpointer has measured
	go s.writer()
	if s.engine == SQLite {
		go s.checkpointer()
	} else {
		close(s.ckDone) // PostgreSQL checkpoints by itself
	}
}

// Close finishes the writes already asked for, then closes both connection
// pools and releases the lock Open took; a Write after Close fails.
func (s *Store) Close() error {
	err := s.closePools()
	if s.lock != nil {
		err = errors.Join(err, s.lock.Release())
	}
	return err
}

// closePools is Close but for the lock: the writes asked for finish, the
// writer and checkpointer end, both connection pools close.
func (s *Store) closePools() error {
	s.wmu.Lock()
	already := s.wclosed
	s.wclosed = true
	s.wmu.Unlock()
	if !already {
		s.wake()
	}
	<-s.writerDone
	if !already {
		close(s.ckStop)
	}
	<-s.ckDone
	s.readStmts.close()
	s.writeStmts.close()
	if s.pg != nil {
		s.pg.stop()
	}
	if already || s.engine == PostgreSQL {
		return errors.Join(s.read.Close(), s.write.Close())
	}
	return errors.Join(s.read.Close(), s.closeWriter())
}

// Read returns queries on the reader pool. Writes through it fail: the pool is
// opened query-only.
func (s *Store) Read() *Queries {
	return &Queries{db: &cachedDB{cache: s.readStmts}, engine: s.engine}
}
