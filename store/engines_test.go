package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx", for testDB.raw

	"xenmanager/store/pgtest"
)

// testDB is one test's database on one engine.
type testDB struct {
	engine Engine
	target string // what Open takes: a SQLite file's path, or a PostgreSQL URL
}

// bothEngines runs body as two subtests, "sqlite" on a new database file
// in a temporary directory and "postgres" on a new database of pgtest
// (skipped without a server, failed without one under CI=true): every
// store test that is not about one engine's own part runs on both.
func bothEngines(t *testing.T, body func(t *testing.T, db testDB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		body(t, testDB{engine: SQLite, target: filepath.Join(t.TempDir(), "manager.db")})
	})
	t.Run("postgres", func(t *testing.T) {
		body(t, testDB{engine: PostgreSQL, target: pgtest.Database(t)})
	})
}

// open opens the database, closed when the test ends.
func (db testDB) open(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), db.target)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// raw opens a plain connection pool on the database, behind the store's
// back: for what the store's API cannot do, such as an older schema or a
// table broken on purpose. It is closed when the test ends.
func (db testDB) raw(t testing.TB) *sql.DB {
	t.Helper()
	var r *sql.DB
	var err error
	if db.engine == PostgreSQL {
		r, err = sql.Open("pgx", db.target)
	} else {
		r, err = sql.Open("sqlite", dsn(db.target, false))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// openSQLite opens a SQLite store in a temporary directory, for the tests
// of SQLite's own parts (its file lock, its file), and returns its path.
func openSQLite(t *testing.T) (*Store, string) {
	t.Helper()
	db := testDB{engine: SQLite, target: filepath.Join(t.TempDir(), "manager.db")}
	return db.open(t), db.target
}

// openAtVersion makes the database with the first n migrations of its
// engine applied, as a manager of that schema would have left it, and runs
// seed on it; Open then applies the rest.
func openAtVersion(t *testing.T, db testDB, n int, seed string) {
	t.Helper()
	migs, err := loadMigrations(db.engine)
	if err != nil {
		t.Fatal(err)
	}
	r := db.raw(t)
	integer := "INTEGER"
	if db.engine == PostgreSQL {
		integer = "BIGINT"
	}
	stmts := []string{`CREATE TABLE schema_migrations (version ` + integer + ` PRIMARY KEY, name TEXT NOT NULL, applied_at ` + integer + ` NOT NULL)`}
	for _, m := range migs[:n] {
		stmts = append(stmts, m.sql,
			fmt.Sprintf(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (%d, '%s', 0)`, m.version, m.name))
	}
	for _, s := range append(stmts, seed) {
		if _, err := r.Exec(s); err != nil {
			t.Fatalf("at version %d: %v\n%s", n, err, s)
		}
	}
	r.Close()
}
