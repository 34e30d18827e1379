package store

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// ErrNotFound is returned when a row looked up by key does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a write would break a uniqueness or foreign-key
// constraint.
var ErrConflict = errors.New("conflict")

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
