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
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

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
	write     *sql.DB
	read      *sql.DB
	readStmts *stmtCache // prepared statements of the reader pool
	// serversGen counts writes to the servers table, so that callers may
	// cache what they read of it and know when to read again.
	serversGen atomic.Int64
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
	s := &Store{write: w}
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
	return s, nil
}

// Close closes both connection pools.
func (s *Store) Close() error {
	s.readStmts.close()
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

// ServersGeneration changes whenever a server row may have changed; a
// server list read when it had a value is current while it keeps it.
func (s *Store) ServersGeneration() int64 { return s.serversGen.Load() }

// Write runs fn in one immediate transaction on the writer connection,
// committing when fn returns nil and rolling back otherwise, so that a failed
// operation leaves nothing half-written.
func (s *Store) Write(ctx context.Context, fn func(q *Queries) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	// Statements inside the transaction are not cached: preparing one on
	// the writer pool would wait for the one connection the transaction
	// holds.
	q := &Queries{db: tx, st: s}
	if err := fn(q); err != nil {
		tx.Rollback()
		return err
	}
	err = tx.Commit()
	if q.serversDirty {
		s.serversGen.Add(1)
	}
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
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
