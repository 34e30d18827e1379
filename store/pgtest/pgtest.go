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
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name+` TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'`); err != nil {
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
