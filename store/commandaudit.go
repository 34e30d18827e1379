package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// CommandAudit is the audit record of one command, shared by every write
// the command makes and by the record of how it ended, so that the
// command has one row in audit_records and no change of it is committed
// without that row:
//
//   - a Write whose context carries it (WithCommandAudit) inserts the row
//     in its own transaction when no row is committed yet, before the
//     write's own statements: if the row cannot be written, the write
//     fails and its change is not made. The row says AuditRunning until
//     the command ends. Later writes of the command find the row and add
//     nothing.
//   - SaveAudit, in a write of its own, makes the row hold the result End
//     gave: it inserts the row when the command changed nothing, or
//     updates the result of the row a change wrote.
//
// Every statement on a CommandAudit runs on the writer's goroutine (the
// writes run one at a time there), which knows whether the transaction
// that wrote the row committed: a row rolled back (with the write that
// carried it, or its whole group) is written again by the next write.
type CommandAudit struct {
	mu    sync.Mutex  // guards the fields below
	rec   AuditRecord // rec.Seq is unused; rec.Result is AuditRunning until End
	ended bool        // End was called
	seq   int64       // the committed row, 0 while none is
	saved string      // the result the committed row holds
	// txSeq and txResult, when inTx, are the row and result the running
	// write transaction wrote, not yet committed (txSeq is seq when the
	// row was there before); settled by the writer at the commit or the
	// roll-back (settleAudits, undoAudits).
	txSeq    int64
	txResult string
	inTx     bool
}

// AuditRunning is the result of a command's row written by its first
// change, until the command's end replaces it; a row the manager left
// Running when it stopped is of a command whose end it did not record.
const AuditRunning = "Running"

// NewCommandAudit returns the record of a command that user, from remote,
// started at at; command is the text as it may be kept (passwords
// masked).
func NewCommandAudit(user, remote, command string, at time.Time) *CommandAudit {
	return &CommandAudit{rec: AuditRecord{User: user, Remote: remote, Command: command, Result: AuditRunning, CreatedAt: at}}
}

// End sets the command's result: what SaveAudit writes, and what a change
// the command makes after it (a handler still running after the session
// stopped waiting) writes with the row if there is none yet.
func (a *CommandAudit) End(result string) {
	a.mu.Lock()
	a.rec.Result, a.ended = result, true
	a.mu.Unlock()
}

// Record returns the record: its committed row's seq (0 while none is)
// and the command's result (End's, AuditRunning before), which the row
// may not hold yet.
func (a *CommandAudit) Record() AuditRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.rec
	r.Seq = a.seq
	return r
}

type commandAuditKey struct{}

// WithCommandAudit returns ctx carrying a: every Write given that context
// (or one derived from it) writes a's row with its change, as CommandAudit
// says.
func WithCommandAudit(ctx context.Context, a *CommandAudit) context.Context {
	return context.WithValue(ctx, commandAuditKey{}, a)
}

// CommandAuditOf returns the command audit ctx carries, or nil.
func CommandAuditOf(ctx context.Context) *CommandAudit {
	a, _ := ctx.Value(commandAuditKey{}).(*CommandAudit)
	return a
}

// ErrAudit marks the failure of a write whose command's audit record could
// not be written: the write's change was not made.
var ErrAudit = errors.New("the command's audit record could not be written")

// SaveAudit makes a's row hold a's record as it is now, in this write: it
// inserts the row when none is there, or sets the row's result when End
// changed it. Only a Write's queries may do it.
func (q *Queries) SaveAudit(ctx context.Context, a *CommandAudit) error {
	if q.w == nil {
		return errors.New("save audit: not inside a write")
	}
	return q.saveAudit(ctx, a)
}

// SaveAudits is SaveAudit of each of as, in this write. On PostgreSQL
// the rows to insert are one statement and the results to set another,
// whatever their number: the audit spool writes the records of many
// commands at once (one a command, even a read), on the writer connection
// every write of the manager shares, where each statement is a round trip.
// On SQLite, where a statement is a call in the process, one statement a
// row as SaveAudit.
func (q *Queries) SaveAudits(ctx context.Context, as []*CommandAudit) error {
	if q.w == nil {
		return errors.New("save audits: not inside a write")
	}
	if q.engine != PostgreSQL {
		for _, a := range as {
			if err := q.saveAudit(ctx, a); err != nil {
				return err
			}
		}
		return nil
	}
	// What each row needs, as saveAudit decides it; every record is
	// locked until its row is written, so that what was decided holds.
	var ins, upd []*CommandAudit
	var updSeq []int64
	seen := make(map[*CommandAudit]bool, len(as))
	for _, a := range as {
		if seen[a] {
			continue
		}
		seen[a] = true
		a.mu.Lock()
		defer a.mu.Unlock()
		seq, result := a.written()
		switch {
		case seq == 0:
			ins = append(ins, a)
		case result != a.rec.Result:
			upd, updSeq = append(upd, a), append(updSeq, seq)
		}
	}
	var seqs []int64
	if len(ins) > 0 {
		users, remotes, commands, results, created := make([]string, len(ins)), make([]string, len(ins)), make([]string, len(ins)), make([]string, len(ins)), make([]int64, len(ins))
		for i, a := range ins {
			users[i], remotes[i], commands[i], results[i], created[i] = a.rec.User, a.rec.Remote, a.rec.Command, a.rec.Result, a.rec.CreatedAt.UnixMilli()
		}
		// The rows are inserted in the order of ins (ORDER BY n), so
		// their seqs, drawn from the identity's sequence row by row in
		// one statement, ascend in that order.
		var err error
		seqs, err = queryAll(ctx, q.db, scanInt64, `
			WITH ins AS (
				INSERT INTO audit_records (user_name, remote, command, result, created_at)
				SELECT u, r, c, res, t
				FROM unnest(CAST($1 AS TEXT[]), CAST($2 AS TEXT[]), CAST($3 AS TEXT[]), CAST($4 AS TEXT[]), CAST($5 AS BIGINT[]))
					WITH ORDINALITY AS p(u, r, c, res, t, n)
				ORDER BY n
				RETURNING seq
			)
			SELECT seq FROM ins ORDER BY seq`, users, remotes, commands, results, created)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrAudit, err)
		}
		if len(seqs) != len(ins) {
			return fmt.Errorf("%w: %d rows inserted for %d records", ErrAudit, len(seqs), len(ins))
		}
	}
	if len(upd) > 0 {
		results := make([]string, len(upd))
		for i, a := range upd {
			results[i] = a.rec.Result
		}
		if err := q.exec(ctx, `
			UPDATE audit_records SET result = p.result
			FROM unnest(CAST($1 AS BIGINT[]), CAST($2 AS TEXT[])) AS p(seq, result)
			WHERE audit_records.seq = p.seq`, updSeq, results); err != nil {
			return fmt.Errorf("%w: %w", ErrAudit, err)
		}
	}
	note := func(a *CommandAudit, seq int64) {
		q.w.audits = append(q.w.audits, auditUndo{a: a, seq: a.txSeq, result: a.txResult, inTx: a.inTx})
		a.txSeq, a.txResult, a.inTx = seq, a.rec.Result, true
	}
	for i, a := range ins {
		note(a, seqs[i])
	}
	for i, a := range upd {
		note(a, updSeq[i])
	}
	return nil
}

// written returns the seq of a's row and the result it holds, as the
// running write transaction sees them (seq 0: no row yet). The caller
// holds a.mu.
func (a *CommandAudit) written() (seq int64, result string) {
	if a.inTx {
		return a.txSeq, a.txResult
	}
	return a.seq, a.saved
}

// saveAudit is SaveAudit, and the insertion of the row before a change
// (runOne); it notes a for the writer to settle at the transaction's end.
func (q *Queries) saveAudit(ctx context.Context, a *CommandAudit) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	seq, result := a.written()
	switch {
	case seq == 0:
		s, err := queryOne(ctx, q.db, scanInt64, `INSERT INTO audit_records (user_name, remote, command, result, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING seq`,
			a.rec.User, a.rec.Remote, a.rec.Command, a.rec.Result, a.rec.CreatedAt.UnixMilli())
		if err != nil {
			return fmt.Errorf("%w: %w", ErrAudit, err)
		}
		seq = s
	case result != a.rec.Result:
		if err := q.execOne(ctx, `UPDATE audit_records SET result = $1 WHERE seq = $2`, a.rec.Result, seq); err != nil {
			return fmt.Errorf("%w: %w", ErrAudit, err)
		}
	default:
		return nil // the row holds it already
	}
	q.w.audits = append(q.w.audits, auditUndo{a: a, seq: a.txSeq, result: a.txResult, inTx: a.inTx})
	a.txSeq, a.txResult, a.inTx = seq, a.rec.Result, true
	return nil
}

// auditUndo is what a write found of a command audit's row in the running
// transaction before it wrote the row: restored when the write's savepoint
// rolls back, while the group's other writes go on.
type auditUndo struct {
	a      *CommandAudit
	seq    int64
	result string
	inTx   bool
}

// undoAudits restores what r's writes of audit rows found, last first: r
// rolled back alone (its savepoint).
func (r *writeReq) undoAudits() {
	for i := len(r.audits) - 1; i >= 0; i-- {
		u := r.audits[i]
		u.a.mu.Lock()
		u.a.txSeq, u.a.txResult, u.a.inTx = u.seq, u.result, u.inTx
		u.a.mu.Unlock()
	}
	r.audits = nil
}

// settleAudits ends what the transaction wrote of the audit rows of r's
// writes: kept when it committed, forgotten when it rolled back (the next
// write of the command writes the row again).
func (r *writeReq) settleAudits(committed bool) {
	for _, u := range r.audits {
		a := u.a
		a.mu.Lock()
		if a.inTx && committed {
			a.seq, a.saved = a.txSeq, a.txResult
		}
		a.txSeq, a.txResult, a.inTx = 0, "", false
		a.mu.Unlock()
	}
	r.audits = nil
}

func scanInt64(row scanner) (int64, error) {
	var v int64
	err := row.Scan(&v)
	return v, err
}
