package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

const (
	rateVMs      = 1000 // VMs in each database of figure 13
	rateSessions = 6    // concurrent ssh sessions, the same in every side
	rateManagers = 3    // managers of the shared database
)

// managersRate is figure 13 (issue 15): commands per second of the same
// client load, rateSessions OpenSSH sessions at once, each a stdin batch
// of in-session commands (`show Vm`, `list Vm name=...*`, `edit Tag
// description=...` in turn), sent to three managers of one PostgreSQL
// database (the sessions spread over them) and to one manager alone on
// another database of the same server; the sides take turns, each
// database holding the same 1,000 VMs. On 2 cores three managers cannot
// scale out: the figure is what running three costs (their membership,
// leases and the shared write lock), not a speed-up. A third side, one
// manager on SQLite, says what the same load costs on the default engine.
func (b *bench) managersRate(ctx context.Context) {
	perSession := 20 * 3
	if b.plan.starts < 5 { // quick
		perSession = 10 * 3
	}
	measure := fmt.Sprintf("commands/s, %d ssh sessions at once x %d commands (`show Vm`, `list Vm name=vm-NN*`, `edit Tag description=`)",
		rateSessions, perSession)
	fmt.Println("\n== figure 13:", measure)
	if !b.needSSH("13", measure) {
		return
	}
	if b.pg == nil {
		b.res.fail("13", measure, fmt.Errorf("needs PostgreSQL: %v", b.pgErr))
		return
	}
	dir := filepath.Join(b.work, "managers")
	one, err := b.pg.createDatabase(ctx, "one", nil)
	if err != nil {
		b.res.fail("13", measure, err)
		return
	}
	three, err := b.pg.createDatabase(ctx, "three", nil)
	if err != nil {
		b.res.fail("13", measure, err)
		return
	}
	defer b.pg.drop(context.Background(), one, three) // after the managers' stops, deferred below
	type setup struct {
		name string
		e    engine
		n    int // managers
		ms   []*engineManager
	}
	setups := []*setup{
		{name: "three managers on one PostgreSQL database", e: engine{key: "three", label: pgLabel, dsn: three}, n: rateManagers},
		{name: "one manager on PostgreSQL", e: engine{key: "one", label: pgLabel, dsn: one}, n: 1},
		{name: "one manager on SQLite", e: engine{key: "sqlite", label: sqliteLabel}, n: 1},
	}
	defer func() {
		for _, s := range setups {
			stopManagers(s.ms)
		}
	}()
	for _, s := range setups {
		data := filepath.Join(dir, s.e.key)
		if err := populateVMs(ctx, filepath.Join(data, "m1"), s.e.dsn, 0, rateVMs); err != nil {
			b.res.fail("13", measure, fmt.Errorf("%s: %w", s.name, err))
			return
		}
		for i := range s.n {
			keyFrom := ""
			if i > 0 {
				keyFrom = filepath.Join(data, "m1")
			}
			m, err := b.startOn(ctx, s.e, "rate", filepath.Join(data, fmt.Sprintf("m%d", i+1)), keyFrom)
			if err != nil {
				b.res.fail("13", measure, fmt.Errorf("%s: %w", s.name, err))
				return
			}
			m.alias = "xenbench-rate-" + s.e.key // one host key per database
			s.ms = append(s.ms, m)
			if i == 0 {
				var setup strings.Builder
				fmt.Fprintf(&setup, "create SshKey name=bench key=\"%s\"\n", b.ssh.pub)
				for k := range rateSessions {
					fmt.Fprintf(&setup, "create Tag name=rate-%d\n", k)
				}
				if _, err := m.goSSH(ctx, setup.String(), true); err != nil {
					b.res.fail("13", measure, fmt.Errorf("register the key on %s: %w", s.name, err))
					return
				}
			}
		}
	}
	// The batch of session k in round r: its own VMs (vm-k00..vm-k99) and
	// its own tag, so that no two sessions change the same object. The
	// write is a tag's description: `edit Vm` would need a running server
	// to write the VM's vm.cfg through, and this figure is about the
	// managers and their database, not the agents.
	batch := func(k, round int) string {
		var sb strings.Builder
		for j := range perSession / 3 {
			vm := k*100 + j
			fmt.Fprintf(&sb, "show Vm name=vm-%d\n", vm)
			fmt.Fprintf(&sb, "list Vm name=vm-%d%d*\n", k+1, j%10) // vm-NN and vm-NN0..NN9: 11 VMs
			fmt.Fprintf(&sb, "edit Tag name=rate-%d description=r%dc%d\n", k, round, j)
		}
		return sb.String()
	}
	cpu := make([][]float64, len(setups)) // manager CPU-seconds per run
	var sides []*side
	for si, s := range setups {
		sides = append(sides, &side{name: s.name, run: func(round int) (time.Duration, error) {
			before := managersCPU(s.ms)
			var wg sync.WaitGroup
			errs := make([]error, rateSessions)
			t0 := time.Now()
			for k := range rateSessions {
				wg.Add(1)
				go func() {
					defer wg.Done()
					m := s.ms[k%len(s.ms)]
					var out countWriter
					var errb bytes.Buffer
					cmd := b.ssh.command(m.port, m.alias, "admin", nil)
					cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(batch(k, round)), &out, &errb
					if _, err := runTimed(ctx, cmd); err != nil {
						errs[k] = exitErr(err, append(errb.Bytes(), out.tail...))
					} else if n := out.count("Status: Success"); n != perSession {
						errs[k] = fmt.Errorf("session %d printed %d successes of %d: %s", k, n, perSession, firstFailure(out.buf.String()))
					}
				}()
			}
			wg.Wait()
			d := time.Since(t0)
			if err := firstErr(errs...); err != nil {
				return 0, err
			}
			if round > 0 {
				cpu[si] = append(cpu[si], managersCPU(s.ms)-before)
			}
			return d, nil
		}})
	}
	rounds := b.plan.batches
	b.pg.settle(ctx)
	if err := takeTurns(sides, rounds, nil); err != nil {
		b.res.fail("13", measure, err)
		return
	}
	total := float64(rateSessions * perSession)
	rate := func(i int) float64 { return total / (median(durationsMS(sides[i].times)) / 1000) }
	fmtRateCmd := func(v float64) string { return fmt.Sprintf("%.0f commands/s", v) }
	three3, one1, sqlite1 := rate(0), rate(1), rate(2)
	b.res.add(row{Fig: "13", Measure: measure + ", three managers on one PostgreSQL database (sessions spread over them); 2 cores: overhead, not scale-out",
		Value: fmtRateCmd(three3), Baseline: "one manager on the same PostgreSQL server: " + fmtRateCmd(one1),
		Ratio: fmt.Sprintf("%.2f x", three3/one1), Target: "-", Met: "-"})
	b.res.add(vsSQLite("13", "commands/s of the same load, one manager,", setups[1].e, one1, sqlite1, fmtRateCmd, true))
	for i, s := range setups {
		b.res.note("figure 13, %s (%s): %s per run of %d commands (median of %d, in turns), %s; manager CPU %.2f s per run (all its managers), %.2f ms per command",
			s.name, s.e.label, fmtMS(median(durationsMS(sides[i].times))), int(total), len(sides[i].times), fmtRateCmd(rate(i)),
			median(cpu[i]), median(cpu[i])*1000/total)
	}
}

// managersCPU is the CPU the managers have used so far, in seconds
// (utime + stime of each process).
func managersCPU(ms []*engineManager) float64 {
	var ticks int64
	for _, m := range ms {
		if st, err := readStat(m.pid); err == nil {
			ticks += st.utime + st.stime
		}
	}
	return float64(ticks) / clockTicks
}
