package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// migrationFiles are the schema's migrations. Each number has either one
// file both engines run, NNNN_name.sql, or one per engine,
// NNNN_name.sqlite.sql and NNNN_name.postgres.sql, where SQLite's text
// does not run on PostgreSQL or means something else there (PostgreSQL's
// INTEGER is 32-bit, AUTOINCREMENT and BLOB are SQLite's words, triggers
// are written differently). The two forms of a number make the same
// schema (TestSchemasOfBothEnginesAgree).
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered migration, applied once.
type migration struct {
	version int
	name    string // NNNN_name.sql, whichever file the engine runs; recorded in schema_migrations
	sql     string
}

// migrationFile is one file of migrations/ as its name reads.
type migrationFile struct {
	version int
	base    string // NNNN_name
	engine  string // "" for the shared file, else "sqlite" or "postgres"
	path    string
}

// parseMigrationName reads NNNN_name.sql, NNNN_name.sqlite.sql or
// NNNN_name.postgres.sql.
func parseMigrationName(name string) (migrationFile, error) {
	f := migrationFile{path: "migrations/" + name}
	base, ok := strings.CutSuffix(name, ".sql")
	if !ok {
		return f, fmt.Errorf("migration %s: name must end in .sql", name)
	}
	for _, e := range []string{"sqlite", "postgres"} {
		if b, ok := strings.CutSuffix(base, "."+e); ok {
			base, f.engine = b, e
		}
	}
	num, _, ok := strings.Cut(base, "_")
	v, err := strconv.Atoi(num)
	if !ok || err != nil || strings.Contains(base, ".") {
		return f, fmt.Errorf("migration %s: name must be NNNN_name.sql, NNNN_name.sqlite.sql or NNNN_name.postgres.sql", name)
	}
	f.version, f.base = v, base
	return f, nil
}

// loadMigrations reads the embedded migrations that engine runs, in order,
// and checks the set: numbers 1, 2, 3... without a gap, so that none is
// skipped, and each number either one shared file or one file for each
// engine, of one name.
func loadMigrations(engine Engine) ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	byVersion := map[int][]migrationFile{}
	for _, e := range entries {
		f, err := parseMigrationName(e.Name())
		if err != nil {
			return nil, err
		}
		byVersion[f.version] = append(byVersion[f.version], f)
	}
	var out []migration
	for v, files := range byVersion {
		var shared, own *migrationFile
		engines := map[string]bool{}
		for i, f := range files {
			if f.base != files[0].base {
				return nil, fmt.Errorf("migration %d: two names, %s and %s", v, files[0].base, f.base)
			}
			engines[f.engine] = true
			switch f.engine {
			case "":
				shared = &files[i]
			case engine.String():
				own = &files[i]
			}
		}
		switch {
		case shared != nil && len(files) > 1:
			return nil, fmt.Errorf("migration %s: a shared file and an engine's own; keep one or the other", files[0].base)
		case shared == nil && (!engines["sqlite"] || !engines["postgres"]):
			return nil, fmt.Errorf("migration %s: has a file for one engine only; give it %s.sqlite.sql and %s.postgres.sql, or one %s.sql",
				files[0].base, files[0].base, files[0].base, files[0].base)
		}
		f := shared
		if f == nil {
			f = own
		}
		body, err := migrationFiles.ReadFile(f.path)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: f.base + ".sql", sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := range out {
		if out[i].version != i+1 {
			return nil, fmt.Errorf("migration %s: expected number %d", out[i].name, i+1)
		}
	}
	return out, nil
}

// migrationDB is what the migrations run on: the SQLite writer's pool, or
// the one connection that holds PostgreSQL's migration lock.
type migrationDB interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// migrate brings the schema up to date: on SQLite on the writer (the
// database's lock keeps other processes off it), on PostgreSQL under a
// session advisory lock (migrateLockKey), so that of several managers
// starting at once on one database one migrates and the others wait for it
// and find nothing left to do.
func (s *Store) migrate(ctx context.Context) error {
	if s.engine != PostgreSQL {
		return s.applyMigrations(ctx, s.write)
	}
	conn, err := s.write.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrateLockKey); err != nil {
		return fmt.Errorf("migrate: take the migration lock: %w", err)
	}
	err = s.applyMigrations(ctx, conn)
	if _, uerr := conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, migrateLockKey); uerr != nil {
		// The lock is the session's: a connection that cannot release it
		// is closed (its session ends) rather than kept in the pool.
		conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	return err
}

// applyMigrations applies, each in its own transaction, the migrations
// newer than the database's recorded version, and refuses a database whose
// schema is newer than this binary knows.
func (s *Store) applyMigrations(ctx context.Context, db migrationDB) error {
	integer := "INTEGER"
	if s.engine == PostgreSQL {
		integer = "BIGINT"
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version `+integer+` PRIMARY KEY, name TEXT NOT NULL, applied_at `+integer+` NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	migs, err := loadMigrations(s.engine)
	if err != nil {
		return err
	}
	var current int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > len(migs) {
		return &NewerSchemaError{Database: current, Binary: len(migs)}
	}
	if current < len(migs) {
		if err := s.checkSecretBeforeMigrating(ctx, db, migs, current); err != nil {
			return err
		}
	}
	for _, m := range migs[current:] {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.version, m.name, time.Now().Unix()); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

// NewerSchemaError is the refusal to open a database that a newer
// xenmanager has migrated: this binary does not know its schema.
type NewerSchemaError struct {
	Database, Binary int // the schema versions of the database and of this binary
}

func (e *NewerSchemaError) Error() string {
	return fmt.Sprintf("the database's schema (version %d) is newer than this xenmanager knows (version %d): run the newer xenmanager",
		e.Database, e.Binary)
}

// SchemaVersion returns the number of the newest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.read.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// secretsTableMigration names the migration that made the secrets table
// (NNNN_secrets.sql).
const secretsTableMigration = "secrets"

// checkSecretBeforeMigrating runs the check CheckSecretBeforeMigrating
// gave Open on the secret's sealed value, if the database at schema version
// current has the secrets table and the secret.
func (s *Store) checkSecretBeforeMigrating(ctx context.Context, db migrationDB, migs []migration, current int) error {
	if s.opts.secretCheck == nil {
		return nil
	}
	i := slices.IndexFunc(migs, func(m migration) bool { return strings.Contains(m.name, "_"+secretsTableMigration+".") })
	if i < 0 || current < migs[i].version {
		return nil // no secrets table yet
	}
	var sealed string
	err := db.QueryRowContext(ctx, `SELECT sealed FROM secrets WHERE name = $1`, s.opts.secretName).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the secret %s before migrating: %w", s.opts.secretName, err)
	}
	return s.opts.secretCheck(sealed)
}

// SchemaDigest is a digest (hex SHA-256) of the migrations engine runs:
// two binaries with the same digest make the same schema. Tests name the
// migrated template databases they copy after it (managertest).
func SchemaDigest(engine Engine) (string, error) {
	migs, err := loadMigrations(engine)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, m := range migs {
		fmt.Fprintf(h, "%d %s %d\n%s\n", m.version, m.name, len(m.sql), m.sql)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
