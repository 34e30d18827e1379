package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Backup writes a consistent copy of the database to dest, a file that
// must not exist yet, while the manager runs: VACUUM INTO on a connection
// of its own, which reads one snapshot (WAL readers do not wait for the
// writer, nor it for them). The copy is a complete database that Open
// accepts as it is.
//
// On PostgreSQL Backup copies nothing and fails with ErrBackupOnPostgres:
// the copy of a database server's database is pg_dump's job.
func (s *Store) Backup(ctx context.Context, dest string) (int64, error) {
	if s.engine == PostgreSQL {
		return 0, ErrBackupOnPostgres
	}
	if _, err := os.Lstat(dest); err == nil {
		return 0, fmt.Errorf("backup: %s exists already", dest)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("backup: %w", err)
	}
	// Not a query_only reader: SQLite counts writing the copy as a write.
	db, err := sql.Open("sqlite", dsn(s.path, false))
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO $1`, dest); err != nil {
		os.Remove(dest) // a partial copy is no backup
		return 0, fmt.Errorf("backup to %s: %w", dest, err)
	}
	if err := os.Chmod(dest, 0o600); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	fi, err := os.Stat(dest)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	return fi.Size(), nil
}

// ErrBackupOnPostgres is Backup's refusal on PostgreSQL.
var ErrBackupOnPostgres = errors.New("the manager's database is on PostgreSQL, which backup does not copy: back it up with pg_dump")

// Path is the SQLite database file's path; "" on PostgreSQL.
func (s *Store) Path() string { return s.path }
