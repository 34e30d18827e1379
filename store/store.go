// Package store keeps the manager's configuration in SQLite: numbered,
// embedded migrations, one writer connection with immediate transactions and
// a bounded pool of readers. SQL is kept portable to PostgreSQL ($n
// placeholders, RETURNING) so that the engine can change without touching
// callers.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, registered as "sqlite"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrNotFound is returned when a row looked up by key does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a write would break a uniqueness or foreign-key
// constraint.
var ErrConflict = errors.New("conflict")

// Store is an open manager database. It is safe for concurrent use: writes go
// through one connection (SQLite allows one writer), reads through a pool.
type Store struct {
	path       string // the database file, for Backup
	write      *sql.DB
	read       *sql.DB
	readStmts  *stmtCache  // prepared statements of the reader pool
	writeStmts *writeStmts // prepared statements of the writer connection
	// serversGen counts writes to the servers and server_pools tables, so
	// that callers may cache what they read of them and know when to read
	// again.
	serversGen atomic.Int64

	// The group-commit writer (see Write): wmu guards queue and wclosed;
	// kick wakes the writer goroutine, which closes writerDone on exit.
	wmu        sync.Mutex
	queue      []*writeReq
	wclosed    bool
	kick       chan struct{}
	writerDone chan struct{}
	writesRun  atomic.Int64 // see WriteStats
	writeTxs   atomic.Int64

	// The background checkpointer: ckKick asks for a checkpoint, ckStop
	// ends it, ckDone is closed when it has; ckEvery is how many write
	// transactions the writer lets pass between two.
	ckKick, ckStop, ckDone chan struct{}
	ckEvery                atomic.Int64
}

// dsn builds the connection string LIBRARIES.md found to work for a server:
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

// Open opens (creating if needed) the database at path and applies every
// migration it has not seen yet.
func Open(ctx context.Context, path string) (*Store, error) {
	// The database holds password hashes and sealed agent passwords: create
	// it private (SQLite gives its -wal and -shm files the same mode).
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	f.Close()
	w, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Store{path: path, write: w}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s for reading: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	// Keep the readers open: reopening one re-runs its PRAGMAs.
	r.SetMaxIdleConns(8)
	r.SetConnMaxIdleTime(0)
	s.read = r
	s.readStmts = newStmtCache(r)
	s.writeStmts = newWriteStmts(w)
	s.kick = make(chan struct{}, 1)
	s.writerDone = make(chan struct{})
	s.ckKick = make(chan struct{}, 1)
	s.ckStop = make(chan struct{})
	s.ckDone = make(chan struct{})
	s.ckEvery.Store(100) // until the checkpointer has measured
	go s.writer()
	go s.checkpointer()
	return s, nil
}

// Close finishes the writes already asked for, then closes both connection
// pools; a Write after Close fails.
func (s *Store) Close() error {
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
	return errors.Join(s.read.Close(), s.write.Close())
}

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and '_'", e.Name())
		}
		body, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := range out {
		if out[i].version != i+1 {
			return nil, fmt.Errorf("migration %s: expected number %d", out[i].name, i+1)
		}
	}
	return out, nil
}

// migrate applies, each in its own transaction, the migrations newer than the
// database's recorded version.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.write.ExecContext(ctx,
		`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	migs, err := loadMigrations()
	if err != nil {
		return err
	}
	var current int
	if err := s.write.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > len(migs) {
		return fmt.Errorf("database schema version %d is newer than this binary's %d", current, len(migs))
	}
	for _, m := range migs[current:] {
		tx, err := s.write.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, strftime('%s','now'))`, m.version, m.name); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

// SchemaVersion returns the number of the newest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.read.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// dbtx is what both *sql.DB and *sql.Tx offer; Queries run on either.
type dbtx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Queries are the typed reads and writes of the store. Obtain them from Read
// (outside a transaction) or inside Write.
type Queries struct {
	db dbtx
	st *Store
	// serversDirty: this transaction wrote servers; the generation is
	// bumped again after the commit.
	serversDirty bool
}

// serversChanged bumps the servers' generation now and, through
// serversDirty, after the commit: a list read between the two is not kept.
func (q *Queries) serversChanged() {
	q.serversDirty = true
	if q.st != nil {
		q.st.serversGen.Add(1)
	}
}

// Read returns queries on the reader pool. Writes through it fail: the pool is
// opened query-only.
func (s *Store) Read() *Queries { return &Queries{db: &cachedDB{cache: s.readStmts}, st: s} }

// ServersGeneration changes whenever a server or server pool row may have
// changed; a server list (or pool) read when it had a value is current while
// it keeps it.
func (s *Store) ServersGeneration() int64 { return s.serversGen.Load() }

// Write runs fn in an immediate transaction on the writer connection,
// committing when fn returns nil and rolling back what fn did otherwise, so
// that a failed operation leaves nothing half-written. Write returns once
// what fn wrote is committed (or failed): a caller may rely on it being
// durable, as far as synchronous=NORMAL goes, before it acts on it.
//
// Group commit: SQLite has one writer, and a transaction's fixed cost (the
// write lock, the WAL frames of the pages it dirtied, the commit) is most of
// a small write's. So the writes are run by one goroutine, and concurrent
// ones share a transaction: the writes asked for while a transaction runs
// make up the next one (with those that the goroutines ready to run bring,
// when writes keep coming concurrently), each inside its own savepoint, so
// that one that fails rolls back alone. Writes of one caller at a time run
// as before, each in a transaction of its own, and wait for nobody. The
// order of one caller's writes is kept (each waits for the previous one's
// commit); the writes of a group run in the order they were asked for and
// are committed together.
//
// fn runs on the writer's goroutine: it must not call Write (it would wait
// for its own group) nor runtime.Goexit (t.Fatal: the writer would end); a
// panic in fn is raised again in the caller. A ctx that ends while the
// write waits for its turn cancels it; once fn has started, its statements
// are not interrupted (that would roll back the whole group) and Write
// waits for the commit.
func (s *Store) Write(ctx context.Context, fn func(q *Queries) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	r := &writeReq{ctx: ctx, fn: fn, done: make(chan struct{})}
	s.wmu.Lock()
	if s.wclosed {
		s.wmu.Unlock()
		return errors.New("begin: the store is closed")
	}
	s.queue = append(s.queue, r)
	s.wmu.Unlock()
	s.wake()
	select {
	case <-r.done:
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqAbandoned) {
			return fmt.Errorf("begin: %w", ctx.Err())
		}
		<-r.done // fn has started: its outcome is known only after the commit
	}
	if r.panicked != nil {
		panic(r.panicked)
	}
	return r.err
}

// Checkpoints: SQLite copies the WAL back into the database file (and
// syncs both) at a commit that finds the WAL longer than 1,000 pages, and
// the commit, with every write waiting behind it, waits for the syncs (tens
// of milliseconds in a batch of starts on the reference machine). The store
// checkpoints from a reader connection instead (a PASSIVE checkpoint, which
// the writer does not wait for), about every checkpointPages pages written
// to the WAL: the writer asks for one every ckEvery write transactions, and
// the checkpointer sets ckEvery from the pages per transaction it finds.
// The writer's own threshold is raised to writerAutoCheckpoint pages, a
// safety net should the checkpointer fall behind.
const (
	checkpointPages      = 1000
	writerAutoCheckpoint = 10000
)

// checkpointer runs the WAL checkpoints asked for through ckKick.
func (s *Store) checkpointer() {
	defer close(s.ckDone)
	lastTxs, lastFrames := s.writeTxs.Load(), int64(0)
	for {
		select {
		case <-s.ckStop:
			return
		case <-s.ckKick:
		}
		txs := s.writeTxs.Load()
		var busy, logFrames, done int64
		// query_only readers may checkpoint (it changes no data).
		err := s.read.QueryRowContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &done)
		if err != nil {
			continue // the writer's own checkpoints remain
		}
		// logFrames is the WAL's length: the pages written since the last
		// checkpoint are what it grew by, or all of it when it started
		// over (the next write after a checkpoint that copied everything).
		written := logFrames
		if logFrames >= lastFrames {
			written = logFrames - lastFrames
		}
		if n := txs - lastTxs; n > 0 && written > 0 {
			s.ckEvery.Store(min(max(checkpointPages*n/written, 1), checkpointPages))
		}
		lastTxs, lastFrames = txs, logFrames
	}
}

// writeReq is one Write waiting for, or in, a group.
type writeReq struct {
	ctx      context.Context
	fn       func(q *Queries) error
	state    atomic.Int32 // reqQueued, then reqTaken by the writer or reqAbandoned by the caller
	err      error
	panicked any  // what fn panicked with, panicked again in the caller
	dirty    bool // fn wrote servers
	done     chan struct{}
}

const (
	reqQueued int32 = iota
	reqTaken
	reqAbandoned
)

// maxGroup bounds the writes of one transaction.
const maxGroup = 256

// busyFor is how long writes are taken to come concurrently after the last
// sign of it; maxYields bounds how often the writer lets other goroutines
// run first, to gather a group, while more writes keep coming.
const (
	busyFor   = 5 * time.Millisecond
	maxYields = 3
)

// WriteStats returns how many writes (Write calls that ran) and how many
// write transactions the store has made since it opened.
func (s *Store) WriteStats() (writes, transactions int64) {
	return s.writesRun.Load(), s.writeTxs.Load()
}

func (s *Store) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// writer runs the queued writes, a group per transaction, until Close.
func (s *Store) writer() {
	defer close(s.writerDone)
	var group []*writeReq
	// lastBusy is when writes were last seen to come concurrently: a
	// group of several, or writes queued while a group ran (one caller
	// has one write at a time).
	var lastBusy time.Time
	var lastKick int64 // s.writeTxs when a checkpoint was last asked for
	for {
		s.wmu.Lock()
		for len(s.queue) == 0 {
			if s.wclosed {
				s.wmu.Unlock()
				return
			}
			s.wmu.Unlock()
			<-s.kick
			s.wmu.Lock()
		}
		if time.Since(lastBusy) < busyFor {
			// Writes come concurrently: let the goroutines that are ready
			// to run go first, while that brings more writes, so that
			// those join this group (a transaction costs much more than
			// the statements of a small write). Writes of one caller at a
			// time do not wait. (A timer would not do: a sleep of 100 us
			// lasts a millisecond on the reference machine.)
			for range maxYields {
				n := len(s.queue)
				if n >= maxGroup || s.wclosed {
					break
				}
				s.wmu.Unlock()
				runtime.Gosched()
				s.wmu.Lock()
				if len(s.queue) == n {
					break
				}
			}
		}
		n := min(len(s.queue), maxGroup)
		group = append(group[:0], s.queue[:n]...)
		rest := copy(s.queue, s.queue[n:])
		clear(s.queue[rest:])
		s.queue = s.queue[:rest]
		s.wmu.Unlock()
		taken := group[:0]
		for _, r := range group {
			if r.state.CompareAndSwap(reqQueued, reqTaken) {
				taken = append(taken, r)
			}
		}
		s.writeStmts.prepareNoted()
		s.runGroup(taken)
		if len(taken) > 0 {
			s.writesRun.Add(int64(len(taken)))
			if txs := s.writeTxs.Add(1); txs-lastKick >= s.ckEvery.Load() {
				lastKick = txs
				select {
				case s.ckKick <- struct{}{}:
				default: // one is running or asked for already
				}
			}
		}
		s.wmu.Lock()
		if len(group) > 1 || len(s.queue) > 0 {
			lastBusy = time.Now()
		}
		s.wmu.Unlock()
		clear(group)
	}
}

// runGroup runs the writes of group in one transaction (a lone write in a
// plain transaction, several each in a savepoint) and tells each caller.
func (s *Store) runGroup(group []*writeReq) {
	defer func() {
		for _, r := range group {
			close(r.done)
		}
	}()
	if len(group) == 0 {
		return
	}
	tx, err := s.write.BeginTx(context.Background(), nil)
	if err != nil {
		for _, r := range group {
			r.err = fmt.Errorf("begin: %w", err)
		}
		return
	}
	db := s.writeStmts.forTx(tx)
	defer db.release()
	if len(group) == 1 {
		r := group[0]
		if err := r.ctx.Err(); err != nil {
			tx.Rollback()
			r.err = fmt.Errorf("begin: %w", err)
			return
		}
		s.runOne(db, r)
		if r.err != nil || r.panicked != nil {
			tx.Rollback()
			return
		}
		r.err = commitErr(tx.Commit())
		if r.dirty {
			s.serversGen.Add(1)
		}
		return
	}
	var committed []*writeReq
	dirty := false
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.err = fmt.Errorf("begin: %w", err)
			continue
		}
		if _, err := db.exec(`SAVEPOINT w`); err != nil {
			s.abortGroup(tx, group, err)
			return
		}
		s.runOne(db, r)
		if r.err != nil || r.panicked != nil {
			if _, err := db.exec(`ROLLBACK TO w`); err != nil {
				// SQLite ended the transaction itself (a full disk, an I/O
				// error): nothing of the group is written.
				s.abortGroup(tx, group, err)
				return
			}
		}
		if _, err := db.exec(`RELEASE w`); err != nil {
			s.abortGroup(tx, group, err)
			return
		}
		if r.err == nil && r.panicked == nil {
			committed = append(committed, r)
			dirty = dirty || r.dirty
		}
	}
	if len(committed) == 0 {
		tx.Rollback()
		return
	}
	err = commitErr(tx.Commit())
	for _, r := range committed {
		r.err = err
	}
	if dirty {
		s.serversGen.Add(1)
	}
}

func commitErr(err error) error {
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// runOne runs one write's fn on the group's transaction, catching a panic
// for its caller.
func (s *Store) runOne(db *txDB, r *writeReq) {
	q := &Queries{db: db, st: s}
	defer func() {
		r.dirty = q.serversDirty
		if p := recover(); p != nil {
			r.panicked = p
		}
	}()
	r.err = r.fn(q)
}

// abortGroup rolls back a group whose transaction cannot go on: every
// write of it fails, those that succeeded with the cause.
func (s *Store) abortGroup(tx *sql.Tx, group []*writeReq, cause error) {
	tx.Rollback()
	for _, r := range group {
		if r.err == nil && r.panicked == nil {
			r.err = fmt.Errorf("write group rolled back: %w", cause)
		}
	}
}

// translate maps driver errors to the store's sentinels.
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return ErrNotFound
	case strings.Contains(err.Error(), "constraint failed"):
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	return err
}
