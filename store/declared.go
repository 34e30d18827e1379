package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// A declared write is a write that is, on PostgreSQL, one statement known
// before it runs: its text and arguments, and what to make of its result
// (the one row it returns, or that it must change a row). The writer sends
// the declared writes that come one after another in a group together, in
// one round trip (a pgx pipeline), where each write of a group otherwise
// costs two: its statement, and its savepoint's release with the next
// one's. They run without savepoints between them; when one of them fails,
// the writer rolls back all of them and runs each again the slow way, in a
// savepoint of its own (its fn), so that a failing write still fails alone
// and the others commit. A declared statement must thus be safe to run
// again: what it sets of its caller's variables is set again. On SQLite,
// where a statement is a call in the process, a declared write is its fn,
// as any other write.
type declared struct {
	query string
	args  []any
	// row, when set, reads the one row the statement returns and makes of
	// it the write's outcome: an error fails the write. When nil the
	// statement returns no row; with one, it must change a row (none is
	// ErrNotFound, as execOne).
	row func(scanner) error
	one bool
}

// run runs d on q's connection, as the slow way and the fn of Queries'
// own methods do: the same statement, the same outcome.
func (d *declared) run(ctx context.Context, q *Queries) error {
	if d.row != nil {
		return d.row(q.db.QueryRowContext(ctx, d.query, d.args...))
	}
	if d.one {
		return q.execOne(ctx, d.query, d.args...)
	}
	return q.exec(ctx, d.query, d.args...)
}

// writeDeclared is Write of fn, which on PostgreSQL must do what d does
// (it is how the writer runs d the slow way): a write the writer may send
// with the declared writes beside it in one round trip.
func (s *Store) writeDeclared(ctx context.Context, fn func(q *Queries) error, d *declared) error {
	if s.engine != PostgreSQL {
		return s.Write(ctx, fn)
	}
	return s.write1(ctx, fn, d)
}

// auditIdle reports whether r's command audit, if any, needs no statement
// before r's change: its row is written (committed, or by an earlier write
// of the running transaction) and holds the command's result. A declared
// write whose audit needs one runs the slow way (runOne writes the row).
func (r *writeReq) auditIdle() bool {
	a := r.audit
	if a == nil {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	seq, result := a.written()
	return seq != 0 && result == a.rec.Result
}

// pipelined reports whether r may be sent with the declared writes beside
// it: it is declared, its caller still waits, and its audit needs nothing.
func (r *writeReq) pipelined() bool {
	return r.decl != nil && r.ctx.Err() == nil && r.auditIdle()
}

// runPipelined sends the declared writes of run in one round trip on the
// writer's connection, inside the group's transaction, whose savepoint w
// is set and holds nothing, or, when begin is set, after the statements
// that begin that transaction, take the write lock and set w (a deferred
// begin: Store.begin); more says whether writes of the group follow
// (then the batch ends with savepoint w's release and a new one, as a slow
// write's release does). It reports whether they all succeeded; when one
// failed, savepoint w is rolled back to (nothing of run is written, w is
// set again) and the caller runs them the slow way. fatal is an error
// after which the transaction cannot go on.
func (s *Store) runPipelined(conn *sql.Conn, db *txDB, run []*writeReq, more, begin bool) (ok bool, fatal error) {
	b := &pgx.Batch{}
	if begin {
		for _, q := range beginStatements {
			b.Queue(q)
		}
	}
	for _, r := range run {
		b.Queue(r.decl.query, portableArgs(r.decl.args)...)
	}
	if more {
		b.Queue(`RELEASE w`)
		b.Queue(`SAVEPOINT w`)
	}
	s.writeSent.Add(int64(b.Len()))
	s.writeTrips.Add(1)
	var failed bool
	err := withPgx(conn, func(c *pgx.Conn) error {
		br := c.SendBatch(context.Background(), b)
		if begin {
			for range beginStatements {
				if _, err := br.Exec(); err != nil {
					br.Close()
					return fmt.Errorf("begin and take the write lock: %w", err)
				}
			}
		}
		for _, r := range run {
			var err error
			switch d := r.decl; {
			case d.row != nil:
				err = d.row(br.QueryRow())
			default:
				tag, xerr := br.Exec()
				err = translate(xerr)
				if err == nil && d.one && tag.RowsAffected() == 0 {
					err = ErrNotFound
				}
			}
			if err != nil {
				failed = true
				break
			}
		}
		if !failed && more {
			for range 2 {
				if _, err := br.Exec(); err != nil {
					failed = true
					break
				}
			}
		}
		// Close reads what is left: after a failure, the statements the
		// server skipped (the transaction is aborted until the rollback).
		cerr := br.Close()
		if cerr != nil && !failed && !isStatementError(cerr) {
			return cerr
		}
		failed = failed || cerr != nil
		return nil
	})
	dirty := s.takeInventoryDirty()
	if err != nil {
		return false, err
	}
	if !failed {
		run[0].dirty = dirty
		return true, nil
	}
	if _, err := db.exec(`ROLLBACK TO w`); err != nil {
		return false, err
	}
	return false, nil
}

// isStatementError reports whether err is the server's answer to a
// statement (the connection is fine), not a broken connection.
func isStatementError(err error) bool {
	return pgCode(err) != ""
}

// SetJobStep records, in a write of its own, the step a running job is
// at, before it takes it (Queries.SetJobStep): on PostgreSQL a declared
// write, sent with the declared writes of other jobs in one round trip.
func (s *Store) SetJobStep(ctx context.Context, id, step string) error {
	d := setJobStepDecl(id, step)
	return s.writeDeclared(ctx, func(q *Queries) error { return q.SetJobStep(ctx, id, step) }, d)
}

// setJobStepDecl is SetJobStep, on either engine; a declared write on
// PostgreSQL.
func setJobStepDecl(id, step string) *declared {
	return &declared{query: `UPDATE jobs SET step = $1 WHERE id = $2 AND status = 'Running'`, args: []any{step, id}, one: true}
}

// InsertJobAndLock is Queries.InsertJobAndLock in a write of its own: on
// PostgreSQL a declared write.
func (s *Store) InsertJobAndLock(ctx context.Context, j Job, objects []string) (*ObjectLock, error) {
	var held *ObjectLock
	d := insertJobAndLockDecl(j, objects, &held)
	err := s.writeDeclared(ctx, func(q *Queries) error {
		var err error
		held, err = q.InsertJobAndLock(ctx, j, objects)
		return err
	}, d)
	if err != nil {
		return nil, err
	}
	return held, nil
}

// EndJobAndUnlock is Queries.EndJobAndUnlock in a write of its own: on
// PostgreSQL a declared write.
func (s *Store) EndJobAndUnlock(ctx context.Context, id, status, result, errText string, ended time.Time) error {
	d := endJobAndUnlockDecl(id, status, result, errText, ended)
	return s.writeDeclared(ctx, func(q *Queries) error { return q.EndJobAndUnlock(ctx, id, status, result, errText, ended) }, d)
}

// SetVMStateAndEndJob is Queries.SetVMStateAndEndJob in a write of its
// own: on PostgreSQL a declared write.
func (s *Store) SetVMStateAndEndJob(ctx context.Context, vmID, serverID, vmStatus, jobID, status, result, errText string, ended time.Time) (running bool, err error) {
	d := setVMStateAndEndJobDecl(vmID, serverID, vmStatus, jobID, status, result, errText, ended, &running)
	err = s.writeDeclared(ctx, func(q *Queries) error {
		var err error
		running, err = q.SetVMStateAndEndJob(ctx, vmID, serverID, vmStatus, jobID, status, result, errText, ended)
		return err
	}, d)
	if err != nil {
		return false, err
	}
	return running, nil
}
