package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// fairnessTarget is issue 16's bound on the batch under load: its time
// while the sessions run at most this many times its time alone.
const fairnessTarget = 2.0

// sessionFairness is figure 9b: is the manager fair to a batch while many
// operators work? `start Vm name=sess-* multiple=Yes` over figure 9's VMs
// and agents (20 ms per agent call) is timed alone, and while figure 9's
// sessions log in and type their commands, once with password logins and
// once with key logins, in turns; the values are the medians and the
// ratios to the batch alone.
//
// The window is the batch's exec: from opening the session channel on a
// connection already logged in (before the window, so the batch's own
// login is never in it) to its exit status. In a loaded round the
// sessions start logging in, at most loginsInFlight at a time, and each
// types its commands as soon as its prompt is up; the batch starts once
// loginsInFlight sessions are up and typing, so that the rest of the login
// storm (bcrypt for passwords) and the commands of the sessions already up
// both fall inside the window. When the batch ends the sessions stop at
// their next command, logins not yet begun are not begun, and all end
// before the next round; what happened in the window is counted.
func (b *bench) sessionFairness(ctx context.Context) {
	n, each, vms := b.plan.loadSessions, b.plan.loadCommands, b.plan.loadVMs
	measure := fmt.Sprintf("batch `start Vm name=sess-* multiple=Yes`, %d VMs on %d agents, %s per agent call (exec wall time)",
		vms, sessionAgents, sessionLatency)
	fmt.Println("\n== figure 9b:", measure, "alone and while", n, "sessions log in and type", each, "commands each")
	var extra []string
	if b.profile != "" {
		extra = []string{"--cpuprofile", filepath.Join(b.profile, "fig9b-manager.pprof")}
	}
	pool, err := b.setUpSessionPool(ctx, filepath.Join(b.work, "fairness"), vms, extra...)
	if err != nil {
		b.res.fail("9b", measure, err)
		return
	}
	defer pool.stop()
	f := &fairness{ctx: ctx, pool: pool, sessions: n, each: each}
	alone := &side{name: "alone", run: f.alone}
	byPassword := &side{name: "password logins", run: func(round int) (time.Duration, error) {
		return f.loaded(round, "password", gossh.Password(pool.m.password))
	}}
	// The same, with the manager's password cache off (edit Manager
	// passwordCacheSeconds=0) for the round: every session's login pays
	// its bcrypt, as before the cache. With it on, the sessions, which
	// all log in as admin with one password, pay one bcrypt between them
	// (and none in the window when the batch's own login, before it, was
	// the one that paid).
	byPasswordUncached := &side{name: "password logins, cache off", run: func(round int) (time.Duration, error) {
		if err := f.passwordCache(0); err != nil {
			return 0, err
		}
		d, err := f.loaded(round, "password (cache off)", gossh.Password(pool.m.password))
		if perr := f.passwordCache(passwordCacheDefault); err == nil {
			err = perr
		}
		return d, err
	}}
	byKey := &side{name: "key logins", run: func(round int) (time.Duration, error) {
		return f.loaded(round, "key", gossh.PublicKeys(pool.signer))
	}}
	if err := takeTurns([]*side{alone, byPassword, byPasswordUncached, byKey}, b.plan.fairRounds, nil); err != nil {
		b.res.fail("9b", measure, err)
		return
	}
	base := median(durationsMS(alone.times))
	b.res.add(row{Fig: "9b", Measure: measure + ", alone", Value: fmtMS(base)})
	for _, s := range []*side{byPassword, byPasswordUncached, byKey} {
		v := median(durationsMS(s.times))
		b.res.add(row{Fig: "9b", Measure: fmt.Sprintf("%s, while %d sessions (%s) log in and type %d commands each", measure, n, s.name, each),
			Value: fmtMS(v), Baseline: "alone: " + fmtMS(base), Ratio: ratio(v, base),
			Target: fmt.Sprintf("<= %.0f x alone", fairnessTarget), Met: yesNo(base > 0 && v <= fairnessTarget*base)})
	}
	b.res.note("figure 9b: window = the batch's exec (session channel to exit status) on a connection logged in with the password "+
		"before it; in a loaded round %d Go SSH clients from 127.0.0.1-127.0.0.%d log in, at most %d at a time, each typing figure 9's "+
		"commands (at most %d) as soon as its prompt is up; the batch starts once %d are up and typing, so later logins and the "+
		"commands of the sessions up are inside the window; %d rounds after a warm-up, the four sides in turns; medians. Alone: %s",
		n, sessionAddresses, loginsInFlight, each, loginsInFlight, b.plan.fairRounds, fmtDurations(alone.times))
	b.res.note("figure 9b: every session logs in as admin with one password; with the manager's password cache (edit Manager "+
		"passwordCacheSeconds, %d s by default) a login whose password passed bcrypt within that time skips it, so the password "+
		"sessions pay one bcrypt between them, or none inside the window (the batch's own login, before it, verified the same "+
		"password); the row \"cache off\" sets passwordCacheSeconds=0 for its rounds: every login pays bcrypt, as distinct users would",
		passwordCacheDefault)
	for _, w := range f.windows {
		b.res.note("figure 9b, %s", w)
	}
	if f.errs.Load() > 0 {
		b.res.note("figure 9b: %d failed logins or commands; the first: %s", f.errs.Load(), f.firstErr.Load())
	}
}

// fairness holds figure 9b's set-up and what its rounds saw.
type fairness struct {
	ctx            context.Context
	pool           *sessionPool
	sessions, each int

	windows  []string     // one line per kept loaded round, for the notes (rounds run one at a time)
	errs     atomic.Int64 // failed logins and commands in the loaded rounds
	firstErr atomic.Value // string: the first of them
}

func (f *fairness) fail(err string) {
	f.errs.Add(1)
	f.firstErr.CompareAndSwap(nil, err)
}

// passwordCacheDefault is the manager's passwordCacheSeconds that the
// rounds with the cache on run with (the default of a new database).
const passwordCacheDefault = 300

// passwordCache sets the manager's passwordCacheSeconds, outside any
// window.
func (f *fairness) passwordCache(seconds int) error {
	if _, err := f.pool.m.goSSH(f.ctx, fmt.Sprintf("edit Manager passwordCacheSeconds=%d", seconds), false); err != nil {
		return fmt.Errorf("edit Manager passwordCacheSeconds=%d: %w", seconds, err)
	}
	return nil
}

// alone is the batch with no session open.
func (f *fairness) alone(round int) (time.Duration, error) {
	d, err := f.batch(nil)
	if err != nil {
		return 0, err
	}
	fmt.Printf("  round %d, alone: %s\n", round, d.Round(time.Millisecond))
	return d, f.reset()
}

// batch logs in, then times the batch start with the agents' latency on,
// and checks that every VM runs. at, when not nil, is called at the
// window's start and at its end (the CPU samples of a loaded round).
func (f *fairness) batch(at func()) (time.Duration, error) {
	if at == nil {
		at = func() {}
	}
	c, err := f.pool.m.dialSSH()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	stop := context.AfterFunc(f.ctx, func() { c.Close() })
	defer stop()
	if err := f.pool.agents.setLatency(sessionLatency); err != nil {
		return 0, err
	}
	var out lockedBuffer
	at()
	t0 := time.Now()
	s, err := c.NewSession()
	if err == nil {
		s.Stdout, s.Stderr = &out, &out
		err = s.Run("start Vm name=sess-* multiple=Yes")
		s.Close()
	}
	d := time.Since(t0)
	at()
	if lerr := f.pool.agents.setLatency(0); err == nil {
		err = lerr
	}
	if err != nil {
		var ee *gossh.ExitError
		if errors.As(err, &ee) {
			return 0, fmt.Errorf("batch: exit status %d: %s", ee.ExitStatus(), firstFailure(out.String()))
		}
		return 0, fmt.Errorf("batch: %w", err)
	}
	if got := f.pool.agents.runningDomains(); got != f.pool.vms {
		return 0, fmt.Errorf("the agents run %d domains after the batch, want %d", got, f.pool.vms)
	}
	return d, nil
}

// reset kills every VM (latency off) for the next round.
func (f *fairness) reset() error {
	if _, err := f.pool.m.goSSH(f.ctx, "kill Vm name=sess-* multiple=Yes", false); err != nil {
		return fmt.Errorf("kill the VMs between rounds: %w", err)
	}
	if got := f.pool.agents.runningDomains(); got != 0 {
		return fmt.Errorf("%d domains still run after kill Vm", got)
	}
	return nil
}

// loaded is the batch while the sessions log in with auth and type.
func (f *fairness) loaded(round int, method string, auth gossh.AuthMethod) (time.Duration, error) {
	ctx, m := f.ctx, f.pool.m
	stopLogins, stopTyping := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex // guards clients, loginsAt, commandsAt and doneAt
	var clients []*loadClient
	var loginsAt, commandsAt, doneAt []time.Time // logins, commands answered, sessions that typed all theirs
	upCh := make(chan struct{}, f.sessions)
	var typists sync.WaitGroup
	typeCommands := func(i int, c *loadClient) {
		defer typists.Done()
		for k := range f.each {
			select {
			case <-stopTyping:
				return
			default:
			}
			line := sessionLine(f.pool.agents.hostnames, f.pool.vms, f.each, i, k)
			if _, err := c.run(ctx, line); err != nil {
				f.fail(fmt.Sprintf("%s logins, session %d, %q: %s", method, i, line, oneLine(err.Error())))
				return
			}
			mu.Lock()
			commandsAt = append(commandsAt, time.Now())
			mu.Unlock()
		}
		mu.Lock()
		doneAt = append(doneAt, time.Now())
		mu.Unlock()
	}
	loginsDone := make(chan struct{})
	go func() {
		defer close(loginsDone)
		slots := make(chan struct{}, loginsInFlight)
		var wg sync.WaitGroup
		defer wg.Wait()
		for i := range f.sessions {
			select {
			case <-stopLogins:
				return
			case slots <- struct{}{}:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				c, err := openLoadClient(ctx, fmt.Sprintf("127.0.0.%d", 1+i%sessionAddresses), m.addr(), auth)
				if err != nil {
					f.fail(fmt.Sprintf("%s login %d: %s", method, i, oneLine(err.Error())))
					return
				}
				mu.Lock()
				clients = append(clients, c)
				loginsAt = append(loginsAt, time.Now())
				typists.Add(1)
				mu.Unlock()
				go typeCommands(i, c)
				upCh <- struct{}{}
			}()
		}
	}()
	finish := func() error {
		close(stopLogins)
		close(stopTyping)
		<-loginsDone
		typists.Wait()
		for _, c := range clients {
			c.exit()
		}
		deadline := time.Now().Add(60 * time.Second)
		for countChildren(m.pid, "xenmanager") > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
		}
		for _, c := range clients {
			c.close()
		}
		if left := countChildren(m.pid, "xenmanager"); left > 0 {
			return fmt.Errorf("%d front-ends left 60 s after the sessions' exit", left)
		}
		return nil
	}

	// The batch starts once loginsInFlight sessions are up and typing.
	timeout := time.After(120 * time.Second)
	for up := 0; up < loginsInFlight; up++ {
		select {
		case <-upCh:
		case <-timeout:
			finish()
			return 0, fmt.Errorf("only %d sessions up within 120 s", up)
		case <-ctx.Done():
			finish()
			return 0, ctx.Err()
		}
	}
	// The CPU of the manager, its front-ends and this process (the SSH
	// clients and the agents), sampled at the exec's bounds.
	var cpu [2]treeCPU
	var self [2]procStat
	var cpuErr error
	var samples int
	var t0 time.Time
	d, err := f.batch(func() {
		if samples < 2 {
			var err, serr error
			cpu[samples], err = sampleTreeCPU(m.pid, true)
			self[samples], serr = readStat(os.Getpid())
			cpuErr = errors.Join(cpuErr, err, serr)
			if samples == 0 {
				t0 = time.Now()
			}
			samples++
		}
	})
	t1 := t0.Add(d)
	if ferr := finish(); err == nil {
		err = ferr
	}
	if err != nil {
		return 0, err
	}
	mu.Lock()
	in := func(ts []time.Time) (before, inside int) {
		for _, t := range ts {
			switch {
			case t.Before(t0):
				before++
			case !t.After(t1):
				inside++
			}
		}
		return before, inside
	}
	loginsBefore, loginsIn := in(loginsAt)
	_, commandsIn := in(commandsAt)
	doneBefore, doneIn := in(doneAt)
	mu.Unlock()
	usage := "-"
	if cpuErr == nil && samples == 2 {
		sec := cpu[1].at.Sub(cpu[0].at).Seconds()
		all, own := cpuPercent(cpu[0], cpu[1])*sec/100, rootCPUPercent(cpu[0], cpu[1])*sec/100
		harness := float64(self[1].utime+self[1].stime-self[0].utime-self[0].stime) / clockTicks
		usage = fmt.Sprintf("manager %.2f s, front-ends %.2f s, this harness (SSH clients, agents) %.2f s; load average %s",
			own, all-own, harness, loadAverage())
	}
	w := fmt.Sprintf("round %d, %s logins: batch %s; %d sessions up at its start, %d logins and %d commands answered inside it, "+
		"%d sessions up at its end, %d of them done with their %d commands (%d before it began); CPU in the window: %s",
		round, method, d.Round(time.Millisecond), loginsBefore, loginsIn, commandsIn, loginsBefore+loginsIn, doneBefore+doneIn, f.each, doneBefore, usage)
	fmt.Println(" ", w)
	if round > 0 {
		f.windows = append(f.windows, w)
	}
	return d, f.reset()
}

// fmtDurations lists durations for the notes.
func fmtDurations(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = fmtMS(ms(d))
	}
	return strings.Join(s, ", ")
}

// loadAverage is the machine's one-minute load average, "-" when unknown.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "-"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "-"
}
