package commands

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// A streamed listing's table (tablewriter draws its frame, header and
// first row; tableStream.block the other rows) is byte for byte the table
// tablewriter draws of every row (renderTable): for cells of ASCII, wide
// (East Asian) and combining characters, control characters, emoji, empty
// cells and spaces at either end, keys that some rows lack, in one block.
func TestStreamTableAsTablewriter(t *testing.T) {
	pieces := []string{"web1", "0004fb00000600001", "Running", "", " ", "  x", "x  ", "-", "|", "+", "名前", "サーバー",
		"e\u0301", "\ufffd", "\x07", "\t", "😀", "ab😀cd", "Ölçü", "ß", "\u200b", "a\u00a0b", "xen01.example.com", "1024"}
	keys := []string{"status", "server", "memory", "名前", "tag"}
	rnd := rand.New(rand.NewPCG(16, 6))
	cell := func() string {
		var b strings.Builder
		for range rnd.IntN(3) {
			b.WriteString(pieces[rnd.IntN(len(pieces))])
		}
		return b.String()
	}
	for i := range 300 {
		rows := make([]Row, 1+rnd.IntN(12))
		for r := range rows {
			rows[r] = Row{Name: cell(), ID: fmt.Sprintf("0004fb%06d", rnd.IntN(1000))}
			for _, k := range keys {
				if rnd.IntN(3) > 0 {
					rows[r].Cols = append(rows[r].Cols, Prop{Key: k, Value: cell()})
				}
			}
		}
		header, cells := rowTable(rows)
		want, err := renderTable(header, cells)
		if err != nil {
			t.Fatal(err)
		}
		var s tableStream
		got, err := s.block(rows)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, s.end()...)
		if !slices.Equal(got, want) {
			t.Fatalf("table %d of %q drawn as\n%s\ntablewriter draws\n%s", i, rows, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}
