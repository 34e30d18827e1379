package commands

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// drawTable draws the tables it draws itself (drawPlain) byte for byte as
// tablewriter does with renderTable's options: cells of ASCII, wide
// (East Asian) and combining characters, the replacement character,
// emoji, empty cells and spaces at either end, in one to six columns; and
// it leaves to tablewriter the tables it does not draw.
func TestDrawTableAsTablewriter(t *testing.T) {
	pieces := []string{"web1", "0004fb00000600001", "Running", "", " ", "  x", "x  ", "-", "|", "+", "名前", "サーバー",
		"e\u0301", "\ufffd", "😀", "ab😀cd", "Ölçü", "ß", "\u200b", "a\u00a0b", "xen01.example.com", "1024"}
	rnd := rand.New(rand.NewPCG(16, 6))
	cell := func() string {
		var b strings.Builder
		for range rnd.IntN(3) {
			b.WriteString(pieces[rnd.IntN(len(pieces))])
		}
		return b.String()
	}
	tables := []struct {
		header []string
		cells  [][]string
	}{
		{[]string{"Name", "Id"}, [][]string{{"web1", "0004fb00000600001"}}},
		{[]string{"Attribute", "Value"}, [][]string{{"Name", ""}, {"名前", "サーバー"}}},
		{[]string{"A"}, [][]string{{""}, {"x"}}},
	}
	for range 300 {
		cols, rows := 1+rnd.IntN(6), 1+rnd.IntN(8)
		header := make([]string, cols)
		for i := range header {
			header[i] = "H" + cell()
		}
		cells := make([][]string, rows)
		for r := range cells {
			cells[r] = make([]string, cols)
			for c := range cells[r] {
				cells[r][c] = cell()
			}
		}
		tables = append(tables, struct {
			header []string
			cells  [][]string
		}{header, cells})
	}
	plain := 0
	for i, tc := range tables {
		want, err := drawTablewriter(tc.header, tc.cells)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := drawPlain(tc.header, tc.cells)
		if !ok {
			continue
		}
		plain++
		if !slices.Equal(got, want) {
			t.Fatalf("table %d (%q, %q) drawn as\n%s\ntablewriter draws\n%s", i, tc.header, tc.cells,
				strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	if plain < len(tables)*9/10 {
		t.Fatalf("only %d of %d tables were drawn without tablewriter", plain, len(tables))
	}

	// Left to tablewriter: no rows, an empty column, rows of another
	// length than the header.
	for _, tc := range []struct {
		header []string
		cells  [][]string
	}{
		{[]string{"Name"}, nil},
		{[]string{"Name", ""}, [][]string{{"web1", ""}}},
		{[]string{"Name"}, [][]string{{"web1", "extra"}}},
	} {
		if _, ok := drawPlain(tc.header, tc.cells); ok {
			t.Errorf("drawPlain drew %q, %q", tc.header, tc.cells)
		}
		want, _ := drawTablewriter(tc.header, tc.cells)
		if got, err := drawTable(tc.header, tc.cells); err != nil || !slices.Equal(got, want) {
			t.Errorf("drawTable(%q, %q) = %q, %v; want tablewriter's %q", tc.header, tc.cells, got, err, want)
		}
	}
}
