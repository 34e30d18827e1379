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
// file.
func (b *bench) listVMs(ctx context.Context, m *managerProc, db string, n, reps int) {
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
	rssBefore, _ := statusKB(m.pid, "VmRSS")
	var peakRSS int64
	for _, mode := range []string{"Sparse", "Json"} {
		run := func(cmdline string, wantRows bool) (time.Duration, int64, error) {
			var out bytes.Buffer
			cmd := b.ssh.command(m.port, "xenbench-manager", "admin", nil, cmdline)
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
		var list, set []time.Duration
		var modePeak int64
		failed := false
		for i := 0; i < reps+1; i++ { // the first is a warm-up
			d, peak, err := run("set outputMode="+mode+"; list Vm", true)
			if err != nil {
				b.res.fail("3", "list Vm "+mode+", "+size+" VMs", err)
				failed = true
				break
			}
			d0, _, err := run("set outputMode="+mode, false)
			if err != nil {
				b.res.fail("3", "list Vm "+mode+", "+size+" VMs", err)
				failed = true
				break
			}
			modePeak = max(modePeak, peak)
			if i > 0 {
				list, set = append(list, d), append(set, d0)
			}
		}
		if failed {
			continue
		}
		peakRSS = max(peakRSS, modePeak)
		v := median(durationsMS(list)) - median(durationsMS(set))
		r := row{Fig: "3", Measure: fmt.Sprintf("`list Vm` %s, %s VMs (exec minus session cost)", mode, size),
			Value: fmtMS(v), Target: limitText, Met: yesNo(v < limit)}
		if baseErr != nil {
			r.Baseline = "missing: " + oneLine(baseErr.Error())
		} else {
			r.Baseline = "SELECT id, name via database/sql: " + fmtMS(base)
			r.Ratio = ratio(v, base)
		}
		b.res.add(r)
		b.res.note("figure 3, %s VMs, %s: exec wall %s, session without the listing %s; peak manager VmRSS during the listing %s",
			size, mode, fmtMS(median(durationsMS(list))), fmtMS(median(durationsMS(set))), fmtMB(modePeak))
	}
	hwm, _ := statusKB(m.pid, "VmHWM")
	rssAfter, _ := statusKB(m.pid, "VmRSS")
	b.res.add(row{Fig: "3", Measure: fmt.Sprintf("manager RSS while listing %s VMs (peak VmRSS sampled every 5 ms)", size),
		Value: fmtMB(peakRSS), Target: "< 300 MB", Met: yesNo(peakRSS > 0 && peakRSS < 300*1024)})
	b.res.note("figure 3, %s VMs: manager VmRSS %s before the listings, %s after; VmHWM (peak since start) %s",
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
