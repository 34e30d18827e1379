package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
)

const batchLines = 1000

// sessionBatch is figure 2: one ssh session running a stdin batch of 1,000
// `show Vm name=vm-N` lines, per command, beside 1,000 `dominfo test` lines
// piped into one `virsh -c test:///default`. Both sides are also run with
// an empty stdin, and the per-command figure is (T(1,000) - T(empty)) /
// 1,000, so that neither pays its start-up (handshake, virsh's connect)
// into the per-command time. ems are the managers measured, the SQLite one
// first; those on PostgreSQL are set beside it (issue 15). Every manager
// and virsh take turns (takeTurns).
//
// A manager keeps what show Vm read while the VM is unchanged
// (--shown-vms), so from its second round on the batch above is served
// warm. Each manager therefore also runs a cold batch in each round: 1,000
// other VMs, none of which it has shown before (coldScript), whose
// figures are rows of their own. A stdin batch reads the VMs of the show
// lines it has received ahead, up to 256 lines at a time in one read
// (shell.readAhead), so the cold batch costs a read per 256 lines, not
// one per line.
func (b *bench) sessionBatch(ctx context.Context, ems []*engineManager) {
	const measure = "per command in one session: stdin batch of 1,000 `show Vm`"
	fmt.Println("\n== figure 2:", measure)
	if !b.needSSH("2", measure) {
		return
	}
	var script strings.Builder
	for i := range batchLines {
		fmt.Fprintf(&script, "show Vm name=vm-%d\n", (i*7919)%10000)
	}
	// coldScript is round r's cold batch: i*7919 mod 10,000 is a
	// permutation of the VMs, and round r takes its (r+1)th thousand, so
	// that no VM of it was shown before, in the warm batch (the first
	// thousand) or in another round.
	coldScript := func(round int) (string, error) {
		if (round+2)*batchLines > 10000 {
			return "", fmt.Errorf("round %d: 10,000 VMs hold no cold batch for it", round)
		}
		var b strings.Builder
		for i := (round + 1) * batchLines; i < (round+2)*batchLines; i++ {
			fmt.Fprintf(&b, "show Vm name=vm-%d\n", (i*7919)%10000)
		}
		return b.String(), nil
	}
	mgrRun := func(m *engineManager, stdin string) (time.Duration, error) {
		var out countWriter
		var errb bytes.Buffer
		cmd := b.ssh.command(m.port, m.alias, "admin", nil)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errb
		d, err := runTimed(ctx, cmd)
		if err != nil {
			return 0, exitErr(err, append(errb.Bytes(), out.tail...))
		}
		if stdin != "" && out.count("Status: Success") != batchLines {
			return 0, fmt.Errorf("the batch printed %d successes of %d", out.count("Status: Success"), batchLines)
		}
		return d, nil
	}
	virsh, virshErr := exec.LookPath("virsh")
	if virshErr != nil {
		virshErr = fmt.Errorf("virsh not installed (Debian: apt-get install libvirt-clients)")
	}
	virshScript := strings.Repeat("dominfo test\n", batchLines)
	virshRun := func(stdin string) (time.Duration, error) {
		var out countWriter
		cmd := exec.Command(virsh, "-q", "-c", "test:///default")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &out
		d, err := runTimed(ctx, cmd)
		if err != nil {
			return 0, exitErr(err, out.tail)
		}
		if stdin != "" && out.count("Name:") != batchLines {
			return 0, fmt.Errorf("virsh printed %d dominfo answers of %d: %s", out.count("Name:"), batchLines, oneLine(string(out.tail)))
		}
		return d, nil
	}
	// Each side runs the batch, then a session with an empty stdin; the
	// first round (takeTurns' warm-up) is not kept.
	full := make([][]time.Duration, len(ems))
	empty := make([][]time.Duration, len(ems))
	cold := make([][]time.Duration, len(ems))
	var sides []*side
	for i, m := range ems {
		sides = append(sides, &side{name: m.label, run: func(round int) (time.Duration, error) {
			stdin, err := coldScript(round)
			if err != nil {
				return 0, err
			}
			dc, err := mgrRun(m, stdin)
			if err != nil {
				return 0, err
			}
			d1, err := mgrRun(m, script.String())
			if err != nil {
				return 0, err
			}
			d0, err := mgrRun(m, "")
			if err != nil {
				return 0, err
			}
			if round > 0 {
				full[i], empty[i], cold[i] = append(full[i], d1), append(empty[i], d0), append(cold[i], dc)
			}
			return d1, nil
		}})
	}
	var vFull, vEmpty []time.Duration
	if virshErr == nil {
		// A virsh that fails is a missing baseline, not a failed figure.
		if _, err := virshRun(virshScript); err != nil {
			virshErr = err
		}
	}
	if virshErr == nil {
		sides = append(sides, &side{name: "virsh", run: func(round int) (time.Duration, error) {
			v1, err1 := virshRun(virshScript)
			v0, err0 := virshRun("")
			if err := firstErr(err1, err0); err != nil {
				return 0, err
			}
			if round > 0 {
				vFull, vEmpty = append(vFull, v1), append(vEmpty, v0)
			}
			return v1, nil
		}})
	}
	if err := takeTurns(sides, b.plan.batches, nil); err != nil {
		b.res.fail("2", measure, err)
		return
	}
	perCommand := func(i int) float64 {
		return (median(durationsMS(full[i])) - median(durationsMS(empty[i]))) / batchLines
	}
	perColdCommand := func(i int) float64 {
		return (median(durationsMS(cold[i])) - median(durationsMS(empty[i]))) / batchLines
	}
	per := perCommand(0)
	r := row{Fig: "2", Measure: measure, Value: fmtMS(per), Target: "<= 1 ms and <= 5 x virsh"}
	if virshErr != nil {
		r.Baseline = "missing: " + oneLine(virshErr.Error())
		r.Met = "-"
		if per > 1 {
			r.Met = "no"
		}
	} else {
		vper := (median(durationsMS(vFull)) - median(durationsMS(vEmpty))) / batchLines
		r.Baseline = "virsh dominfo: " + fmtMS(vper)
		r.Ratio = ratio(per, vper)
		r.Met = yesNo(per <= 1 && per <= 5*vper)
		b.res.note("figure 2: virsh -q -c test:///default, 1,000 `dominfo test` on stdin: %s in all, %s with empty stdin",
			fmtMS(median(durationsMS(vFull))), fmtMS(median(durationsMS(vEmpty))))
	}
	b.res.add(r)
	for i := 1; i < len(ems); i++ {
		b.res.add(vsSQLite("2", "per command, batch of 1,000 `show Vm`,", ems[i].engine, perCommand(i), per, fmtMS, false))
	}
	coldPer := perColdCommand(0)
	b.res.add(row{Fig: "2", Measure: measure + ", each VM shown for the first time (cold)", Value: fmtMS(coldPer),
		Baseline: "warm, the same manager: " + fmtMS(per), Ratio: ratio(coldPer, per), Target: "-", Met: "-"})
	for i := 1; i < len(ems); i++ {
		b.res.add(vsSQLite("2", "per command, batch of 1,000 `show Vm`, each VM shown for the first time (cold),", ems[i].engine,
			perColdCommand(i), coldPer, fmtMS, false))
	}
	for i, m := range ems {
		b.res.note("figure 2, %s: manager batch of 1,000 `show Vm` (Verbose output): %s in all (a batch of 1,000 VMs it had not shown: %s), "+
			"%s for a session with an empty batch; per command = difference / 1,000; %d runs after a warm-up, in turns with the other sides",
			m.label, fmtMS(median(durationsMS(full[i]))), fmtMS(median(durationsMS(cold[i]))), fmtMS(median(durationsMS(empty[i]))), len(full[i]))
	}
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// countWriter counts occurrences of strings in a stream without keeping it
// (it keeps the end for error messages).
type countWriter struct {
	buf  bytes.Buffer
	tail []byte
}

func (w *countWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	w.tail = append(w.tail, p...)
	if len(w.tail) > 2000 {
		w.tail = w.tail[len(w.tail)-1000:]
	}
	return len(p), nil
}

func (w *countWriter) count(s string) int { return strings.Count(w.buf.String(), s) }

var _ io.Writer = (*countWriter)(nil)
