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

// saveAudit is SaveAudit, and the insertion of the row before a change
// (runOne); it notes a for the writer to settle at the transaction's end.
func (q *Queries) saveAudit(ctx context.Context, a *CommandAudit) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	seq, result := a.seq, a.saved
	if a.inTx {
		seq, result = a.txSeq, a.txResult
	}
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
