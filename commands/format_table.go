package commands

import (
	"bytes"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/pkg/twwidth"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
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

// renderTable draws one table with tablewriter and returns its lines.
// Headers are kept as given (no auto upper-casing), left-aligned; cells are
// not trimmed, wrapped or merged; borders are plain ASCII, with no colour.
func renderTable(header []string, cells [][]string) ([]string, error) {
	if lines, ok := asciiTable(header, cells); ok {
		return lines, nil
	}
	return tablewriterTable(header, cells)
}

// tablewriterTable is renderTable drawn by tablewriter, whatever the cells.
func tablewriterTable(header []string, cells [][]string) ([]string, error) {
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

// asciiTable draws the table renderTable draws with tablewriter, the same
// bytes, when every cell and header is printable ASCII (one column per
// byte) and every row has the header's columns: the common case, 10 to 20
// times cheaper than tablewriter, whose width cache and cell contexts were
// most of the CPU of 200 sessions listing 500 VMs (docs/performance.md,
// figure 9b). ok is false for anything else, which tablewriter draws
// (TestASCIITableIsTablewriters compares the two).
func asciiTable(header []string, cells [][]string) (lines []string, ok bool) {
	widths := make([]int, len(header))
	measure := func(line []string) bool {
		if len(line) != len(header) {
			return false
		}
		for i, c := range line {
			for j := 0; j < len(c); j++ {
				if c[j] < 0x20 || c[j] > 0x7e {
					return false
				}
			}
			widths[i] = max(widths[i], len(c))
		}
		return true
	}
	if len(header) == 0 || !measure(header) {
		return nil, false
	}
	for _, line := range cells {
		if !measure(line) {
			return nil, false
		}
	}
	var b strings.Builder
	b.WriteByte('+')
	for _, w := range widths {
		repeatByte(&b, '-', w+2)
		b.WriteByte('+')
	}
	border := b.String()
	row := func(line []string) string {
		b.Reset()
		b.Grow(len(border))
		for i, c := range line {
			b.WriteString("| ")
			b.WriteString(c)
			repeatByte(&b, ' ', widths[i]-len(c)+1)
		}
		b.WriteByte('|')
		return b.String()
	}
	lines = make([]string, 0, len(cells)+4)
	lines = append(lines, border, row(header), border)
	for _, line := range cells {
		lines = append(lines, row(line))
	}
	if len(cells) > 0 {
		lines = append(lines, border)
	}
	return lines, true
}

// cellWidth is the columns s takes on a terminal, as tablewriter counts
// them: its length when s is printable ASCII, without asking tablewriter's
// width cache (shared by every session, behind one mutex).
func cellWidth(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return twwidth.Width(s)
		}
	}
	return len(s)
}

// repeatByte writes n copies of c.
func repeatByte(b *strings.Builder, c byte, n int) {
	for range n {
		b.WriteByte(c)
	}
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

// block returns the lines that draw rows (in the text form).
func (t *tableStream) block(rows []Row) ([]string, error) {
	header, cells, keys := rowTableAfter(t.keys, rows)
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
	if t.bottom != "" && slices.Equal(widths, t.widths) {
		// The rows alone, as tablewriter draws a row of cells padded to
		// their column's width: drawing them without it is 20 times
		// faster (TestStreamPrintsAsAReport checks they are the same).
		out := make([]string, len(cells))
		for i, line := range cells {
			out[i] = "| " + strings.Join(line, " | ") + " |"
		}
		return out, nil
	}
	lines, err := renderTable(header, cells)
	if err != nil {
		return nil, err
	}
	var out []string
	if t.bottom != "" {
		out = append(out, t.bottom)
	}
	out = append(out, lines[:len(lines)-1]...)
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
