package backend

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"xenmanager/store"
)

// auditWriter writes audit records in batches: every auditFlushEvery, or
// when auditBatch records wait, or when flushed.
type auditWriter struct {
	st  *store.Store
	log *slog.Logger

	mu      sync.Mutex // guards pending and closed
	pending []store.AuditRecord
	closed  bool

	wake chan struct{} // a full batch waits
	quit chan struct{}
	done chan struct{}
}

const (
	auditFlushEvery = 200 * time.Millisecond
	auditBatch      = 256
)

func newAuditWriter(st *store.Store, log *slog.Logger) *auditWriter {
	w := &auditWriter{st: st, log: log, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *auditWriter) add(r store.AuditRecord) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		w.write([]store.AuditRecord{r}) // after Close: write it at once
		return
	}
	w.pending = append(w.pending, r)
	full := len(w.pending) >= auditBatch
	w.mu.Unlock()
	if full {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

func (w *auditWriter) run() {
	defer close(w.done)
	tick := time.NewTicker(auditFlushEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-w.wake:
		case <-w.quit:
			w.flush()
			return
		}
		w.flush()
	}
}

// flush writes what is pending now.
func (w *auditWriter) flush() {
	w.mu.Lock()
	batch := w.pending
	w.pending = nil
	w.mu.Unlock()
	if len(batch) > 0 {
		w.write(batch)
	}
}

func (w *auditWriter) write(batch []store.AuditRecord) {
	ctx := context.Background()
	err := w.st.Write(ctx, func(q *store.Queries) error {
		for _, r := range batch {
			if err := q.InsertAudit(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		w.log.Error("record audit", "records", len(batch), "err", err)
	}
}

// close writes what is pending and stops the writer.
func (w *auditWriter) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.mu.Unlock()
	close(w.quit)
	<-w.done
}
