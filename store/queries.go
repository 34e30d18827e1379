package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// dbtx is what both *sql.DB and *sql.Tx offer; Queries run on either.
type dbtx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Queries are the typed reads and writes of the store. Obtain them from Read
// (outside a transaction) or inside Write.
//
// Every entity's file follows one pattern: a columns constant and a scan
// function per record type; one row read with queryOne (no row is
// ErrNotFound), a list with queryAll, a count with count; a write with exec
// (a broken constraint is ErrConflict), or with execOne when it must change
// a row (none is ErrNotFound).
type Queries struct {
	db     dbtx
	w      *writeReq // the write these queries run in; nil for Read
	engine Engine    // for the few queries whose text differs (Now)
}

// scanner is a row to scan: *sql.Row of queryOne, *sql.Rows of queryAll.
type scanner = interface{ Scan(...any) error }

// queryOne reads the one row of query with scan; no row is ErrNotFound.
func queryOne[T any](ctx context.Context, db dbtx, scan func(scanner) (T, error), query string, args ...any) (T, error) {
	v, err := scan(db.QueryRowContext(ctx, query, args...))
	return v, translate(err)
}

// queryAll reads every row of query with scan, in the query's order.
func queryAll[T any](ctx context.Context, db dbtx, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, translate(err)
		}
		out = append(out, v)
	}
	return out, translate(rows.Err())
}

// scanString scans a query of one text column.
func scanString(row scanner) (string, error) {
	var v string
	err := row.Scan(&v)
	return v, err
}

// exec runs a write; a broken constraint is ErrConflict.
func (q *Queries) exec(ctx context.Context, query string, args ...any) error {
	_, err := q.db.ExecContext(ctx, query, args...)
	return translate(err)
}

// execOne runs a write that must change a row (an update or delete by
// key): when it changes none, the row is not there, ErrNotFound.
func (q *Queries) execOne(ctx context.Context, query string, args ...any) error {
	res, err := q.db.ExecContext(ctx, query, args...)
	if err != nil {
		return translate(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("rows affected: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// unix is how a time is stored: seconds (jobs, events and the audit log
// keep milliseconds, VNICs nanoseconds, for their order).
func unix(t time.Time) int64 { return t.Unix() }

// fromUnix is the time stored as unix seconds.
func fromUnix(sec int64) time.Time { return time.Unix(sec, 0).UTC() }

// fromUnixMilli is the time stored as unix milliseconds.
func fromUnixMilli(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// defaultString is s, or def for the empty string: the column's default
// when the caller left a field empty.
func defaultString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// nullable stores "" as NULL, for optional references.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
