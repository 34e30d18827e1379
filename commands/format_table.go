package commands

import (
	"bytes"
	"context"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/pkg/twwidth"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
	"golang.org/x/sync/semaphore"
)

// tableLines prints r in the Table mode: Verbose's Command, Status and Time
// lines, then the rows (columns Name, Id and the Cols) or the attributes
// (columns Attribute, Value) as ASCII tables, then Error Msg on failure.
// Text (help, top's snapshot, a vm.cfg) is printed as in Verbose: a table
// of one column would only box lines that are already laid out.
func tableLines(r *Report) ([]string, error) {
	if len(r.text()) > 0 {
		return verboseLines(r), nil
	}
	out := headerLines(r)
	if res := r.Result; res != nil {
		if len(res.Rows) > 0 {
			header, cells := rowTable(res.Rows)
			t, err := renderTable(header, cells)
			if err != nil {
				return nil, err
			}
			out = append(out, t...)
		}
		if len(res.Props) > 0 {
			cells := make([][]string, len(res.Props))
			for i, p := range res.Props {
				cells[i] = []string{tableCell(p.Key), tableCell(p.Value)}
			}
			t, err := renderTable([]string{"Attribute", "Value"}, cells)
			if err != nil {
				return nil, err
			}
			out = append(out, t...)
		}
	}
	if r.Failed() {
		out = append(out, errorLine(r))
	}
	return out, nil
}

// rowTable lays rows out as columns Name, Id, then every Col key in the
// order of the first row, followed by keys that only later rows have, in
// the order they first appear. A row without a key has an empty cell. The
// header of a Col is its key with an upper-case first letter.
func rowTable(rows []Row) (header []string, cells [][]string) {
	header, cells, _ = rowTableAfter(nil, rows)
	return header, cells
}

// rowTableAfter is rowTable for rows that follow rows whose Col keys
// were keys (a streamed listing's later block): those columns come first,
// in their order. It returns the keys of every column.
func rowTableAfter(known []string, rows []Row) (header []string, cells [][]string, keys []string) {
	keys = slices.Clone(known)
	index := map[string]int{}
	for i, k := range keys {
		index[k] = i
	}
	for _, row := range rows {
		for _, c := range row.Cols {
			if _, ok := index[c.Key]; !ok {
				index[c.Key] = len(keys)
				keys = append(keys, c.Key)
			}
		}
	}
	header = []string{"Name", "Id"}
	for _, k := range keys {
		header = append(header, tableCell(upperFirst(k)))
	}
	cells = make([][]string, len(rows))
	for i, row := range rows {
		line := make([]string, 2+len(keys))
		line[0], line[1] = tableCell(row.Name), tableCell(row.ID)
		set := make([]bool, len(keys))
		for _, c := range row.Cols {
			if k := index[c.Key]; !set[k] { // a repeated key keeps its first value
				line[2+k], set[k] = tableCell(c.Value), true
			}
		}
		cells[i] = line
	}
	return header, cells, keys
}

// tableCell is s as a table cell: terminal-safe, tabs as spaces (a tab would
// break the column's alignment).
func tableCell(s string) string { return strings.ReplaceAll(termSafe(s), "\t", " ") }

func upperFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

// DefaultTableDraws is how many tables are drawn at once when
// SetTableDraws was not called: one fewer than the processors Go runs on,
// at least one. Drawing is the CPU-bound part of a listing in Table mode
// (tens of milliseconds for 500 rows, with no wait inside); many sessions
// listing at once would take every processor, and the jobs in flight (a
// batch's store writes and agent calls, each a short turn on a processor)
// would queue behind them at every step. In slots the listings queue for a
// processor and the jobs keep one.
func DefaultTableDraws() int { return max(1, runtime.GOMAXPROCS(0)-1) }

// tableDraws holds the slots of table drawing (a unit per table being
// drawn); nil until SetTableDraws or the first drawSlot, then
// DefaultTableDraws slots.
var tableDraws atomic.Pointer[semaphore.Weighted]

// SetTableDraws bounds the tables drawn at once to n (a process limit,
// xenmanager serve --table-draws); n < 1 takes DefaultTableDraws. Tables
// being drawn keep the slots they took.
func SetTableDraws(n int) {
	if n < 1 {
		n = DefaultTableDraws()
	}
	tableDraws.Store(semaphore.NewWeighted(int64(n)))
}

// drawSlot waits for a table-drawing slot and returns its release. The
// wait is bounded: a holder only draws, without waiting on anything.
func drawSlot() (release func()) {
	sem := tableDraws.Load()
	if sem == nil {
		tableDraws.CompareAndSwap(nil, semaphore.NewWeighted(int64(DefaultTableDraws())))
		sem = tableDraws.Load()
	}
	sem.Acquire(context.Background(), 1) // fails only with its context, which never ends
	return func() { sem.Release(1) }
}

// renderTable draws one table with tablewriter and returns its lines, in
// a drawing slot (SetTableDraws). Headers are kept as given (no auto
// upper-casing), left-aligned; cells are not trimmed, wrapped or merged;
// borders are plain ASCII, with no colour.
func renderTable(header []string, cells [][]string) ([]string, error) {
	defer drawSlot()()
	return drawTable(header, cells)
}

// cellWidth is twwidth.Width, counted at once for printable ASCII (one
// column a byte, as twwidth counts it) without twwidth's cache and its
// lock, which every session's table shares.
func cellWidth(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return twwidth.Width(s)
		}
	}
	return len(s)
}

// drawTable is renderTable for a caller that holds a drawing slot.
func drawTable(header []string, cells [][]string) ([]string, error) {
	var buf bytes.Buffer
	t := tablewriter.NewTable(&buf,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{Symbols: tw.NewSymbols(tw.StyleASCII)})),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithHeaderAlignment(tw.AlignLeft),
		tablewriter.WithRowAlignment(tw.AlignLeft),
		tablewriter.WithTrimSpace(tw.Off),
		tablewriter.WithHeaderAutoWrap(tw.WrapNone),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
	)
	t.Header(header)
	if err := t.Bulk(cells); err != nil {
		return nil, err
	}
	if err := t.Render(); err != nil {
		return nil, err
	}
	s := strings.TrimSuffix(buf.String(), "\n")
	return strings.Split(s, "\n"), nil
}

// tableBlock is how many rows of a streamed listing Table holds to size
// its columns: a few screenfuls. A listing of at most tableBlock rows is
// one table, as if it had not been streamed.
const tableBlock = 1000

// tableStream draws a streamed listing as Table: one table, drawn a block
// of tableBlock rows at a time. Each block's columns are as wide as the
// widest cell so far; when a block needs no wider column and no new one,
// it continues the table (the rows alone); when it does, the table is
// closed and a new one, with its header, starts with the wider columns.
// A listing of 100,000 VMs whose names fit the widths of the first 1,000
// rows is thus one table, held 1,000 rows at a time.
type tableStream struct {
	keys   []string // the Col keys of the columns so far
	widths []int    // the display width of each column so far
	bottom string   // the bottom border of the table drawn so far, held back while a block may continue it
}

// block returns the lines that draw rows (in the text form); it measures
// and draws in a drawing slot (SetTableDraws).
func (t *tableStream) block(rows []Row) ([]string, error) {
	header, cells, keys := rowTableAfter(t.keys, rows)
	defer drawSlot()()
	widths := make([]int, len(header))
	copy(widths, t.widths)
	for _, line := range append([][]string{header}, cells...) {
		for i, c := range line {
			widths[i] = max(widths[i], cellWidth(c))
		}
	}
	pad := func(line []string) {
		for i, c := range line {
			if w := cellWidth(c); w < widths[i] {
				line[i] = c + strings.Repeat(" ", widths[i]-w)
			}
		}
	}
	pad(header)
	for _, line := range cells {
		pad(line)
	}
	// The rows that continue a table are drawn as tablewriter draws a row
	// of cells padded to their column's width, without it: 20 times
	// faster (TestStreamPrintsAsAReport checks they are the same).
	rowLines := func(cells [][]string) []string {
		out := make([]string, len(cells))
		for i, line := range cells {
			out[i] = "| " + strings.Join(line, " | ") + " |"
		}
		return out
	}
	if t.bottom != "" && slices.Equal(widths, t.widths) {
		return rowLines(cells), nil
	}
	// A new table: tablewriter draws its top border, header and first
	// row (every cell padded, so the first row sets the widths), and the
	// others continue it. Drawing every row with tablewriter cost 12-30
	// ms of CPU and 73,000 allocations for 500 rows, more than a batch's
	// jobs took beside 200 sessions (docs/performance.md, figure 9b,
	// session 11).
	var first [][]string
	if len(cells) > 0 {
		first = cells[:1]
	}
	lines, err := drawTable(header, first)
	if err != nil {
		return nil, err
	}
	var out []string
	if t.bottom != "" {
		out = append(out, t.bottom)
	}
	out = append(out, lines[:len(lines)-1]...)
	if len(cells) > 1 {
		out = append(out, rowLines(cells[1:])...)
	}
	t.keys, t.widths, t.bottom = keys, widths, lines[len(lines)-1]
	return out, nil
}

// end returns the last line of the table: its bottom border.
func (t *tableStream) end() []string {
	if t.bottom == "" {
		return nil
	}
	return []string{t.bottom}
}
