// Package pgtest gives tests a PostgreSQL database of their own, in the
// manner of t.TempDir: a new, empty database on the server that
// XENMANAGER_TEST_POSTGRES names, dropped when the test ends. Without that
// variable the test is skipped, saying so, except under CI=true, where it
// fails: CI has a server (.ci/run starts one, .ci/with-postgres), and a
// suite that skipped its PostgreSQL half there would pass without having
// run it.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvVar names the environment variable that holds the DSN of a role that
// may create databases: postgres://USER[:PASSWORD]@HOST:PORT/DATABASE.
const EnvVar = "XENMANAGER_TEST_POSTGRES"

// Configured reports whether EnvVar is set, for callers that choose an
// engine by it.
func Configured() bool { return os.Getenv(EnvVar) != "" }

// Database creates a database xm_<random> (UTF8, collation C, as the store
// requires) on the server of EnvVar and returns its DSN; the database is
// dropped, with any session still on it, when t and its subtests end.
// Without EnvVar it skips t, or fails it when CI=true.
func Database(t testing.TB) string {
	t.Helper()
	return create(t, "template0")
}

// DatabaseFrom is Database with a copy of database template (CREATE
// DATABASE ... TEMPLATE) rather than an empty one: a test that needs the
// store's schema copies a migrated database (Template) in a fraction of
// the time the migrations take.
func DatabaseFrom(t testing.TB, template string) string {
	t.Helper()
	return create(t, template)
}

// Template returns the name of database name on the server of EnvVar,
// first making it, if the server has none, with build given its URL: it
// is built under another name and renamed once built, under an advisory
// lock, so that test processes starting together build it once and never
// copy a half-built one. Name it after what build puts in (the schema's
// digest): a template is kept for later runs, until the server goes (CI's
// and .ci/with-postgres' servers are throwaway; on a server of one's own,
// the old ones may be dropped at will). Callers skip (or fail under
// CI=true) as Database does: call it after a Database or with EnvVar set.
func Template(name string, build func(url string) error) (string, error) {
	admin := os.Getenv(EnvVar)
	u, err := url.Parse(admin)
	if admin == "" || err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("PostgreSQL tests: %s is not a postgres:// URL", EnvVar)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", fmt.Errorf("PostgreSQL tests: connect to the server of %s: %w", EnvVar, err)
	}
	defer conn.Close(context.Background())
	const templateLock = 0x786d74706c // "xmtpl"
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, templateLock); err != nil {
		return "", fmt.Errorf("PostgreSQL tests: lock the templates: %w", err)
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, templateLock)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", fmt.Errorf("PostgreSQL tests: look for template %s: %w", name, err)
	}
	if exists {
		return name, nil
	}
	building := name + "_building"
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+building+` WITH (FORCE)`); err != nil {
		return "", fmt.Errorf("PostgreSQL tests: drop a half-built template: %w", err)
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+building+` TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'`); err != nil {
		return "", fmt.Errorf("PostgreSQL tests: create template %s: %w", name, err)
	}
	u.Path = "/" + building
	if err := build(u.String()); err != nil {
		conn.Exec(context.Background(), `DROP DATABASE IF EXISTS `+building+` WITH (FORCE)`)
		return "", fmt.Errorf("PostgreSQL tests: build template %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, `ALTER DATABASE `+building+` RENAME TO `+name); err != nil {
		return "", fmt.Errorf("PostgreSQL tests: name template %s: %w", name, err)
	}
	return name, nil
}

// create makes a new database xm_<random> from template, dropped when t
// ends, and returns its DSN.
func create(t testing.TB, template string) string {
	t.Helper()
	admin := os.Getenv(EnvVar)
	if admin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL tests: %s is not set, and CI=true requires them (.ci/run starts a server)", EnvVar)
		}
		t.Skipf("PostgreSQL tests SKIPPED: %s is not set (.ci/with-postgres starts a throwaway server; docs/postgresql.md)", EnvVar)
	}
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// Not the parser's message: it would quote a password.
		t.Fatalf("PostgreSQL tests: %s is not a postgres:// URL", EnvVar)
	}
	var b [8]byte
	rand.Read(b[:])
	name := "xm_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("PostgreSQL tests: connect to the server of %s: %v", EnvVar, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name+` TEMPLATE `+pgx.Identifier{template}.Sanitize()+` ENCODING 'UTF8' LOCALE 'C'`); err != nil {
		t.Fatalf("PostgreSQL tests: create database %s: %v", name, err)
	}
	t.Cleanup(func() { drop(t, admin, name) })
	u.Path = "/" + name
	return u.String()
}

// drop removes database name, ending the sessions a test left on it.
func drop(t testing.TB, admin, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Errorf("PostgreSQL tests: drop database %s: %v", name, err)
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
		t.Errorf("PostgreSQL tests: drop database %s: %v", name, err)
	}
}
