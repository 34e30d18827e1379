package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the driver the manager uses, for the baseline program (listbaseline.go)
)

// listForm is one output form of figure 3: the settings that choose it on
// the manager, and the form the baseline program prints.
type listForm struct {
	name, set, baseline string
}

var listForms = []listForm{
	{"Sparse", "set outputMode=Sparse", "sparse"},
	{"Json", "set outputMode=Json", "json"},
	{"Json version 2", "set outputMode=Json; set jsonVersion=2", "json2"},
}

// listVMs is figure 3 at one inventory size: `list Vm` over exec in
// Sparse, Json and Json version 2, its time and the manager's memory.
// The list's own time is the exec's wall time minus that of the settings
// alone (the same connection, login and session without the listing).
// The client writes the listing to a file, as `ssh ... > vms.json` does:
// through a pipe, OpenSSH's client (9.2) reads up to 256 KiB of the
// connection per turn of its loop but passes at most the pipe's 64 KiB
// on, so a manager that sends faster than the pipe drains makes it queue
// the rest in a buffer it copies whole as it grows, and the figure would
// time that queue (docs/performance.md, session 20). The same listing
// through a pipe, each manager's, is also run in each round and given in
// the notes, beside SQLite's.
// Baseline: OpenSSH's sshd whose ForceCommand is this program's
// list-baseline, which opens the same database file, selects the same
// columns and prints them in the same layout (listbaseline.go), over the
// same client, keys and ciphers; its time minus that of its empty
// command (the program started, nothing listed). The runs alternate. ems
// are the managers measured, the SQLite one (on db) first: the baseline
// is its; those on PostgreSQL (issue 15) run the same listings in the
// same rounds, each set beside SQLite's figure.
func (b *bench) listVMs(ctx context.Context, ems []*engineManager, db string, n, reps int) {
	size := fmt.Sprintf("%d", n)
	if n >= 1000 {
		size = fmt.Sprintf("%d,%03d", n/1000, n%1000)
	}
	fmt.Printf("\n== figure 3: list Vm with %s VMs\n", size)
	if !b.needSSH("3", "list Vm, "+size+" VMs") {
		return
	}
	var sshd *sshdProc
	exe, baseErr := os.Executable()
	if baseErr == nil {
		sshd, baseErr = startSSHD(ctx, b.work, "sshd-list", fmt.Sprintf("'%s' %s '%s'", exe, listBaselineCmd, db), b.ssh)
	}
	defer sshd.stop()
	limit := 100.0
	limitText := "< 100 ms"
	if n > 10000 {
		limit, limitText = 1000, "< 1 s"
	}
	outPath := filepath.Join(b.work, "fig3-listing")
	// timed runs one exec, its output to a file (or, toPipe, to this
	// process through a pipe), and checks that a listing printed every VM.
	timed := func(cmd *exec.Cmd, wantRows bool, pollPID int, toPipe bool) (time.Duration, int64, error) {
		var piped bytes.Buffer
		var file *os.File
		if toPipe {
			cmd.Stdout, cmd.Stderr = &piped, &piped
		} else {
			var err error
			if file, err = os.Create(outPath); err != nil {
				return 0, 0, err
			}
			defer file.Close()
			cmd.Stdout, cmd.Stderr = file, file
		}
		var p *rssPoller
		if pollPID > 0 {
			p = pollRSS(pollPID, 5*time.Millisecond)
		}
		d, err := runTimed(ctx, cmd)
		var peak int64
		if p != nil {
			peak = p.Stop()
		}
		out := piped.String()
		if file != nil {
			data, rerr := os.ReadFile(outPath)
			if rerr != nil && err == nil {
				err = rerr
			}
			out = string(data)
		}
		if err != nil {
			return 0, 0, exitErr(err, []byte(out))
		}
		if wantRows {
			if got := strings.Count(out, "vm-"); got < n {
				return 0, 0, fmt.Errorf("the listing printed %d VM names, want %d: %s", got, n, oneLine(out[:min(len(out), 300)]))
			}
		}
		return d, peak, nil
	}
	rssBefore := make([]int64, len(ems))
	for i, e := range ems {
		rssBefore[i], _ = statusKB(e.pid, "VmRSS")
	}
	peakRSS := make([]int64, len(ems))
	for _, form := range listForms {
		measure := fmt.Sprintf("`list Vm` %s, %s VMs (exec to a file minus session cost)", form.name, size)
		list, set, piped := make([][]time.Duration, len(ems)), make([][]time.Duration, len(ems)), make([][]time.Duration, len(ems))
		var baseList, baseEmpty []time.Duration
		failed := false
		formBaseErr := baseErr
		for i := 0; i < reps+1 && !failed; i++ { // the first is a warm-up
			for k, e := range ems {
				admin := func(line string) *exec.Cmd { return b.ssh.command(e.port, e.alias, "admin", nil, line) }
				d, peak, err := timed(admin(form.set+"; list Vm"), true, e.pid, false)
				if err == nil {
					var d0, dp time.Duration
					d0, _, err = timed(admin(form.set), false, 0, false)
					if err == nil {
						dp, _, err = timed(admin(form.set+"; list Vm"), true, 0, true)
					}
					if i > 0 {
						list[k], set[k], piped[k] = append(list[k], d), append(set[k], d0), append(piped[k], dp)
					}
				}
				if err != nil {
					b.res.fail("3", measure+" on "+e.label, err)
					failed = true
					break
				}
				peakRSS[k] = max(peakRSS[k], peak)
			}
			if failed || formBaseErr != nil {
				continue
			}
			bd, _, err := timed(b.ssh.command(sshd.port, sshd.alias, sshd.user, nil, form.baseline), true, 0, false)
			if err == nil {
				var bd0 time.Duration
				bd0, _, err = timed(b.ssh.command(sshd.port, sshd.alias, sshd.user, nil, "empty"), false, 0, false)
				if i > 0 {
					baseList, baseEmpty = append(baseList, bd), append(baseEmpty, bd0)
				}
			}
			formBaseErr = err
		}
		if failed {
			continue
		}
		value := func(k int) float64 { return median(durationsMS(list[k])) - median(durationsMS(set[k])) }
		v := value(0)
		r := row{Fig: "3", Measure: measure, Value: fmtMS(v), Target: limitText + " and <= 3 x baseline"}
		if formBaseErr != nil {
			r.Baseline = "missing: " + oneLine(formBaseErr.Error())
			r.Met = "-"
		} else {
			base := median(durationsMS(baseList)) - median(durationsMS(baseEmpty))
			r.Baseline = "sshd + Go SELECT printing " + form.baseline + ": " + fmtMS(base)
			r.Ratio = ratio(v, base)
			r.Met = yesNo(v < limit && v <= 3*base)
			b.res.note("figure 3, %s VMs, %s: baseline exec wall %s, its empty command %s", size, form.name,
				fmtMS(median(durationsMS(baseList))), fmtMS(median(durationsMS(baseEmpty))))
		}
		b.res.add(r)
		for k := 1; k < len(ems); k++ {
			b.res.add(vsSQLite("3", measure, ems[k].engine, value(k), v, fmtMS, false))
		}
		pipedValue := func(k int) float64 { return median(durationsMS(piped[k])) - median(durationsMS(set[k])) }
		for k, e := range ems {
			through := fmt.Sprintf("through a pipe %s", fmtMS(pipedValue(k)))
			if k > 0 {
				through += " (" + ratio(pipedValue(k), pipedValue(0)) + " SQLite's through a pipe)"
			}
			b.res.note("figure 3, %s VMs, %s, %s: exec wall %s, session without the listing %s; the listing %s",
				size, form.name, e.label, fmtMS(median(durationsMS(list[k]))), fmtMS(median(durationsMS(set[k]))), through)
		}
	}
	for k, e := range ems {
		hwm, _ := statusKB(e.pid, "VmHWM")
		rssAfter, _ := statusKB(e.pid, "VmRSS")
		growth := peakRSS[k] - rssBefore[k]
		measure := fmt.Sprintf("manager RSS growth while listing %s VMs (peak VmRSS sampled every 5 ms, minus VmRSS before the listings)", size)
		if k > 0 {
			measure += " on " + e.label
		}
		b.res.add(row{Fig: "3", Measure: measure, Value: fmtMB(growth), Target: "< 50 MB", Met: yesNo(peakRSS[k] > 0 && growth < 50*1024)})
		b.res.note("figure 3, %s VMs, %s: manager VmRSS %s before the listings, peak %s during them, %s after; VmHWM (peak since start) %s",
			size, e.label, fmtMB(rssBefore[k]), fmtMB(peakRSS[k]), fmtMB(rssAfter), fmtMB(hwm))
	}
}
