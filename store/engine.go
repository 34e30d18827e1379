package store

import (
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Engine is the database a Store runs on.
type Engine int

const (
	// SQLite is the embedded default: one file, one manager.
	SQLite Engine = iota
	// PostgreSQL is the engine of several managers serving one fleet.
	PostgreSQL
)

func (e Engine) String() string {
	if e == PostgreSQL {
		return "postgres"
	}
	return "sqlite"
}

// IsPostgres reports whether target names a PostgreSQL database (a
// postgres:// or postgresql:// URL) rather than a SQLite file.
func IsPostgres(target string) bool {
	lower := strings.ToLower(target)
	return strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://")
}

// Describe names the database target for logs and messages: a SQLite file
// by its path, a PostgreSQL database by its host, port, database and user,
// never with its password (a DSN is a secret).
func Describe(target string) string {
	if !IsPostgres(target) {
		return target
	}
	cfg, err := pgx.ParseConfig(target)
	if err != nil {
		return "a PostgreSQL database (its URL does not parse)"
	}
	return describeConfig(cfg)
}

// describeConfig is Describe of a parsed configuration.
func describeConfig(cfg *pgx.ConnConfig) string {
	return fmt.Sprintf("PostgreSQL database %s on %s as %s", cfg.Database, net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)), cfg.User)
}

// Engine is the database the store runs on.
func (s *Store) Engine() Engine { return s.engine }

// Shared reports whether other managers may use the database at the same
// time (PostgreSQL; a SQLite database is locked by one process): then
// object locks, job progress and abort requests go through the store.
func (s *Store) Shared() bool { return s.engine == PostgreSQL }

// String names the store's database as Describe does.
func (s *Store) String() string { return s.where }
