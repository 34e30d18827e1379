package backend

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"xenmanager/store"
)

// The audit log has one record per command a session runs (docs/guide.md,
// "The audit log"). A change is audited in its own transaction: the
// command's context carries its record (WithAudit) into every write of the
// store, and the first write that commits writes the record's row with the
// change (store.CommandAudit), so that a change is never made without its
// record; if the row cannot be written the change fails and the command
// with it. How the command ended (its result) is written afterwards through
// the spool (auditSpool): into the row a change wrote, or as a new row for
// a command that changed nothing (a read, a refusal). The spool retries
// what it cannot write, holds at most auditSpoolMax records, and counts and
// logs, record by record, what it has to drop.

// CommandAudit is the audit record of one command.
type CommandAudit struct{ rec *store.CommandAudit }

// BeginAudit returns the record of a command a is about to run; command
// is its text as it may be kept (passwords masked). Run the command with
// WithAudit and end it with EndAudit.
func (m *Manager) BeginAudit(a Actor, command string) *CommandAudit {
	return &CommandAudit{store.NewCommandAudit(a.User, a.Remote, command, time.Now())}
}

// WithAudit returns ctx carrying c: the first change an operation makes
// under it, or under a context made from it (a job it starts, which may
// go on after the command), is committed with c's row.
func WithAudit(ctx context.Context, c *CommandAudit) context.Context {
	return store.WithCommandAudit(ctx, c.rec)
}

// EndAudit records how c's command ended, result being Success or an
// error code: in the row its first change wrote, or in a row of its own.
// It returns before the result is written (the spool writes it).
func (m *Manager) EndAudit(c *CommandAudit, result string) {
	c.rec.End(result)
	m.audit.add(c.rec)
}

// Audit records a command that made no change: one refused before it ran
// (a line that does not parse, a user no longer allowed).
func (m *Manager) Audit(ctx context.Context, a Actor, command, result string) {
	m.EndAudit(m.BeginAudit(a, command), result)
}

// AuditStats are what the spool holds and what it lost, shown by show
// Manager.
type AuditStats struct {
	// Waiting is how many commands' results wait to be written (the
	// database failed, or their batch is due).
	Waiting int
	// Lost is how many records the spool dropped since the manager
	// started: it was full, or the manager stopped, while the database
	// could not be written. Each one is in the manager's log.
	Lost int64
}

// auditSpool writes how commands ended, in batches: every auditFlushEvery,
// when auditBatch records wait, or when flushed (AuditLog, Close). A batch
// that fails is tried again after a back-off that doubles up to
// auditRetryMax, and logged each time. The spool holds at most
// auditSpoolMax records: one more is dropped, counted and logged in full;
// so are those still waiting when the manager stops. The next batch
// written says how many were lost in a row of its own.
type auditSpool struct {
	st  *store.Store
	log *slog.Logger

	mu         sync.Mutex // guards limit, pending, closed, lost and unreported
	limit      int        // how many records may wait: auditSpoolMax
	pending    []*store.CommandAudit
	closed     bool
	lost       int64 // records dropped since the manager started
	unreported int64 // dropped records no row of the audit log tells of yet

	flushMu sync.Mutex // one flush at a time: the spool's goroutine's or AuditLog's

	wake chan struct{} // a full batch waits
	quit chan struct{}
	done chan struct{}
}

const (
	auditFlushEvery = 200 * time.Millisecond
	auditBatch      = 256
	auditRetryMax   = 30 * time.Second
	auditSpoolMax   = 10000
)

// AuditLost is the result of the row that tells of dropped records.
const AuditLost = "Lost"

func newAuditSpool(st *store.Store, log *slog.Logger) *auditSpool {
	w := &auditSpool{st: st, log: log, limit: auditSpoolMax, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

// add queues an ended record.
func (w *auditSpool) add(a *store.CommandAudit) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		// After Close: write it at once, or lose it loudly.
		if err := w.write([]*store.CommandAudit{a}, 0); err != nil {
			w.drop(a, "the manager is stopping and the database cannot be written", err)
		}
		return
	}
	if len(w.pending) >= w.limit {
		limit := w.limit
		w.mu.Unlock()
		w.drop(a, fmt.Sprintf("%d records wait already: the database cannot be written", limit), nil)
		return
	}
	w.pending = append(w.pending, a)
	full := len(w.pending) >= auditBatch
	w.mu.Unlock()
	if full {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// drop counts a lost record and logs it in full: the log is its only
// trace.
func (w *auditSpool) drop(a *store.CommandAudit, why string, err error) {
	r := a.Record()
	w.mu.Lock()
	w.lost++
	w.unreported++
	lost := w.lost
	w.mu.Unlock()
	attrs := []any{"user", r.User, "remote", r.Remote, "command", r.Command, "result", r.Result,
		"started", r.CreatedAt, "row", r.Seq, "lost_since_start", lost}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	w.log.Error("audit record lost: "+why, attrs...)
}

func (w *auditSpool) run() {
	defer close(w.done)
	delay := auditFlushEvery
	tick := time.NewTimer(delay)
	defer tick.Stop()
	var retryAt time.Time // while batches fail: not before then
	for {
		select {
		case <-tick.C:
		case <-w.wake:
			if time.Now().Before(retryAt) {
				continue // backing off
			}
		case <-w.quit:
			w.flush()
			return
		}
		if w.flush() {
			delay, retryAt = auditFlushEvery, time.Time{}
		} else {
			delay = min(delay*2, auditRetryMax)
			retryAt = time.Now().Add(delay)
		}
		tick.Reset(delay)
	}
}

// flush writes what waits now, and reports whether it could.
func (w *auditSpool) flush() bool {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	w.mu.Lock()
	batch := append([]*store.CommandAudit(nil), w.pending...)
	unreported := w.unreported
	w.mu.Unlock()
	if len(batch) == 0 && unreported == 0 {
		return true
	}
	if err := w.write(batch, unreported); err != nil {
		w.log.Error("audit records not written yet; retrying", "waiting", len(batch), "err", err)
		return false
	}
	// Only add appends to pending, and only flush (one at a time) takes
	// from it: the batch is still its front.
	w.mu.Lock()
	n := copy(w.pending, w.pending[len(batch):])
	clear(w.pending[n:])
	w.pending = w.pending[:n]
	w.unreported -= unreported
	w.mu.Unlock()
	return true
}

// write writes batch in one transaction and, when lost is not 0, a row
// that tells of lost records.
func (w *auditSpool) write(batch []*store.CommandAudit, lost int64) error {
	ctx := context.Background()
	return w.st.Write(ctx, func(q *store.Queries) error {
		if err := q.SaveAudits(ctx, batch); err != nil {
			return err
		}
		if lost == 0 {
			return nil
		}
		return q.InsertAudit(ctx, store.AuditRecord{User: system.User, Result: AuditLost, CreatedAt: time.Now(),
			Command: fmt.Sprintf("%d audit records lost: the database could not be written (the manager's log has each one)", lost)})
	})
}

// stats returns what waits and what was lost.
func (w *auditSpool) stats() AuditStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return AuditStats{Waiting: len(w.pending), Lost: w.lost}
}

// close writes what waits, if it can, and stops the spool; what it cannot
// write is lost, loudly.
func (w *auditSpool) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.mu.Unlock()
	close(w.quit)
	<-w.done
	w.flushMu.Lock() // an AuditLog's flush may still run
	w.mu.Lock()
	left := w.pending
	w.pending = nil
	w.mu.Unlock()
	w.flushMu.Unlock()
	for _, a := range left {
		w.drop(a, "the manager stopped before the database could be written", nil)
	}
}
