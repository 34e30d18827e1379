package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// row is one line of the results table: a figure beside its baseline.
type row struct {
	Fig      string // "1", "3a", ...
	Measure  string
	Value    string
	Baseline string // "missing: why" when it could not be measured
	Ratio    string
	Target   string
	Met      string // yes, no, or "-" when it cannot be judged
}

// results collects rows and notes as the figures run.
type results struct {
	mu    sync.Mutex // guards the fields below
	rows  []row
	notes []string
}

func (r *results) add(x row) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if x.Baseline == "" {
		x.Baseline = "-"
	}
	if x.Ratio == "" {
		x.Ratio = "-"
	}
	if x.Target == "" {
		x.Target = "-"
	}
	if x.Met == "" {
		x.Met = "-"
	}
	r.rows = append(r.rows, x)
	fmt.Printf("  %-3s %-52s %-22s baseline %-22s ratio %-8s target %-22s met %s\n",
		x.Fig, x.Measure, x.Value, x.Baseline, x.Ratio, x.Target, x.Met)
}

// fail records a figure that could not be measured at all.
func (r *results) fail(fig, measure string, err error) {
	r.add(row{Fig: fig, Measure: measure, Value: "failed: " + oneLine(err.Error()), Met: "-"})
}

func (r *results) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := fmt.Sprintf(format, args...)
	r.notes = append(r.notes, s)
	fmt.Println("  note:", s)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 240 {
		s = s[:240] + "..."
	}
	return s
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

func ratio(v, base float64) string {
	if base <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f x", v/base)
}

// markdown writes the table and the notes.
func (r *results) markdown(w io.Writer, machine string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(w, "Machine: %s\n\n", machine)
	fmt.Fprintln(w, "| # | figure | value (median) | baseline (median) | ratio | target | met |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	esc := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	for _, x := range r.rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", esc(x.Fig), esc(x.Measure), esc(x.Value),
			esc(x.Baseline), esc(x.Ratio), esc(x.Target), esc(x.Met))
	}
	if len(r.notes) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Notes:")
		fmt.Fprintln(w)
		for _, n := range r.notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
}
