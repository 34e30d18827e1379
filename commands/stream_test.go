package commands

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"xenmanager/backend"
)

// vmRows yields n rows of list Vm, made as they are asked for (the names
// grow wider at row wideAt, 0 for never), then fail if it is not nil. done
// is closed when the iteration has ended.
func vmRows(n, wideAt int, fail error, done chan struct{}) RowStream {
	return func(ctx context.Context) iter.Seq2[Row, error] {
		return func(yield func(Row, error) bool) {
			if done != nil {
				defer close(done)
			}
			for i := range n {
				name := fmt.Sprintf("vm-%06d", i)
				if wideAt > 0 && i >= wideAt {
					name += "-with-a-longer-name"
				}
				row := vmRow(backend.VMSummary{ID: fmt.Sprintf("0004fb0000060000%016x", i), Name: name, Status: "Running",
					Server: backend.NamedRef{ID: "s1", Name: "ovs1"}, Repository: backend.NamedRef{ID: "r1", Name: "repo1"},
					MemoryMiB: 1024, CPUCount: 2})
				if !yield(row, nil) {
					return
				}
			}
			if fail != nil {
				yield(Row{}, fail)
			}
		}
	}
}

var allFormats = []Format{{Mode: ModeVerbose}, {Mode: ModeSparse}, {Mode: ModeTable}, {Mode: ModeXML}, {Mode: ModeJSON},
	{Mode: ModeJSON, JSONVersion: 2}, {Mode: ModeSparse, EOL: "\r\n"}, {Mode: ModeJSON, EOL: "\r"}}

func formatName(f Format) string { return fmt.Sprintf("%s-v%d-%q", f.Mode, f.JSONVersion, f.EOL) }

// collected is the report of a stream read whole into Rows, as
// writeReport prints it.
func collected(t *testing.T, s RowStream) *Report {
	t.Helper()
	rows := []Row{}
	for r, err := range s(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	return &Report{Command: "list Vm", Time: goldenTime, Result: &Result{Rows: rows}}
}

// TestStreamPrintsAsAReport: a streamed listing prints byte for byte what
// the same rows printed whole do, in every mode, empty, within one batch,
// over several batches and over one Table block.
func TestStreamPrintsAsAReport(t *testing.T) {
	for _, c := range []struct{ n, wideAt int }{{0, 0}, {1, 0}, {3, 0}, {streamBatch + 1, 0}, {tableBlock, 0},
		{tableBlock, tableBlock - 10}, // the last rows of the first block size the columns
		{2*tableBlock + 7, 0}} {       // Table continues its table past the first block
		n, wideAt := c.n, c.wideAt
		for _, f := range allFormats {
			t.Run(fmt.Sprintf("%d-%d-%s", n, wideAt, formatName(f)), func(t *testing.T) {
				var want, got bytes.Buffer
				if err := writeReport(&want, f, collected(t, vmRows(n, wideAt, nil, nil))); err != nil {
					t.Fatal(err)
				}
				rep := &Report{Command: "list Vm", Time: goldenTime, Result: &Result{Stream: vmRows(n, wideAt, nil, nil)}}
				if lerr, werr := writeStream(context.Background(), &got, f, rep); lerr != nil || werr != nil {
					t.Fatal(lerr, werr)
				}
				if got.String() != want.String() {
					t.Fatalf("streamed:\n%.2000s\nwhole:\n%.2000s", got.String(), want.String())
				}
			})
		}
	}
}

// TestStreamTableBlocks: Table past one block continues the table while
// the columns keep their widths (one header, one table), and starts a
// new table, with its header, when a later row needs a wider column.
func TestStreamTableBlocks(t *testing.T) {
	for _, c := range []struct {
		name           string
		n, wideAt      int
		headers, lines int
	}{
		{"same widths", 3*tableBlock + 5, 0, 1, 3*tableBlock + 5 + 3 + 4},
		{"wider names later", 2*tableBlock + 5, tableBlock + 10, 2, 2*tableBlock + 5 + 3 + 4 + 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			rep := &Report{Command: "list Vm", Time: goldenTime, Result: &Result{Stream: vmRows(c.n, c.wideAt, nil, nil)}}
			if lerr, werr := writeStream(context.Background(), &out, Format{Mode: ModeTable}, rep); lerr != nil || werr != nil {
				t.Fatal(lerr, werr)
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if h := strings.Count(out.String(), "| Name "); h != c.headers || len(lines) != c.lines {
				t.Fatalf("%d headers and %d lines, want %d and %d", h, len(lines), c.headers, c.lines)
			}
			rows := 0
			width := 0
			for i, l := range lines[3:] {
				if strings.HasPrefix(l, "| vm-") {
					rows++
				}
				if strings.HasPrefix(l, "+") || strings.HasPrefix(l, "| ") {
					if i > 0 && strings.HasPrefix(lines[3+i-1], "+") == false && len(l) != width && strings.HasPrefix(l, "| vm-") {
						t.Fatalf("line %d is %d wide inside a table %d wide: %q", 3+i, len(l), width, l)
					}
					width = len(l)
				}
			}
			if rows != c.n {
				t.Fatalf("%d rows drawn, want %d", rows, c.n)
			}
		})
	}
}

// TestStreamFailsAfterSuccess: a listing that fails after its first row
// ends the output with an Error Msg line after the rows, in every mode,
// and the report fails with the error's code; one that fails before any
// row is an ordinary failure.
func TestStreamFailsAfterSuccess(t *testing.T) {
	fail := &backend.Error{Kind: backend.KindInternal, Msg: "read VMs"}
	for _, n := range []int{0, 2, streamBatch + 3} {
		for _, f := range allFormats {
			t.Run(fmt.Sprintf("%d-%s", n, formatName(f)), func(t *testing.T) {
				var out bytes.Buffer
				rep := &Report{Command: "list Vm", Time: goldenTime, Result: &Result{Stream: vmRows(n, 0, fail, nil)}}
				lerr, werr := writeStream(context.Background(), &out, f, rep)
				if !errors.Is(lerr, fail) || werr != nil || !rep.Failed() || rep.Code != CodeInternal {
					t.Fatalf("listing error %v, output error %v, code %q", lerr, werr, rep.Code)
				}
				eol := f.EOL
				if eol == "" {
					eol = "\n"
				}
				lines := strings.Split(strings.TrimSuffix(out.String(), eol), eol)
				last := lines[len(lines)-1]
				if n == 0 {
					var want bytes.Buffer
					writeReport(&want, f, &Report{Command: "list Vm", Time: goldenTime, Code: rep.Code, Msg: rep.Msg})
					if out.String() != want.String() {
						t.Fatalf("a failure before any row printed\n%s\nwant\n%s", out.String(), want.String())
					}
					return
				}
				if !strings.HasPrefix(last, "Error Msg: "+string(CodeInternal)+": ") {
					t.Fatalf("last line %q, want the Error Msg line", last)
				}
				if got := strings.Count(out.String(), "vm-"); got != n {
					t.Fatalf("%d rows before the error, want %d", got, n)
				}
			})
		}
	}
}

// blockedWriter is a client that reads nothing until released, then
// everything; it counts what it got.
type blockedWriter struct {
	release chan struct{}
	once    sync.Once
	n       atomic.Int64
	buf     bytes.Buffer // what it got, when keep
	keep    bool
}

func (w *blockedWriter) Write(p []byte) (int, error) {
	<-w.release
	w.n.Add(int64(len(p)))
	if w.keep {
		w.buf.Write(p)
	}
	return len(p), nil
}

// TestStreamSlowClientDoesNotHoldTheListing: while the client reads
// nothing, the listing is still read to its end (its snapshot ends), the
// rest spilled to a file; the client then gets every row, in order.
func TestStreamSlowClientDoesNotHoldTheListing(t *testing.T) {
	const n = 30000
	for _, f := range []Format{{Mode: ModeSparse}, {Mode: ModeJSON, JSONVersion: 2}} {
		t.Run(formatName(f), func(t *testing.T) {
			done := make(chan struct{})
			w := &blockedWriter{release: make(chan struct{}), keep: true}
			rep := &Report{Command: "list Vm", Time: goldenTime, Result: &Result{Stream: vmRows(n, 0, nil, done)}}
			finished := make(chan error, 1)
			go func() {
				lerr, werr := writeStream(context.Background(), w, f, rep)
				finished <- errors.Join(lerr, werr)
			}()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("the listing was not read to its end while the client read nothing")
			}
			close(w.release)
			if err := <-finished; err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			writeReport(&want, f, collected(t, vmRows(n, 0, nil, nil)))
			if w.buf.String() != want.String() {
				t.Fatalf("the client got %d bytes, want the %d of the whole listing, the same", w.buf.Len(), want.Len())
			}
		})
	}
}

// TestStreamMemoryIsFlat: listing many rows to a client that reads
// nothing until the listing has been read grows the heap by a bounded
// amount, not by the rows: they go to the spill file. (A correctness
// property: the bound is far above the queue, far below the rows.)
func TestStreamMemoryIsFlat(t *testing.T) {
	for _, c := range []struct {
		f Format
		n int
	}{
		{Format{Mode: ModeJSON}, 200000}, // about 30 MB of Json, far more as rows held at once
		{Format{Mode: ModeTable}, 50000},
	} {
		f, n := c.f, c.n
		t.Run(formatName(f), func(t *testing.T) {
			done := make(chan struct{})
			w := &blockedWriter{release: make(chan struct{})}
			rep := &Report{Command: "list Vm", Time: goldenTime, Result: &Result{Stream: vmRows(n, 0, nil, done)}}
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			peakHeap := sampleHeapPeak()
			finished := make(chan error, 1)
			go func() {
				lerr, werr := writeStream(context.Background(), w, f, rep)
				finished <- errors.Join(lerr, werr)
			}()
			<-done
			peak := peakHeap()
			close(w.release)
			if err := <-finished; err != nil {
				t.Fatal(err)
			}
			growth := int64(peak) - int64(before.HeapInuse)
			if got := w.n.Load(); got < int64(n)*50 {
				t.Fatalf("the client got %d bytes for %d rows", got, n)
			}
			const bound = 16 << 20
			if growth > bound {
				t.Fatalf("the heap grew by %d MB listing %d rows, want under %d MB", growth>>20, n, bound>>20)
			}
			t.Logf("heap growth while listing %d rows: %.1f MB", n, float64(growth)/(1<<20))
		})
	}
}

// sampleHeapPeak samples the heap in use every 2 ms until the returned
// func is called, which returns the most it saw.
func sampleHeapPeak() (peak func() uint64) {
	var most atomic.Uint64
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > most.Load() {
				most.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-sampled
		return most.Load()
	}
}

var _ io.Writer = (*blockedWriter)(nil)

// TestSessionStreamFailureFailsTheCommand: in a session, a listing that
// fails after its first row fails the command (the outcome a one-command
// session exits with) and ends the output with the Error Msg line after
// Status: Success; stopOnError=Yes then ends the session.
func TestSessionStreamFailureFailsTheCommand(t *testing.T) {
	fail := &backend.Error{Kind: backend.KindInternal, Msg: "read VMs"}
	reg := newRegistry()
	reg.add(&VerbInfo{Name: "list", Specs: []*Spec{
		{Type: "Vm", Run: func(context.Context, *Exec) (*Result, error) { return &Result{Stream: vmRows(5, 0, fail, nil)}, nil }},
		{Type: "Server", Run: func(context.Context, *Exec) (*Result, error) { return &Result{Stream: vmRows(5, 0, nil, nil)}, nil }},
	}})
	var out bytes.Buffer
	s := NewSession(context.Background(), reg, nil, backend.Actor{User: "admin", Role: backend.RoleAdministrator}, &out, Options{})
	if o := s.RunLine(context.Background(), "list Server"); o != OK {
		t.Fatalf("a listing that succeeded: outcome %d\n%s", o, out.String())
	}
	out.Reset()
	s.settings.StopOnError = true
	if o := s.RunLine(context.Background(), "list Vm; list Server"); o != Failed {
		t.Fatalf("a listing that failed midway: outcome %d, want %d (exit status 1)\n%s", o, Failed, out.String())
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if !s.Exited() || !strings.Contains(out.String(), "Status: Success") || strings.Count(out.String(), "vm-") != 5 ||
		!strings.HasPrefix(lines[len(lines)-1], "Error Msg: XM_0500E: ") {
		t.Fatalf("exited %v; output:\n%s", s.Exited(), out.String())
	}
}
