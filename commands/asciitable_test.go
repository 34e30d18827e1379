package commands

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/olekukonko/tablewriter/pkg/twwidth"
)

// TestASCIITableIsTablewriters checks that the ASCII fast path draws the
// same lines as tablewriter, on chosen tables and on random ones (cells of
// printable ASCII with spaces at either end, empty cells, empty tables),
// and that it declines what it cannot draw.
func TestASCIITableIsTablewriters(t *testing.T) {
	cases := []struct {
		name   string
		header []string
		cells  [][]string
	}{
		{"listing", []string{"Name", "Id", "Status"}, [][]string{{"vm-1", "0004fb0000060000aaaa", "Running"}, {"", "x", ""}, {"  a  ", "b ", ""}}},
		{"attributes", []string{"Attribute", "Value"}, [][]string{{"Name", "x"}, {"Memory", "256"}}},
		{"no rows", []string{"Name", "Id"}, nil},
		{"empty cells", []string{"", ""}, [][]string{{"", ""}}},
		{"border characters", []string{"a|b", "-+-"}, [][]string{{`\`, "''"}, {"|", "+"}}},
		{"padded as a streamed block", []string{"Name  ", "Id"}, [][]string{{"vm-1  ", "1 "}, {"vm-100", "22"}}},
		{"one column", []string{"Name"}, [][]string{{"x"}, {"yy"}}},
	}
	rng := rand.New(rand.NewPCG(16, 6))
	cell := func() string {
		var b strings.Builder
		for range rng.IntN(12) {
			if rng.IntN(5) == 0 {
				b.WriteByte(' ')
			} else {
				b.WriteByte(byte(0x21 + rng.IntN(0x7e-0x21+1)))
			}
		}
		return b.String()
	}
	for i := range 200 {
		cols, rows := 1+rng.IntN(6), rng.IntN(8)
		c := struct {
			name   string
			header []string
			cells  [][]string
		}{name: "random " + string(rune('a'+i%26))}
		for range cols {
			c.header = append(c.header, cell())
		}
		for range rows {
			line := make([]string, cols)
			for k := range line {
				line[k] = cell()
			}
			c.cells = append(c.cells, line)
		}
		cases = append(cases, c)
	}
	for _, c := range cases {
		for _, line := range append([][]string{c.header}, c.cells...) {
			for _, s := range line {
				if got, want := cellWidth(s), twwidth.Width(s); got != want {
					t.Errorf("%s: cellWidth(%q) = %d, tablewriter counts %d", c.name, s, got, want)
				}
			}
		}
		got, ok := asciiTable(c.header, c.cells)
		if !ok {
			t.Errorf("%s: declined %q %q", c.name, c.header, c.cells)
			continue
		}
		want, err := tablewriterTable(c.header, c.cells)
		if err != nil {
			t.Fatalf("%s: tablewriter: %v", c.name, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: %q %q\ngot  %q\nwant %q", c.name, c.header, c.cells, got, want)
		}
	}

	for _, c := range []struct {
		name   string
		header []string
		cells  [][]string
	}{
		{"wide characters", []string{"Name"}, [][]string{{"ＶＭ"}}},
		{"accents", []string{"Name"}, [][]string{{"café"}}},
		{"a newline", []string{"Name"}, [][]string{{"a\nb"}}},
		{"a short row", []string{"Name", "Id"}, [][]string{{"a"}}},
		{"no columns", nil, nil},
	} {
		if lines, ok := asciiTable(c.header, c.cells); ok {
			t.Errorf("%s: drawn as %q, want it left to tablewriter", c.name, lines)
		}
	}
}

// BenchmarkRenderTable draws the table of `list Vm` over 500 VMs (figure
// 9's listing) with renderTable and with tablewriter alone.
func BenchmarkRenderTable(b *testing.B) {
	header := []string{"Name", "Id", "Status", "Server", "Pool", "Repository", "Memory", "CpuCount"}
	cells := make([][]string, 500)
	for i := range cells {
		cells[i] = []string{"sess-" + strings.Repeat("1", 1+i%3), "0004fb00000600001234567890abcdef", "Running", "sess01",
			"sess-pool", "sess-repo", "256", "1"}
	}
	for _, f := range []struct {
		name string
		draw func([]string, [][]string) ([]string, error)
	}{{"renderTable", renderTable}, {"tablewriter", tablewriterTable}} {
		b.Run(f.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.draw(header, cells); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
