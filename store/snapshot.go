package store

import (
	"context"
	"database/sql"
	"errors"
	"iter"
)

// Snapshot runs fn with queries on one read-only transaction of the reader
// pool, so that everything fn reads is the database as it was at one
// moment (a listing's rows and the names they refer to). The transaction
// holds a reader connection, and on SQLite keeps the checkpointer from
// moving the WAL past its snapshot, until fn returns: fn reads, it does
// not wait on a client (a listing spills to a file instead).
func (s *Store) Snapshot(ctx context.Context, fn func(q *Queries) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if s.engine == PostgreSQL {
		// READ COMMITTED would give each statement its own snapshot.
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := s.read.BeginTx(ctx, opts)
	if err != nil {
		return translate(err)
	}
	ferr := fn(&Queries{db: snapshotDB{tx}, engine: s.engine})
	// Nothing was written: rolling back ends the transaction as well as a
	// commit would, and cannot fail for a reason the caller could act on.
	if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) && ferr == nil {
		return translate(rerr)
	}
	return ferr
}

// snapshotDB runs the queries of a Snapshot on its transaction.
type snapshotDB struct{ tx *sql.Tx }

func (d snapshotDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return d.tx.ExecContext(ctx, query, portableArgs(args)...)
}

func (d snapshotDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return d.tx.QueryContext(ctx, query, portableArgs(args)...)
}

func (d snapshotDB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return d.tx.QueryRowContext(ctx, query, portableArgs(args)...)
}

// queryEach yields the rows of query scanned by scan one at a time, in the
// query's order, without holding them: a listing of 100,000 rows reads
// one row's worth of memory. An error (of the query, a scan or the rows)
// is yielded once, last. Stopping early closes the rows.
func queryEach[T any](ctx context.Context, db dbtx, scan func(scanner) (T, error), query string, args ...any) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		rows, err := db.QueryContext(ctx, query, args...)
		if err != nil {
			yield(zero, translate(err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			v, err := scan(rows)
			if err != nil {
				yield(zero, translate(err))
				return
			}
			if !yield(v, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(zero, translate(err))
		}
	}
}
