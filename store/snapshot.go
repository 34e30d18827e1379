package store

import (
	"context"
	"database/sql"
	"errors"
	"iter"
	"sync"
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
	db := &snapshotDB{tx: tx}
	if s.engine != PostgreSQL {
		db.cache, db.stmts = s.readStmts, map[string]*sql.Stmt{}
	}
	ferr := fn(&Queries{db: db, engine: s.engine})
	// Nothing was written: rolling back ends the transaction as well as a
	// commit would, and cannot fail for a reason the caller could act on.
	if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) && ferr == nil {
		return translate(rerr)
	}
	return ferr
}

// snapshotDB runs the queries of a Snapshot on its transaction. On
// SQLite it runs them prepared, as the reader pool does (stmtCache): a
// listing whose view reads more for each row (a disk's VMs) runs the same
// few queries thousands of times. A statement the pool's cache holds is
// bound to the transaction's connection (Tx.StmtContext reuses what was
// prepared on it); one it does not is prepared on that connection for the
// transaction (never on another connection of the pool, which could wait
// for one while this transaction holds its own). A transaction's
// statement is closed with it. The rows a listing streams run unprepared
// (stream): SQLite's statement is reset when it runs again, and the same
// query must not cut the rows it is streaming. PostgreSQL's driver
// prepares and keeps statements itself (cache nil).
type snapshotDB struct {
	tx    *sql.Tx
	cache *stmtCache           // the reader pool's statements; nil on PostgreSQL
	mu    sync.Mutex           // guards stmts
	stmts map[string]*sql.Stmt // this transaction's, by query text
}

// stmt returns query's statement in this transaction, or nil to run it
// unprepared (PostgreSQL, or a query that does not prepare: running it
// reports why).
func (d *snapshotDB) stmt(ctx context.Context, query string) *sql.Stmt {
	if d.cache == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if st, ok := d.stmts[query]; ok {
		return st
	}
	var st *sql.Stmt
	if parent := d.cache.cached(query); parent != nil {
		st = d.tx.StmtContext(ctx, parent)
	} else if len(d.stmts) < maxCachedStmts {
		var err error
		if st, err = d.tx.PrepareContext(ctx, query); err != nil {
			return nil
		}
	}
	d.stmts[query] = st
	return st
}

func (d *snapshotDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := d.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, portableArgs(args)...)
	}
	return d.tx.ExecContext(ctx, query, portableArgs(args)...)
}

func (d *snapshotDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := d.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, portableArgs(args)...)
	}
	return d.tx.QueryContext(ctx, query, portableArgs(args)...)
}

func (d *snapshotDB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := d.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, portableArgs(args)...)
	}
	return d.tx.QueryRowContext(ctx, query, portableArgs(args)...)
}

// stream runs the query whose rows a listing streams, unprepared.
func (d *snapshotDB) stream(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return d.tx.QueryContext(ctx, query, portableArgs(args)...)
}

// cached returns the pool's statement for query if it has one, without
// preparing it.
func (c *stmtCache) cached(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[query]
}

// queryEach yields the rows of query scanned by scan one at a time, in the
// query's order, without holding them: a listing of 100,000 rows reads
// one row's worth of memory. An error (of the query, a scan or the rows)
// is yielded once, last. Stopping early closes the rows.
func queryEach[T any](ctx context.Context, db dbtx, scan func(scanner) (T, error), query string, args ...any) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		var rows *sql.Rows
		var err error
		if sd, ok := db.(*snapshotDB); ok {
			rows, err = sd.stream(ctx, query, args...)
		} else {
			rows, err = db.QueryContext(ctx, query, args...)
		}
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
