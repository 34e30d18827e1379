package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
)

// Write runs fn in an immediate transaction on the writer connection,
// committing when fn returns nil and rolling back what fn did otherwise, so
// that a failed operation leaves nothing half-written. Write returns once
// what fn wrote is committed (or failed): a caller may rely on it being
// durable, as far as synchronous=NORMAL goes, before it acts on it.
//
// Group commit: SQLite has one writer, and a transaction's fixed cost (the
// write lock, the WAL frames of the pages it dirtied, the commit) is most of
// a small write's. So the writes are run by one goroutine, and concurrent
// ones share a transaction: the writes asked for while a transaction runs
// make up the next one (with those that the goroutines ready to run bring,
// when writes keep coming concurrently), each inside its own savepoint, so
// that one that fails rolls back alone. Writes of one caller at a time run
// as before, each in a transaction of its own, and wait for nobody. The
// order of one caller's writes is kept (each waits for the previous one's
// commit); the writes of a group run in the order they were asked for and
// are committed together. On PostgreSQL, where each statement is a round
// trip, the declared writes (one statement known in advance: a job's row,
// its step, its end) that come one after another in a group are sent in
// one round trip, without savepoints between them; should one fail, they
// are rolled back and run again, each in its savepoint (declared.go).
//
// fn runs on the writer's goroutine: it must not call Write (it would wait
// for its own group) nor runtime.Goexit (t.Fatal: the writer would end); a
// panic in fn is raised again in the caller. A ctx that ends while the
// write waits for its turn cancels it; once fn has started, its statements
// are not interrupted (that would roll back the whole group) and Write
// waits for the commit.
//
// On PostgreSQL several managers write to one database, and each write
// transaction first takes one transaction-scoped advisory lock,
// pg_advisory_xact_lock(writeLockKey), held until its commit. So the write
// transactions of every manager run one at a time, as SQLite's single
// writer runs them: an fn that reads, decides and writes sees no other
// manager's write land between its read and its write, and no caller has
// to retry (SERIALIZABLE isolation would give the same safety through
// serialization failures that every caller would have to retry). Group
// commit keeps the lock's cost, a round trip and the wait for the other
// managers' transactions, to one per group. Reads take no lock. One
// difference remains: a statement that fails aborts a PostgreSQL
// transaction, so fn must return the error of a failed statement (every
// caller does); a write whose fn goes on after one fails with
// ErrWentOnAfterFailure, having written nothing, and only its own
// savepoint is rolled back in a group.
//
// A ctx that carries a command's audit record (WithCommandAudit) has the
// record's row written before fn, in fn's transaction, when the command has
// no row committed yet: if the row cannot be written, the write fails
// (ErrAudit) and fn's change is not made. A write that failed for want of
// disk space is marked ErrDiskFull.
func (s *Store) Write(ctx context.Context, fn func(q *Queries) error) error {
	return s.write1(ctx, fn, nil)
}

// write1 is Write of fn, which when d is not nil is a declared write
// (declared.go).
func (s *Store) write1(ctx context.Context, fn func(q *Queries) error, d *declared) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	r := &writeReq{ctx: ctx, fn: fn, decl: d, audit: CommandAuditOf(ctx), done: make(chan struct{})}
	s.wmu.Lock()
	if s.wclosed {
		s.wmu.Unlock()
		return errors.New("begin: the store is closed")
	}
	s.queue = append(s.queue, r)
	s.wmu.Unlock()
	s.wake()
	select {
	case <-r.done:
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqAbandoned) {
			return fmt.Errorf("begin: %w", ctx.Err())
		}
		<-r.done // fn has started: its outcome is known only after the commit
	}
	if r.panicked != nil {
		panic(r.panicked)
	}
	return diskFull(r.err)
}

// writeReq is one Write waiting for, or in, a group.
type writeReq struct {
	ctx      context.Context
	fn       func(q *Queries) error
	decl     *declared    // on PostgreSQL, fn as one statement known in advance; nil for most
	state    atomic.Int32 // reqQueued, then reqTaken by the writer or reqAbandoned by the caller
	err      error
	panicked any  // what fn panicked with, panicked again in the caller
	dirty    bool // fn changed a row of the inventory's tables (generation.go)
	// audit is the command audit the context carries: its row is written
	// with fn's change (CommandAudit). audits are what the write wrote of
	// audit rows, for the writer to settle at the transaction's end.
	audit  *CommandAudit
	audits []auditUndo
	done   chan struct{}
}

const (
	reqQueued int32 = iota
	reqTaken
	reqAbandoned
)

// maxGroup bounds the writes of one transaction.
const maxGroup = 256

// busyFor is how long writes are taken to come concurrently after the last
// sign of it; maxYields bounds how often the writer lets other goroutines
// run first, to gather a group, while more writes keep coming.
const (
	busyFor   = 5 * time.Millisecond
	maxYields = 3
)

// WriteStats returns how many writes (Write calls that ran) and how many
// write transactions the store has made since it opened.
func (s *Store) WriteStats() (writes, transactions int64) {
	return s.writesRun.Load(), s.writeTxs.Load()
}

// WriteStatements returns how many statements the store has sent on its
// writer connection since it opened: those of the writes, the savepoints
// between them, and each transaction's begin, write lock (PostgreSQL),
// commit or rollback. WriteRoundTrips returns in how many round trips:
// on PostgreSQL each is one to the server on the connection every write
// of the manager waits for, and the declared writes of a group, with the
// savepoints after them, go in one (declared.go).
func (s *Store) WriteStatements() int64 { return s.writeSent.Load() }

// WriteRoundTrips: see WriteStatements.
func (s *Store) WriteRoundTrips() int64 { return s.writeTrips.Load() }

// wake tells the writer goroutine that the queue (or wclosed) changed; a
// wake already pending is enough.
func (s *Store) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// writer runs the queued writes, a group per transaction, until Close.
func (s *Store) writer() {
	defer close(s.writerDone)
	var group []*writeReq
	// lastBusy is when writes were last seen to come concurrently: a
	// group of several, or writes queued while a group ran (one caller
	// has one write at a time).
	var lastBusy time.Time
	var lastKick int64 // s.writeTxs when a checkpoint was last asked for
	for {
		s.wmu.Lock()
		for len(s.queue) == 0 {
			if s.wclosed {
				s.wmu.Unlock()
				return
			}
			s.wmu.Unlock()
			<-s.kick
			s.wmu.Lock()
		}
		if time.Since(lastBusy) < busyFor {
			// Writes come concurrently: let the goroutines that are ready
			// to run go first, while that brings more writes, so that
			// those join this group (a transaction costs much more than
			// the statements of a small write). Writes of one caller at a
			// time do not wait. (A timer would not do: a sleep of 100 us
			// lasts a millisecond on the reference machine.)
			for range maxYields {
				n := len(s.queue)
				if n >= maxGroup || s.wclosed {
					break
				}
				s.wmu.Unlock()
				runtime.Gosched()
				s.wmu.Lock()
				if len(s.queue) == n {
					break
				}
			}
		}
		n := min(len(s.queue), maxGroup)
		group = append(group[:0], s.queue[:n]...)
		rest := copy(s.queue, s.queue[n:])
		clear(s.queue[rest:])
		s.queue = s.queue[:rest]
		s.wmu.Unlock()
		taken := group[:0]
		for _, r := range group {
			if r.state.CompareAndSwap(reqQueued, reqTaken) {
				taken = append(taken, r)
			}
		}
		s.writeStmts.prepareNoted()
		s.runGroup(taken)
		if len(taken) > 0 {
			s.writesRun.Add(int64(len(taken)))
			if txs := s.writeTxs.Add(1); txs-lastKick >= s.ckEvery.Load() {
				lastKick = txs
				select {
				case s.ckKick <- struct{}{}:
				default: // one is running or asked for already
				}
			}
		}
		// Tell the callers once their writes are counted: a Write that
		// has returned is in WriteStats.
		for _, r := range taken {
			close(r.done)
		}
		s.wmu.Lock()
		if len(group) > 1 || len(s.queue) > 0 {
			lastBusy = time.Now()
		}
		s.wmu.Unlock()
		clear(group)
	}
}

// runGroup runs the writes of group in one transaction (a lone write in a
// plain transaction, several each in a savepoint), leaving each one's
// outcome in it for the writer to tell its caller.
func (s *Store) runGroup(group []*writeReq) {
	if len(group) == 0 {
		return
	}
	// On PostgreSQL a group that opens with declared writes sends BEGIN,
	// the write lock and savepoint w in their round trip (runPipelined):
	// two round trips for the group, with its commit, rather than three.
	// Each round trip is a wake-up of the server's process and of the
	// writer, which on busy cores wait for one.
	deferred := s.engine == PostgreSQL && group[0].pipelined()
	tx, plain, conn, err := s.begin(len(group) > 1, deferred)
	if err != nil {
		for _, r := range group {
			r.err = fmt.Errorf("begin: %w", err)
		}
		return
	}
	if conn != nil {
		defer conn.Close() // back to the pool, after the commit or rollback
	}
	stx, _ := tx.(*sql.Tx) // SQLite's, for its prepared statements
	db := s.writeStmts.forTx(stx, plain)
	db.sent, db.trips = &s.writeSent, &s.writeTrips
	defer db.release()
	// begun: the transaction is begun (and on PostgreSQL savepoint w set
	// for a group); a deferred begin is sent with the first pipelined
	// run, or alone before the first statement of another write.
	begun := !deferred
	defer func() { // the commit or the rollback
		if begun {
			s.writeSent.Add(1)
			s.writeTrips.Add(1)
		}
	}()
	if len(group) == 1 && !deferred {
		r := group[0]
		if err := r.ctx.Err(); err != nil {
			tx.Rollback()
			r.err = fmt.Errorf("begin: %w", err)
			return
		}
		s.runOne(db, r)
		if r.err != nil || r.panicked != nil {
			tx.Rollback()
			r.settleAudits(false)
			return
		}
		r.err = commitErr(tx.Commit())
		r.settleAudits(r.err == nil)
		if r.dirty {
			s.inventoryGen.Add(1)
		}
		s.vmSettled()
		return
	}
	var committed []*writeReq
	dirty := false
	// marked: savepoint w is set and holds nothing yet. On PostgreSQL,
	// where each statement is a round trip, begin sets it with the lock,
	// a write's release sets the next one's in the same round trip, and a
	// rollback to it keeps it for the next write.
	marked := s.engine == PostgreSQL
	// slowUntil: the writes before it, of a pipelined run that failed,
	// run the slow way.
	slowUntil := 0
	beginNow := func() error {
		if begun {
			return nil
		}
		begun = true
		return s.sendBegin(conn, true)
	}
	for i := 0; i < len(group); i++ {
		r := group[i]
		if err := r.ctx.Err(); err != nil {
			r.err = fmt.Errorf("begin: %w", err)
			continue
		}
		if conn != nil && marked && i >= slowUntil && r.pipelined() {
			// Declared writes, one after another: in one round trip,
			// with the release of w and the next one's savepoint.
			j := i + 1
			for j < len(group) && group[j].pipelined() {
				j++
			}
			run, more := group[i:j], j < len(group)
			ok, err := s.runPipelined(conn, db, run, more, !begun)
			begun = true
			if err != nil {
				s.abortGroup(tx, group, err)
				return
			}
			if ok {
				committed = append(committed, run...)
				dirty = dirty || run[0].dirty
				marked, i = more, j-1
				continue
			}
			// One failed: nothing of run is written, w is set again;
			// each runs in a savepoint of its own, so that it alone fails.
			slowUntil = j
		}
		if err := beginNow(); err != nil {
			s.abortGroup(tx, group, err)
			return
		}
		if !marked {
			if _, err := db.exec(`SAVEPOINT w`); err != nil {
				s.abortGroup(tx, group, err)
				return
			}
		}
		marked = false
		s.runOne(db, r)
		if r.err == nil && r.panicked == nil {
			release := `RELEASE w`
			if s.engine == PostgreSQL && i < len(group)-1 {
				release, marked = `RELEASE w; SAVEPOINT w`, true
			}
			_, err := db.exec(release)
			if err == nil {
				committed = append(committed, r)
				dirty = dirty || r.dirty
				continue
			}
			marked = false
			if pgCode(err) != pgInFailedTransaction {
				s.abortGroup(tx, group, err)
				return
			}
			// PostgreSQL: a statement of fn failed, which aborted the
			// transaction, and fn went on: fn's savepoint is rolled back
			// as if it had returned the error.
			r.err = fmt.Errorf("%w: %w", ErrWentOnAfterFailure, err)
		}
		if _, err := db.exec(`ROLLBACK TO w`); err != nil {
			// SQLite ended the transaction itself (a full disk, an I/O
			// error): nothing of the group is written.
			s.abortGroup(tx, group, err)
			return
		}
		r.undoAudits() // the rest of the group goes on without what r wrote
		if s.engine == PostgreSQL {
			marked = true // the savepoint stays after ROLLBACK TO
			continue
		}
		if _, err := db.exec(`RELEASE w`); err != nil {
			s.abortGroup(tx, group, err)
			return
		}
	}
	if len(committed) == 0 {
		if begun {
			tx.Rollback()
		}
		return
	}
	err = commitErr(tx.Commit())
	for _, r := range committed {
		r.err = err
		r.settleAudits(err == nil)
	}
	if dirty {
		s.inventoryGen.Add(1)
	}
	s.vmSettled()
}

// commitErr wraps the error of a commit for the writes that waited on it.
// PostgreSQL rolls back, rather than commits, a transaction a statement
// failed in: the write went on after the failure.
func commitErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrTxCommitRollback):
		return fmt.Errorf("commit: %w", ErrWentOnAfterFailure)
	}
	return fmt.Errorf("commit: %w", err)
}

// ErrWentOnAfterFailure is the failure of a write on PostgreSQL whose fn
// went on after one of its statements had failed (and returned nil, or
// another error of the aborted transaction): PostgreSQL has rolled back
// what it wrote.
var ErrWentOnAfterFailure = errors.New("a statement of the write failed and the write went on; nothing of it was written")

// pgInFailedTransaction is PostgreSQL's SQLSTATE for a statement sent in a
// transaction a failed statement has aborted.
const pgInFailedTransaction = "25P02"

// begin starts a write transaction on the writer connection; on
// PostgreSQL it first takes the write lock every manager's writes take
// (see Write), and for a group sets savepoint w, all in one round trip
// (sendBegin), or, deferred, in the round trip of the group's first
// declared writes (runPipelined): the transaction is begun by hand
// (BEGIN) on the connection conn, held for the group (its end gives it
// back to the pool), whose statements then run on conn itself, and the
// group's declared writes through pgx (declared.go). db is where the
// transaction's statements run (tx on SQLite, conn on PostgreSQL).
func (s *Store) begin(group, deferred bool) (tx writeTx, db dbtx, conn *sql.Conn, err error) {
	ctx := context.Background()
	if s.engine != PostgreSQL {
		s.writeSent.Add(1)
		s.writeTrips.Add(1)
		stx, err := s.write.BeginTx(ctx, nil)
		if err != nil {
			return nil, nil, nil, err
		}
		return stx, stx, nil, nil
	}
	conn, err = s.write.Conn(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	ptx := pgTx{conn: conn, s: s}
	if deferred {
		return ptx, conn, conn, nil
	}
	if err := s.sendBegin(conn, group); err != nil {
		ptx.Rollback()
		conn.Close()
		return nil, nil, nil, err
	}
	return ptx, conn, conn, nil
}

// beginStatements begin a write transaction on PostgreSQL, take the write
// lock and set savepoint w (for a group); beginGroupSQL and beginOneSQL
// are them as one string, with and without the savepoint, joined once
// rather than at every transaction.
var (
	beginStatements = []string{`BEGIN`, fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d)`, writeLockKey), `SAVEPOINT w`}
	beginGroupSQL   = strings.Join(beginStatements, "; ")
	beginOneSQL     = strings.Join(beginStatements[:2], "; ")
)

// sendBegin begins a write transaction on the writer's connection conn on
// PostgreSQL, in one round trip: beginStatements, savepoint w only for a
// group.
func (s *Store) sendBegin(conn *sql.Conn, group bool) error {
	begin, n := beginGroupSQL, len(beginStatements)
	if !group {
		begin, n = beginOneSQL, n-1
	}
	s.writeSent.Add(int64(n))
	s.writeTrips.Add(1)
	if _, err := conn.ExecContext(context.Background(), begin); err != nil {
		return fmt.Errorf("begin and take the write lock: %w", err)
	}
	return nil
}

// writeTx ends a write transaction: *sql.Tx on SQLite, pgTx on
// PostgreSQL.
type writeTx interface {
	Commit() error
	Rollback() error
}

// pgTx is a write transaction begun by hand (BEGIN) on the writer's
// connection conn on PostgreSQL, of store s.
type pgTx struct {
	conn *sql.Conn
	s    *Store
}

// commitSQL commits a write transaction on PostgreSQL, first reading the
// VMs the transaction changed, as the triggers of migration 0028 list them
// (vmgeneration.go): one round trip.
const commitSQL = `SELECT current_setting('xenmanager.vms_changed', true); COMMIT`

// Commit commits; a transaction a failed statement aborted is rolled
// back instead (PostgreSQL answers COMMIT with ROLLBACK), which is
// pgx.ErrTxCommitRollback, as pgx's own transactions say it. The VMs the
// transaction changed are marked changed (vmNoted) before Commit returns.
func (t pgTx) Commit() error {
	return withPgx(t.conn, func(c *pgx.Conn) error {
		results, err := c.PgConn().Exec(context.Background(), commitSQL).ReadAll()
		if pgCode(err) == pgInFailedTransaction {
			// The read failed, so the COMMIT after it was not run.
			if _, err := c.Exec(context.Background(), `ROLLBACK`); err != nil {
				return err
			}
			return pgx.ErrTxCommitRollback
		}
		if err != nil {
			return err
		}
		if len(results) != 2 || len(results[0].Rows) != 1 || len(results[0].Rows[0]) != 1 {
			return fmt.Errorf("%d results to the read of the changed VMs and the commit, want 2 with one value", len(results))
		}
		if results[1].CommandTag.String() == "ROLLBACK" {
			return pgx.ErrTxCommitRollback
		}
		t.s.vmNoted(string(results[0].Rows[0][0]))
		return nil
	})
}

// withPgx runs f with the pgx connection under conn, the writer's on
// PostgreSQL, for what database/sql does not offer (a pipeline, the
// command tag of a COMMIT).
func withPgx(conn *sql.Conn, f func(c *pgx.Conn) error) error {
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("the writer's connection is a %T, not pgx's", dc)
		}
		return f(c.Conn())
	})
}

// Rollback rolls back. Should it fail, the connection goes back to the
// pool in the transaction, and pgx's driver discards it at its next use.
func (t pgTx) Rollback() error {
	_, err := t.conn.ExecContext(context.Background(), `ROLLBACK`)
	return err
}

// runOne runs one write's fn on the group's transaction, catching a panic
// for its caller.
func (s *Store) runOne(db *txDB, r *writeReq) {
	q := &Queries{db: db, w: r, engine: s.engine}
	defer func() {
		r.dirty = s.takeInventoryDirty()
		if p := recover(); p != nil {
			r.panicked = p
		}
	}()
	if r.audit != nil {
		// The command's audit row first: a change is never committed
		// without it.
		if r.err = q.saveAudit(r.ctx, r.audit); r.err != nil {
			return
		}
	}
	r.err = r.fn(q)
	if pgCode(r.err) == pgInFailedTransaction {
		r.err = fmt.Errorf("%w: %w", ErrWentOnAfterFailure, r.err)
	}
}

// abortGroup rolls back a group whose transaction cannot go on: every
// write of it fails, those that succeeded with the cause.
func (s *Store) abortGroup(tx writeTx, group []*writeReq, cause error) {
	tx.Rollback()
	for _, r := range group {
		if r.err == nil && r.panicked == nil {
			r.err = fmt.Errorf("write group rolled back: %w", cause)
		}
		r.settleAudits(false)
	}
}

// ErrDiskFull marks a write that failed because the disk holding the
// database is full (SQLite's SQLITE_FULL, PostgreSQL's SQLSTATE 53100):
// nothing of it was written.
var ErrDiskFull = errors.New("the disk holding the database is full")

// sqliteFull is SQLite's primary result code SQLITE_FULL; pgDiskFull is
// PostgreSQL's disk_full.
const (
	sqliteFull = 13
	pgDiskFull = "53100"
)

// diskFull marks err with ErrDiskFull when the database failed for want of
// space, so that callers can say so without parsing the driver's text.
func diskFull(err error) error {
	var se *sqlite.Error
	if err != nil && (errors.As(err, &se) && se.Code()&0xff == sqliteFull || pgCode(err) == pgDiskFull) {
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	return err
}
