package commands

import (
	"bytes"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/olekukonko/tablewriter"
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
	var keys []string
	index := map[string]int{}
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
	return header, cells
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
