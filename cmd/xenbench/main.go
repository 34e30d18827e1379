// Command xenbench measures the figures of `make bench` (issue 6; figures
// 10-12 for issues 13 and 14): each one beside a baseline measured in the
// same run on the same machine, repeated, with medians and ratios. It drives the built binaries (--bin) with the
// stock OpenSSH client, prints the machine and the table, and writes the
// table to bench-results.md.
//
//	xenbench [--bin bin] [--out bench-results.md] [--quick] [--only 1,3,7] [--keep] [--postgres URL]
//
// Two subcommands are programs the harness runs: list-baseline (figure 3's
// baseline, under sshd) and rpc-load (figure 7's load generator).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// plan is how many times each figure is measured: full (a reference run,
// under 10 minutes on 2 cores) or quick (a smoke run of about 4 minutes).
type plan struct {
	roundTrips  int           // figure 1, per server
	batches     int           // figure 2, per side
	listings    int           // figure 3, per size and mode
	bigListings int           // figure 3 at 100,000 VMs
	starts      int           // figure 4
	idleWindow  time.Duration // figure 5
	keystrokes  int           // figure 5: typed lines
	hbPeriods   int           // figure 6: periods of the full reconciliation (12 beats of 5 s) in the window
	crashes     int           // figure 6b: guests crashed, one at a time
	rpcWindow   time.Duration // figure 7, per method and server
	rpcReps     int
	boots       int // figure 8: guest boots per side (each migrated too when a second host is up), after a warm-up
	lifeCalls   int // figure 8: pause/unpause pairs per side, after warm-ups
	// figure 9: interactive sessions, commands each, VMs in the batches
	loadSessions, loadCommands, loadVMs int
	fairRounds                          int // figure 9b: rounds of the batch alone, with password logins (cache on, off), with key logins
	clones                              int // figure 10: clones of 20 per side (the cp baselines are the other sides)
	copies                              int // figure 11: 1 GiB copies per side
	failovers                           int // figure 12: frozen agents, one after the other
}

var fullPlan = plan{roundTrips: 30, batches: 5, listings: 15, bigListings: 5, starts: 5, idleWindow: 10 * time.Second,
	keystrokes: 50, hbPeriods: 2, crashes: 20, rpcWindow: 3 * time.Second, rpcReps: 3, boots: 5, lifeCalls: 300,
	loadSessions: 200, loadCommands: 20, loadVMs: 500, fairRounds: 3, clones: 5, copies: 5, failovers: 20}

var quickPlan = plan{roundTrips: 8, batches: 2, listings: 3, bigListings: 2, starts: 1, idleWindow: 5 * time.Second,
	keystrokes: 10, hbPeriods: 1, crashes: 5, rpcWindow: time.Second, rpcReps: 1, boots: 2, lifeCalls: 100,
	loadSessions: 50, loadCommands: 5, loadVMs: 100, fairRounds: 1, clones: 2, copies: 2, failovers: 3}

// bench is one run of the harness.
type bench struct {
	bin     string
	work    string
	plan    plan
	res     *results
	ssh     *openSSH // nil when the OpenSSH client is missing
	sshErr  error
	profile string // directory for CPU profiles of in-process parts, "" for none
	// pg is the PostgreSQL server of the figures measured on both engines
	// (2, 3, 4, 13); nil, with the reason in pgErr, when there is none.
	pg    *postgresServer
	pgErr error
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == listBaselineCmd {
		os.Exit(listBaseline(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == rpcLoadCmd {
		os.Exit(rpcLoad(os.Args[2:]))
	}
	bin := flag.String("bin", "bin", "directory holding the built xenmanager and xenagent")
	out := flag.String("out", "bench-results.md", "file the Markdown table is written to")
	quick := flag.Bool("quick", false, "a smoke run of about 4 minutes (fewer repetitions, shorter windows)")
	only := flag.String("only", "", "comma-separated figures to run (1-13, 9b); all when empty")
	keep := flag.Bool("keep", false, "keep the working directory (databases, logs, configurations)")
	profile := flag.String("cpuprofile-dir", "", "write CPU profiles of the in-process measurements (completion), of figures 6's and 9b's managers and of figure 7's agents to this directory")
	postgres := flag.String("postgres", os.Getenv("XENMANAGER_TEST_POSTGRES"),
		"`URL` of a PostgreSQL role that may create databases, for figures 2-4 and 13 (default $XENMANAGER_TEST_POSTGRES; when empty the harness starts a throwaway server)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "xenbench: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	os.Exit(run(*bin, *out, *quick, *only, *keep, *profile, *postgres))
}

func run(bin, out string, quick bool, only string, keep bool, profile, postgres string) int {
	absBin, err := filepath.Abs(bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "xenbench:", err)
		return 1
	}
	for _, b := range []string{"xenmanager", "xenagent"} {
		if !fileExists(filepath.Join(absBin, b)) {
			fmt.Fprintf(os.Stderr, "xenbench: %s not found in %s (make build, or --bin DIR)\n", b, absBin)
			return 1
		}
	}
	want := map[string]bool{}
	for _, f := range strings.Split(only, ",") {
		if f = strings.TrimSpace(f); f != "" {
			want[f] = true
		}
	}
	selected := func(fig string) bool { return len(want) == 0 || want[fig] }

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Whatever happens, no process the harness started outlives it.
	defer procs.killAll()

	work, err := os.MkdirTemp("", "xenbench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "xenbench:", err)
		return 1
	}
	if keep {
		fmt.Println("working directory (kept):", work)
	} else {
		defer os.RemoveAll(work)
	}
	b := &bench{bin: absBin, work: work, plan: fullPlan, res: &results{}, profile: profile}
	mode := "full"
	if quick {
		b.plan, mode = quickPlan, "quick"
	}
	if profile != "" {
		if err := os.MkdirAll(profile, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "xenbench:", err)
			return 1
		}
	}
	mach := machine()
	fmt.Println("xenbench", mode, "run")
	fmt.Println("machine:", mach)
	b.ssh, b.sshErr = newOpenSSH(work)
	if b.sshErr != nil {
		fmt.Println("  OpenSSH client unusable; the figures that need it are skipped:", b.sshErr)
	}
	if selected("2") || selected("3") || selected("4") || selected("13") {
		b.pg, b.pgErr = startPostgres(ctx, postgres)
		if b.pgErr != nil {
			fmt.Println("  PostgreSQL unavailable; the PostgreSQL sides of figures 2-4 and figure 13 are skipped:", b.pgErr)
			b.res.note("PostgreSQL unavailable, its figures skipped: %s", oneLine(b.pgErr.Error()))
		} else {
			defer b.pg.stop()
			fmt.Println("  PostgreSQL", b.pg.version, b.pg.where())
		}
	}
	start := time.Now()

	if selected("1") || selected("2") || selected("3") || selected("5") {
		b.inventoryFigures(ctx, selected)
	}
	if selected("4") && ctx.Err() == nil {
		b.batchStart(ctx)
	}
	if selected("6") && ctx.Err() == nil {
		b.heartbeats(ctx)
	}
	if selected("7") && ctx.Err() == nil {
		b.agentRPC(ctx)
	}
	if selected("8") && ctx.Err() == nil {
		b.libvirtFigures(ctx)
	}
	if selected("9") && ctx.Err() == nil {
		b.sessionLoad(ctx)
	}
	if (selected("9") || selected("9b")) && ctx.Err() == nil {
		b.sessionFairness(ctx)
	}
	if selected("10") && ctx.Err() == nil {
		b.cloneTemplate(ctx)
	}
	if selected("11") && ctx.Err() == nil {
		b.allocatedCopy(ctx)
	}
	if selected("12") && ctx.Err() == nil {
		b.haFailover(ctx)
	}
	if selected("13") && ctx.Err() == nil {
		b.managersRate(ctx)
	}

	elapsed := time.Since(start).Round(time.Second)
	if ctx.Err() != nil {
		b.res.note("interrupted after %s: the table is incomplete", elapsed)
	}
	b.res.note("%s run, %s in all", mode, elapsed)
	var sb strings.Builder
	sb.WriteString("# xenmanager benchmark results\n\n")
	b.res.markdown(&sb, mach)
	fmt.Println()
	fmt.Print(sb.String())
	if err := os.WriteFile(out, []byte(sb.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "xenbench:", err)
		return 1
	}
	fmt.Println("\nwritten to", out)
	if ctx.Err() != nil {
		return 130
	}
	return 0
}
