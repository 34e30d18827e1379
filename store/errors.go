package store

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNotFound is returned when a row looked up by key does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a write would break a uniqueness or foreign-key
// constraint.
var ErrConflict = errors.New("conflict")

// translate maps driver errors to the store's sentinels: a broken
// constraint is ErrConflict on both engines (SQLite says "constraint
// failed", its triggers too; PostgreSQL reports SQLSTATE class 23,
// integrity constraint violation, which its triggers raise as well).
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return ErrNotFound
	case strings.HasPrefix(pgCode(err), "23"):
		return fmt.Errorf("%w: %w", ErrConflict, err)
	case strings.Contains(err.Error(), "constraint failed"):
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	return err
}

// pgCode is the SQLSTATE of a PostgreSQL error, "" for any other error.
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
