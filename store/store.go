// Package store keeps the manager's configuration in SQLite: numbered,
// embedded migrations, one writer connection with immediate transactions and
// a bounded pool of readers. SQL is kept portable to PostgreSQL ($n
// placeholders, RETURNING) so that the engine can change without touching
// callers.
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
// writer (writer.go), reads through a pool; a background checkpointer
// (checkpoint.go) keeps the WAL short.
type Store struct {
	path       string // the database file, for Backup
	lock       *Lock  // the lock Open took, released by Close; nil after OpenLocked (the caller's)
	write      *sql.DB
	read       *sql.DB
	readStmts  *stmtCache  // prepared statements of the reader pool
	writeStmts *writeStmts // prepared statements of the writer connection
	// serversGen counts writes to the servers and server_pools tables, so
	// that callers may cache what they read of them and know when to read
	// again (generation.go). serversDirty is set by the writer
	// connection's hook when the running write changes such a row, and
	// taken by the writer after the write (runOne).
	serversGen   atomic.Int64
	serversDirty atomic.Bool

	// The group-commit writer (see Write): kick wakes the writer
	// goroutine, which closes writerDone on exit.
	wmu        sync.Mutex  // guards queue and wclosed
	queue      []*writeReq // the writes asked for and not yet taken
	wclosed    bool        // Close was called: no write joins the queue
	kick       chan struct{}
	writerDone chan struct{}
	writesRun  atomic.Int64 // the writes run, see WriteStats
	writeTxs   atomic.Int64 // the write transactions, see WriteStats

	// The background checkpointer: ckKick asks for a checkpoint, ckStop
	// ends it, ckDone is closed when it has; ckEvery is how many write
	// transactions the writer lets pass between two.
	ckKick, ckStop, ckDone chan struct{}
	ckEvery                atomic.Int64
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

// Open takes the database's lock (LockDatabase: a second process on the
// same database fails with a *LockedError before anything is read or
// written), opens the database at path, creating it if needed, and applies
// every migration it has not seen yet. Close releases the lock.
func Open(ctx context.Context, path string) (*Store, error) {
	l, err := LockDatabase(path)
	if err != nil {
		return nil, err
	}
	s, err := open(ctx, path)
	if err != nil {
		l.Release()
		return nil, err
	}
	s.lock = l
	return s, nil
}

// open opens the database at path, whose lock the caller holds, and
// migrates it.
func open(ctx context.Context, path string) (*Store, error) {
	// The database holds password hashes and sealed agent passwords: create
	// it private (SQLite gives its -wal and -shm files the same mode).
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	f.Close()
	s := &Store{path: path}
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
	if already {
		return errors.Join(s.read.Close(), s.write.Close())
	}
	return errors.Join(s.read.Close(), s.closeWriter())
}

// Read returns queries on the reader pool. Writes through it fail: the pool is
// opened query-only.
func (s *Store) Read() *Queries { return &Queries{db: &cachedDB{cache: s.readStmts}} }
