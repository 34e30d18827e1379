package store

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
)

// stmtCache keeps one prepared statement per query text: SQLite would
// otherwise parse and plan every query again (a fifth of the manager's CPU
// in a batch of starts). Queries built at run time with varying text (IN
// lists) stop being cached once the cache is full. On PostgreSQL the cache
// holds nothing (limit 0): pgx prepares and keeps the statements of each
// connection itself.
type stmtCache struct {
	db    *sql.DB
	limit int        // the most statements kept
	mu    sync.Mutex // guards m
	m     map[string]*sql.Stmt
}

const maxCachedStmts = 256

func newStmtCache(db *sql.DB, limit int) *stmtCache {
	return &stmtCache{db: db, limit: limit, m: map[string]*sql.Stmt{}}
}

// get returns the prepared statement for query, or nil when it is not
// cached and the cache is full.
func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	st, ok := c.m[query]
	full := len(c.m) >= c.limit
	c.mu.Unlock()
	if ok || full {
		return st, nil
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.m[query]; ok {
		st.Close()
		return prev, nil
	}
	c.m[query] = st
	return st, nil
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = map[string]*sql.Stmt{}
}

// cachedDB runs queries of the reader pool through the cache.
type cachedDB struct {
	cache *stmtCache
}

func (d *cachedDB) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	return d.cache.get(ctx, query)
}

func (d *cachedDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	args = portableArgs(args)
	st, err := d.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return d.plain().ExecContext(ctx, query, args...)
	}
	return st.ExecContext(ctx, args...)
}

func (d *cachedDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	args = portableArgs(args)
	st, err := d.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return d.plain().QueryContext(ctx, query, args...)
	}
	return st.QueryContext(ctx, args...)
}

func (d *cachedDB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	args = portableArgs(args)
	st, err := d.stmt(ctx, query)
	if err != nil || st == nil {
		// A statement that does not prepare reports its error through the
		// plain query, which fails the same way.
		return d.plain().QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

func (d *cachedDB) plain() dbtx { return d.cache.db }

// writeStmts keeps the prepared statements of the writer connection. They
// are prepared on the connection between transactions, by the writer
// goroutine (preparing during one would wait for the connection the
// transaction holds), and bound to each transaction with Tx.StmtContext,
// which reuses what was prepared on that connection. A query is run
// unprepared the first time, and noted; the writer prepares the noted ones
// before its next transaction.
type writeStmts struct {
	db    *sql.DB
	limit int                  // the most statements kept (stmtCache)
	mu    sync.Mutex           // guards m and noted
	m     map[string]*sql.Stmt // nil: does not prepare, run it plain
	noted map[string]struct{}  // asked for, not prepared yet
}

func newWriteStmts(db *sql.DB, limit int) *writeStmts {
	return &writeStmts{db: db, limit: limit, m: map[string]*sql.Stmt{}, noted: map[string]struct{}{}}
}

// lookup returns the prepared statement of query, or nil (noting it, while
// there is room).
func (w *writeStmts) lookup(query string) *sql.Stmt {
	w.mu.Lock()
	defer w.mu.Unlock()
	st, ok := w.m[query]
	if !ok && len(w.m)+len(w.noted) < w.limit {
		w.noted[query] = struct{}{}
	}
	return st
}

// prepareNoted prepares the noted queries; the writer calls it when no
// transaction is open.
func (w *writeStmts) prepareNoted() {
	w.mu.Lock()
	if len(w.noted) == 0 {
		w.mu.Unlock()
		return
	}
	queries := make([]string, 0, len(w.noted))
	for q := range w.noted {
		queries = append(queries, q)
	}
	clear(w.noted)
	w.mu.Unlock()
	for _, q := range queries {
		st, err := w.db.PrepareContext(context.Background(), q)
		if err != nil {
			st = nil // run plain from now on; it fails there the same way
		}
		w.mu.Lock()
		w.m[q] = st
		w.mu.Unlock()
	}
}

func (w *writeStmts) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, st := range w.m {
		if st != nil {
			st.Close()
		}
	}
	w.m = map[string]*sql.Stmt{}
}

// forTx returns the queries' view of one transaction of the writer, tx
// (nil on PostgreSQL, which prepares nothing here) whose statements run
// on plain.
func (w *writeStmts) forTx(tx *sql.Tx, plain dbtx) *txDB { return &txDB{tx: tx, plain: plain, ws: w} }

// txDB runs the statements of a write transaction, prepared when they can
// be. The statements ignore the cancellation of the caller's context: in a
// group of writes (Store.Write), an interrupted statement would make SQLite
// roll back the whole transaction, the other callers' writes with it. A
// write is short; its caller waits for it once it has started.
type txDB struct {
	tx    *sql.Tx // binds the prepared statements (SQLite)
	plain dbtx    // runs those that are not: tx, or PostgreSQL's connection
	ws    *writeStmts
	mu    sync.Mutex           // guards stmts
	stmts map[string]*sql.Stmt // bound to tx; the transaction's end closes them
	// sent and trips count the statements run and the round trips
	// (Store.WriteStatements); nil counts nothing.
	sent, trips *atomic.Int64
}

// count notes one statement sent, in a round trip of its own.
func (d *txDB) count() {
	if d.sent != nil {
		d.sent.Add(1)
		d.trips.Add(1)
	}
}

func (d *txDB) stmt(query string) *sql.Stmt {
	d.mu.Lock()
	defer d.mu.Unlock()
	if st, ok := d.stmts[query]; ok {
		return st
	}
	parent := d.ws.lookup(query)
	if parent == nil {
		return nil
	}
	st := d.tx.StmtContext(context.Background(), parent)
	if d.stmts == nil {
		d.stmts = map[string]*sql.Stmt{}
	}
	d.stmts[query] = st
	return st
}

// release drops the transaction's statements (the commit or rollback has
// closed them).
func (d *txDB) release() {
	d.mu.Lock()
	d.stmts = nil
	d.mu.Unlock()
}

func (d *txDB) exec(query string) (sql.Result, error) {
	return d.ExecContext(context.Background(), query)
}

func (d *txDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	d.count()
	args = portableArgs(args)
	ctx = context.WithoutCancel(ctx)
	if st := d.stmt(query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return d.plain.ExecContext(ctx, query, args...)
}

func (d *txDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	d.count()
	args = portableArgs(args)
	ctx = context.WithoutCancel(ctx)
	if st := d.stmt(query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return d.plain.QueryContext(ctx, query, args...)
}

func (d *txDB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	d.count()
	args = portableArgs(args)
	ctx = context.WithoutCancel(ctx)
	if st := d.stmt(query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return d.plain.QueryRowContext(ctx, query, args...)
}

// portableArgs turns Go bool arguments into 0 and 1. The schema keeps
// booleans in integer columns (SQLite has no other kind), which SQLite's
// driver fills from a bool but pgx does not (it sends a bool to a boolean
// column only). Every query of Queries passes through here, so that no
// call site converts; args is returned as it is when it holds no bool.
func portableArgs(args []any) []any {
	for i, a := range args {
		if _, ok := a.(bool); !ok {
			continue
		}
		out := append([]any(nil), args...)
		for j := i; j < len(out); j++ {
			if b, ok := out[j].(bool); ok {
				out[j] = int64(0)
				if b {
					out[j] = int64(1)
				}
			}
		}
		return out
	}
	return args
}
