package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the driver the manager uses, for the baseline query
)

// listVMs is figure 3 at one inventory size: `set outputMode=M; list Vm`
// over exec in Sparse and Json, its time and the manager's memory. The
// list's own time is the exec's wall time minus that of `set outputMode=M`
// alone (the same connection, login and session without the listing).
// Baseline: the same rows read with `SELECT id, name FROM vms` through
// database/sql and the same SQLite driver, in the harness, from the same
// file. ems are the managers measured, the SQLite one (on db) first; those
// on PostgreSQL are set beside it (issue 15), all in turns.
func (b *bench) listVMs(ctx context.Context, ems []*engineManager, db string, n, reps int) {
	size := fmt.Sprintf("%d", n)
	if n >= 1000 {
		size = fmt.Sprintf("%d,%03d", n/1000, n%1000)
	}
	fmt.Printf("\n== figure 3: list Vm with %s VMs\n", size)
	if !b.needSSH("3", "list Vm, "+size+" VMs") {
		return
	}
	base, baseErr := selectBaseline(ctx, db, n, reps)
	limit := 100.0
	limitText := "< 100 ms"
	if n > 10000 {
		limit, limitText = 1000, "< 1 s"
	}
	rssBefore, _ := statusKB(ems[0].pid, "VmRSS")
	peakRSS := make([]int64, len(ems))
	for _, mode := range []string{"Sparse", "Json"} {
		run := func(m *engineManager, cmdline string, wantRows bool) (time.Duration, int64, error) {
			var out bytes.Buffer
			cmd := b.ssh.command(m.port, m.alias, "admin", nil, cmdline)
			cmd.Stdout, cmd.Stderr = &out, &out
			poll := pollRSS(m.pid, 5*time.Millisecond)
			d, err := runTimed(ctx, cmd)
			peak := poll.Stop()
			if err != nil {
				return 0, 0, exitErr(err, out.Bytes())
			}
			if wantRows {
				if got := strings.Count(out.String(), "vm-"); got < n {
					return 0, 0, fmt.Errorf("list Vm printed %d VM names, want %d: %s", got, n, oneLine(out.String()[:min(out.Len(), 300)]))
				}
			}
			return d, peak, nil
		}
		list := make([][]time.Duration, len(ems))
		set := make([][]time.Duration, len(ems))
		modePeak := make([]int64, len(ems))
		var sides []*side
		for i, m := range ems {
			sides = append(sides, &side{name: m.label, run: func(round int) (time.Duration, error) {
				d, peak, err := run(m, "set outputMode="+mode+"; list Vm", true)
				if err != nil {
					return 0, err
				}
				d0, _, err := run(m, "set outputMode="+mode, false)
				if err != nil {
					return 0, err
				}
				modePeak[i] = max(modePeak[i], peak)
				if round > 0 {
					list[i], set[i] = append(list[i], d), append(set[i], d0)
				}
				return d, nil
			}})
		}
		if err := takeTurns(sides, reps, nil); err != nil {
			b.res.fail("3", "list Vm "+mode+", "+size+" VMs", err)
			continue
		}
		value := func(i int) float64 { return median(durationsMS(list[i])) - median(durationsMS(set[i])) }
		v := value(0)
		measure := fmt.Sprintf("`list Vm` %s, %s VMs (exec minus session cost)", mode, size)
		r := row{Fig: "3", Measure: measure, Value: fmtMS(v), Target: limitText, Met: yesNo(v < limit)}
		if baseErr != nil {
			r.Baseline = "missing: " + oneLine(baseErr.Error())
		} else {
			r.Baseline = "SELECT id, name via database/sql: " + fmtMS(base)
			r.Ratio = ratio(v, base)
		}
		b.res.add(r)
		for i := 1; i < len(ems); i++ {
			b.res.add(vsSQLite("3", measure, ems[i].engine, value(i), v, fmtMS, false))
		}
		for i, m := range ems {
			peakRSS[i] = max(peakRSS[i], modePeak[i])
			b.res.note("figure 3, %s VMs, %s, %s: exec wall %s, session without the listing %s; peak manager VmRSS during the listing %s",
				size, mode, m.label, fmtMS(median(durationsMS(list[i]))), fmtMS(median(durationsMS(set[i]))), fmtMB(modePeak[i]))
		}
	}
	hwm, _ := statusKB(ems[0].pid, "VmHWM")
	rssAfter, _ := statusKB(ems[0].pid, "VmRSS")
	b.res.add(row{Fig: "3", Measure: fmt.Sprintf("manager RSS while listing %s VMs (peak VmRSS sampled every 5 ms)", size),
		Value: fmtMB(peakRSS[0]), Target: "< 300 MB", Met: yesNo(peakRSS[0] > 0 && peakRSS[0] < 300*1024)})
	for i := 1; i < len(ems); i++ {
		b.res.add(row{Fig: "3", Measure: fmt.Sprintf("manager RSS while listing %s VMs on %s", size, ems[i].label),
			Value: fmtMB(peakRSS[i]), Baseline: "SQLite: " + fmtMB(peakRSS[0]), Ratio: ratio(float64(peakRSS[i]), float64(peakRSS[0])),
			Target: "< 300 MB", Met: yesNo(peakRSS[i] > 0 && peakRSS[i] < 300*1024)})
	}
	b.res.note("figure 3, %s VMs: SQLite manager VmRSS %s before the listings, %s after; VmHWM (peak since start) %s",
		size, fmtMB(rssBefore), fmtMB(rssAfter), fmtMB(hwm))
}

// selectBaseline reads `SELECT id, name FROM vms` into memory reps times
// and returns the median in milliseconds.
func selectBaseline(ctx context.Context, path string, n, reps int) (float64, error) {
	v := url.Values{}
	v.Add("_pragma", "busy_timeout(5000)")
	v.Add("_pragma", "query_only(1)")
	u := url.URL{Scheme: "file", Path: path, RawQuery: v.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	type idName struct{ id, name string }
	var times []float64
	for i := 0; i < reps+1; i++ {
		t0 := time.Now()
		rows, err := db.QueryContext(ctx, `SELECT id, name FROM vms`)
		if err != nil {
			return 0, err
		}
		var got []idName
		for rows.Next() {
			var r idName
			if err := rows.Scan(&r.id, &r.name); err != nil {
				rows.Close()
				return 0, err
			}
			got = append(got, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, err
		}
		d := time.Since(t0)
		if len(got) < n {
			return 0, fmt.Errorf("SELECT returned %d rows, want %d", len(got), n)
		}
		if i > 0 {
			times = append(times, ms(d))
		}
	}
	return median(times), nil
}
