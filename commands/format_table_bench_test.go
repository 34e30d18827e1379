package commands

import (
	"fmt"
	"testing"
)

// benchRows are n rows like those of list Vm.
func benchRows(n int) []Row {
	rows := make([]Row, n)
	for i := range rows {
		rows[i] = Row{Name: fmt.Sprintf("sess-%03d", i), ID: fmt.Sprintf("0004fb0000060000%016x", i),
			Cols: []Prop{{Key: "status", Value: "Running"}, {Key: "server", Value: fmt.Sprintf("xen%02d.example.com", i%10)},
				{Key: "memory", Value: "1024"}}}
	}
	return rows
}

// BenchmarkTableBlock is the Table output of a listing of 500 VMs: one
// block of a streamed listing: tablewriter draws its frame, header and
// first row, the block the other rows (every row by tablewriter before
// session 11: 24-30 ms, 73,000 allocations).
func BenchmarkTableBlock(b *testing.B) {
	rows := benchRows(500)
	b.ReportAllocs()
	for b.Loop() {
		var t tableStream
		if _, err := t.block(rows); err != nil {
			b.Fatal(err)
		}
	}
}
