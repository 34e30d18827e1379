package commands

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"

	"xenmanager/backend"
)

// RowStream is a listing whose rows are read while they are printed (list
// Vm): the handler checks the command and its filters, the session reads
// the rows from the store's snapshot and writes each to the client as it
// comes (writeStream). A row's error ends the listing.
type RowStream func(ctx context.Context) iter.Seq2[Row, error]

// streamedBy is the Run of list for a type whose backend listing streams
// and takes list's filters: the filters are checked now, the rows read
// when the session prints them.
func streamedBy[T any](list func(*backend.Manager, context.Context, backend.Filter) (backend.Listing[T], error), row func(T) Row) func(context.Context, *Exec) (*Result, error) {
	return func(ctx context.Context, x *Exec) (*Result, error) {
		l, err := list(x.Backend, ctx, listFilter(x))
		if err != nil {
			return nil, err
		}
		return streamedRows(l, nil, row), nil
	}
}

// streamedRows is the Result of every listing that streams: the rows of l
// that keep passes (all when keep is nil), each as row makes it, read
// when the session prints them (writeStream). A listing whose own
// arguments are not list's filters (list Job's status=, list Event's
// limit=) starts its backend listing itself and ends here.
func streamedRows[T any](l backend.Listing[T], keep func(T) bool, row func(T) Row) *Result {
	return &Result{Stream: func(ctx context.Context) iter.Seq2[Row, error] {
		return func(yield func(Row, error) bool) {
			for v, err := range l.All(ctx) {
				if err != nil {
					yield(Row{}, err)
					return
				}
				if keep != nil && !keep(v) {
					continue
				}
				if !yield(row(v), nil) {
					return
				}
			}
		}
	}}
}

// streamBatch is how many rows are put in their output form at a time.
const streamBatch = 256

// writeStream prints a report whose result is a RowStream in format f,
// writing the rows as they are read: through a spillWriter, so that a
// client that reads slowly does not keep the listing's snapshot open.
// It returns the listing's error, if reading it failed.
//
// A listing that fails before its first row is reported as any command
// that failed is. One that fails after its first row was printed (after
// Verbose's and Table's "Status: Success", inside Json's or Xml's
// document) ends its output with an "Error Msg:" line, on a line of its
// own after the rows (the document is left unclosed), and the command
// fails with that error's code (docs/output-formats.md).
func writeStream(ctx context.Context, w io.Writer, f Format, r *Report) (listErr, writeErr error) {
	sw := newSpillWriter(w, spillWait)
	bw := bufio.NewWriterSize(sw, spillChunk)
	p := &streamPrinter{f: f, r: r, w: bw, eol: f.EOL}
	if p.eol == "" {
		p.eol = "\n"
	}
	batch := make([]Row, 0, streamBatch)
	for row, err := range r.Result.Stream(ctx) {
		if err != nil {
			listErr = err
			break
		}
		batch = append(batch, row)
		if len(batch) == streamBatch {
			p.rows(batch)
			batch = batch[:0]
			if p.err != nil {
				break // the client left: stop reading
			}
		}
	}
	if len(batch) > 0 && p.err == nil {
		p.rows(batch)
	}
	if listErr != nil && ctx.Err() != nil {
		listErr = stoppedListing(ctx, listErr)
	}
	if listErr != nil {
		r.Code, r.Msg = describeError(listErr)
		r.cause = listErr
	}
	p.end(listErr)
	if err := bw.Flush(); err != nil && p.err == nil {
		p.err = err
	}
	if err := sw.Close(); err != nil && p.err == nil {
		p.err = err
	}
	return listErr, p.err
}

// stoppedListing is the error of a listing whose reading ended with its
// context: the command's deadline (the context's cause, a cmdError of
// CodeTimeout) or the session's interruption, rather than the store's
// "context deadline exceeded" that err (the listing's own) wraps.
func stoppedListing(ctx context.Context, err error) error {
	var ce *cmdError
	if errors.As(context.Cause(ctx), &ce) {
		return fmt.Errorf("%w (%w)", ce, err)
	}
	return fmt.Errorf("%w (%w)", failf(CodeTimeout, "interrupted; the listing stopped: the rows above are only its first ones"), err)
}

// streamPrinter writes a streamed listing in one output mode: the head
// before the first row, the rows in batches, the end. Nothing is written
// before the first row, so that a listing that fails or is empty is
// printed as an ordinary report.
type streamPrinter struct {
	f     Format
	r     *Report // the command, its time; its Result is the stream
	w     *bufio.Writer
	eol   string
	b     bytes.Buffer
	keys  colKeyCache
	table tableStream
	// tableRows are the rows Table holds until it has tableBlock of them
	// (or the last) to size the columns by.
	tableRows []Row
	begun     bool
	err       error // the first error of the output
}

// line writes one line and its ending.
func (p *streamPrinter) line(l string) {
	p.b.WriteString(l)
	p.b.WriteString(p.eol)
}

// flush sends what the batch built to the output.
func (p *streamPrinter) flush() {
	if _, err := p.w.Write(p.b.Bytes()); err != nil && p.err == nil {
		p.err = err
	}
	p.b.Reset()
}

// rows writes a batch of rows, the head first if they are the first.
func (p *streamPrinter) rows(rows []Row) {
	machine := p.f.machine()
	if machine {
		rows = machineRows(rows)
	} else {
		rows = textRows(rows)
	}
	first := !p.begun
	if first {
		p.begun = true
		p.head()
	}
	switch p.f.Mode {
	case ModeSparse:
		for _, row := range rows {
			p.line(rowLine(row))
		}
	case ModeJSON:
		if machine {
			jsonV2Rows(&p.b, rows, first)
		} else {
			jsonRows(&p.b, rows, &p.keys, first)
		}
	case ModeXML:
		xmlRows(&p.b, rows, &p.keys)
	case ModeTable:
		// The rows are copied: a batch's slice is reused.
		p.tableRows = append(p.tableRows, rows...)
		for len(p.tableRows) >= tableBlock {
			p.drawTable(tableBlock)
		}
	default:
		for _, row := range rows {
			p.line("  " + rowLine(row))
		}
	}
	p.flush()
}

// drawTable draws the first n rows Table holds as one block of the table.
func (p *streamPrinter) drawTable(n int) {
	if n == 0 {
		return
	}
	lines, err := p.table.block(p.tableRows[:n])
	if err != nil {
		// tablewriter refused the table (it should not, with string
		// cells): the rows still reach the user, as Verbose's.
		for _, row := range p.tableRows[:n] {
			p.line("  " + rowLine(row))
		}
	}
	for _, l := range lines {
		p.line(l)
	}
	p.tableRows = append(p.tableRows[:0], p.tableRows[n:]...)
}

// head writes what comes before the first row.
func (p *streamPrinter) head() {
	switch p.f.Mode {
	case ModeSparse:
	case ModeJSON:
		if p.f.machine() {
			jsonV2Head(&p.b, p.r)
		} else {
			jsonHead(&p.b, p.r)
		}
		p.b.WriteString(`,"data":[`)
	case ModeXML:
		xmlHead(&p.b, p.r)
		p.b.WriteString("<data>")
	case ModeTable:
		for _, l := range headerLines(p.r) {
			p.line(l)
		}
	default:
		for _, l := range headerLines(p.r) {
			p.line(l)
		}
		p.line("Data:")
	}
}

// end writes what follows the last row, or, when no row was printed, the
// whole report: the empty list, or the failure (r's Code and Msg are
// listErr's).
func (p *streamPrinter) end(listErr error) {
	if !p.begun {
		rep := *p.r
		rep.Result = nil
		if listErr == nil {
			rep.Result = &Result{Rows: []Row{}}
		}
		if err := writeReport(p.w, p.f, &rep); err != nil && p.err == nil {
			p.err = err
		}
		return
	}
	if listErr == nil {
		switch p.f.Mode {
		case ModeJSON:
			p.b.WriteString("]}")
			p.b.WriteString(p.eol)
		case ModeXML:
			p.b.WriteString("</data></result>")
			p.b.WriteString(p.eol)
		case ModeTable:
			p.drawTable(len(p.tableRows))
			for _, l := range p.table.end() {
				p.line(l)
			}
		}
		p.flush()
		return
	}
	switch p.f.Mode {
	case ModeJSON, ModeXML:
		p.b.WriteString(p.eol) // the unclosed document's line ends
	case ModeTable:
		p.drawTable(len(p.tableRows))
		for _, l := range p.table.end() {
			p.line(l)
		}
	}
	p.line(errorLine(p.r))
	p.flush()
}
