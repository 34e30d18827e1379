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
// into the per-command time.
func (b *bench) sessionBatch(ctx context.Context, m *managerProc) {
	const measure = "per command in one session: stdin batch of 1,000 `show Vm`"
	fmt.Println("\n== figure 2:", measure)
	if !b.needSSH("2", measure) {
		return
	}
	var script strings.Builder
	for i := range batchLines {
		fmt.Fprintf(&script, "show Vm name=vm-%d\n", (i*7919)%10000)
	}
	mgrRun := func(stdin string) (time.Duration, error) {
		var out countWriter
		var errb bytes.Buffer
		cmd := b.ssh.command(m.port, "xenbench-manager", "admin", nil)
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
	var full, empty, vFull, vEmpty []time.Duration
	for i := 0; i < b.plan.batches+1; i++ { // the first round is a warm-up
		d1, err := mgrRun(script.String())
		if err != nil {
			b.res.fail("2", measure, err)
			return
		}
		d0, err := mgrRun("")
		if err != nil {
			b.res.fail("2", measure, err)
			return
		}
		if i > 0 {
			full, empty = append(full, d1), append(empty, d0)
		}
		if virshErr == nil {
			v1, err1 := virshRun(virshScript)
			v0, err0 := virshRun("")
			if err1 != nil || err0 != nil {
				virshErr = firstErr(err1, err0)
			} else if i > 0 {
				vFull, vEmpty = append(vFull, v1), append(vEmpty, v0)
			}
		}
	}
	per := (median(durationsMS(full)) - median(durationsMS(empty))) / batchLines
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
	b.res.note("figure 2: manager batch of 1,000 `show Vm` (Verbose output): %s in all, %s for a session with an empty batch; "+
		"per command = difference / 1,000; %d runs after a warm-up",
		fmtMS(median(durationsMS(full))), fmtMS(median(durationsMS(empty))), len(full))
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
