package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

const (
	sessionAddresses = 10 // the operators' source addresses, 127.0.0.1-127.0.0.10
	sessionAgents    = 10
	sessionLatency   = 20 * time.Millisecond // per agent call during the batches, as figure 4
	// maxExtraThreads is how many more OS threads than before the load the
	// manager may keep once its sessions have ended (the Go runtime keeps
	// idle threads; no session may leave one behind).
	maxExtraThreads = 16
)

// sessionLoad is figure 9: the manager under many operators at once, with
// its default limits. Interactive sessions (a pty and a front-end process
// each), logged in from 10 addresses at most 8 at a time, run their
// commands all at once while the harness starts and kills a batch of VMs
// again and again; every command's latency (typed line to the next
// prompt), the errors (none allowed), and the manager's RSS and OS threads
// before, during and after (threads must come back to within 16).
func (b *bench) sessionLoad(ctx context.Context) {
	n, each, vms := b.plan.loadSessions, b.plan.loadCommands, b.plan.loadVMs
	measure := fmt.Sprintf("%d interactive sessions from %d addresses x %d commands during %d-VM batches",
		n, sessionAddresses, each, vms)
	fmt.Println("\n== figure 9:", measure)
	pool, err := b.setUpSessionPool(ctx, filepath.Join(b.work, "sessions"), vms)
	if err != nil {
		b.res.fail("9", measure, err)
		return
	}
	defer pool.stop()
	agents, m, signer := pool.agents, pool.m, pool.signer

	before, err := procFigures(m.pid)
	if err != nil {
		b.res.fail("9", measure, err)
		return
	}
	t0 := time.Now()
	clients, loginErrs := openLoadClients(ctx, m.addr(), gossh.PublicKeys(signer), n)
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()
	up, _ := procFigures(m.pid)
	fmt.Printf("  %d of %d sessions up in %s (manager: %d threads, %s)\n", len(clients), n, time.Since(t0).Round(time.Millisecond),
		up.threads, fmtMB(up.rssKB))

	if err := agents.setLatency(sessionLatency); err != nil {
		b.res.fail("9", measure, err)
		return
	}
	// The batches run until every session has run its commands.
	stopBatches := make(chan struct{})
	var batches, batchErrs atomic.Int64
	var batchErr atomic.Value // the first failure, for the notes
	batchesDone := make(chan struct{})
	go func() {
		defer close(batchesDone)
		for verb := "start"; ; {
			select {
			case <-stopBatches:
				return
			default:
			}
			if _, err := m.goSSH(ctx, verb+" Vm name=sess-* multiple=Yes", false); err != nil {
				batchErrs.Add(1)
				batchErr.CompareAndSwap(nil, fmt.Sprintf("%s: %v", verb, oneLine(err.Error())))
				if ctx.Err() != nil {
					return
				}
			}
			batches.Add(1)
			if verb == "start" {
				verb = "kill"
			} else {
				verb = "start"
			}
		}
	}()

	var peak procFigure
	sampleDone := make(chan struct{})
	go func() { // the manager's peak during the commands
		defer close(sampleDone)
		for {
			if f, err := procFigures(m.pid); err == nil {
				peak.rssKB, peak.threads = max(peak.rssKB, f.rssKB), max(peak.threads, f.threads)
			}
			select {
			case <-stopBatches:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()

	lines := func(i, k int) string { return sessionLine(agents.hostnames, vms, each, i, k) }
	var mu sync.Mutex // guards latencies and cmdErrs
	var latencies []time.Duration
	var cmdErrs []string
	cpuBefore, cpuErr := sampleTreeCPU(m.pid, true)
	t0 = time.Now()
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range each {
				line := lines(i, k)
				d, err := c.run(ctx, line)
				mu.Lock()
				if err != nil {
					cmdErrs = append(cmdErrs, fmt.Sprintf("session %d, %q: %v", i, line, err))
				} else {
					latencies = append(latencies, d)
				}
				mu.Unlock()
				if err != nil && ctx.Err() != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	commandsTime := time.Since(t0)
	cpuAfter, err := sampleTreeCPU(m.pid, true)
	if cpuErr == nil {
		cpuErr = err
	}
	close(stopBatches)
	<-batchesDone
	<-sampleDone
	agents.setLatency(0)
	fmt.Printf("  %d commands in %s; %d batches of %d VMs meanwhile\n", len(latencies)+len(cmdErrs),
		commandsTime.Round(time.Millisecond), batches.Load(), vms)

	// End the sessions as operators do, then wait for their front-ends.
	for _, c := range clients {
		c.exit()
	}
	deadline := time.Now().Add(60 * time.Second)
	for countChildren(m.pid, "xenmanager") > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	left := countChildren(m.pid, "xenmanager")
	after, err := procFigures(m.pid)
	if err != nil {
		b.res.fail("9", measure, err)
		return
	}

	errs := len(loginErrs) + len(cmdErrs) + int(batchErrs.Load())
	if left > 0 {
		errs++
	}
	ms := durationsMS(latencies)
	b.res.add(row{Fig: "9", Measure: "command latency (typed line to next prompt), " + measure + ", p50", Value: fmtMS(median(ms))})
	b.res.add(row{Fig: "9", Measure: "command latency (typed line to next prompt), " + measure + ", p99", Value: fmtMS(percentile(ms, 99))})
	b.res.add(row{Fig: "9", Measure: "errors: logins, commands, batches, front-ends left",
		Value:  fmt.Sprintf("%d (%d/%d logins, %d/%d commands, %d/%d batches failed; %d front-ends left)", errs, len(loginErrs), n, len(cmdErrs), n*each, batchErrs.Load(), batches.Load(), left),
		Target: "0", Met: yesNo(errs == 0)})
	b.res.add(row{Fig: "9", Measure: "manager OS threads: before / sessions up / peak during the commands / after the sessions",
		Value:  fmt.Sprintf("%d / %d / %d / %d", before.threads, up.threads, peak.threads, after.threads),
		Target: fmt.Sprintf("after <= before + %d", maxExtraThreads), Met: yesNo(after.threads <= before.threads+maxExtraThreads)})
	b.res.add(row{Fig: "9", Measure: "manager RSS: before / sessions up / peak during the commands / after the sessions",
		Value: fmt.Sprintf("%s / %s / %s / %s", fmtMB(before.rssKB), fmtMB(up.rssKB), fmtMB(peak.rssKB), fmtMB(after.rssKB))})
	b.res.note("figure 9: default limits; Go SSH clients (ed25519 key) from 127.0.0.1-127.0.0.%d, at most %d logging in at a time, "+
		"a 120x40 pty each (a `xenmanager prompt` front-end per session); then all %d type their %d commands at once "+
		"(`list Vm`, `show Vm`, `list Server`, `show Server`, `showclisession` in turn, each line written whole, the next once "+
		"the result and the prompt are back) while the harness runs `start Vm name=sess-* multiple=Yes` and `kill Vm ...` "+
		"over %d VMs on %d in-process agents (%s per agent call) in turn, %d batches; commands took %s in all; "+
		"latency median %s, p90 %s, max %s",
		sessionAddresses, loginsInFlight, n, each, vms, sessionAgents, sessionLatency, batches.Load(),
		commandsTime.Round(time.Millisecond), fmtMS(median(ms)), fmtMS(percentile(ms, 90)), fmtMS(percentile(ms, 100)))
	if cpuErr == nil {
		sec := cpuAfter.at.Sub(cpuBefore.at).Seconds()
		all, own := cpuPercent(cpuBefore, cpuAfter)*sec/100, rootCPUPercent(cpuBefore, cpuAfter)*sec/100
		b.res.note("figure 9: CPU during the commands: manager process %.1f s, its front-ends %.1f s, over %.1f s of wall time on %d cores",
			own, all-own, sec, runtime.NumCPU())
	}
	for _, e := range append(loginErrs, cmdErrs...)[:min(3, len(loginErrs)+len(cmdErrs))] {
		b.res.note("figure 9 error: %s", oneLine(e))
	}
	if s, ok := batchErr.Load().(string); ok {
		b.res.note("figure 9 batch error: %s", s)
	}
}

// sessionPool is the set-up figures 9 and 9b share: a manager with the
// default limits, 10 in-process agents in one pool, vms VMs named sess-N,
// and an ed25519 key registered for admin.
type sessionPool struct {
	agents *fleet
	m      *managerProc
	signer gossh.Signer
	vms    int
}

func (p *sessionPool) stop() {
	p.m.stop()
	p.agents.stop()
}

// setUpSessionPool starts the agents and the manager (with extra flags) in
// dir and creates the pool, the repository and the VMs through the manager.
func (b *bench) setUpSessionPool(ctx context.Context, dir string, vms int, extra ...string) (*sessionPool, error) {
	agents, err := startFleet(ctx, filepath.Join(dir, "agents"), "sess", sessionAgents, true, 65536, 64)
	if err != nil {
		return nil, err
	}
	m, err := startManager(ctx, b.bin, filepath.Join(dir, "manager"), extra...) // the default limits
	if err != nil {
		agents.stop()
		return nil, err
	}
	p := &sessionPool{agents: agents, m: m, vms: vms}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err == nil {
		p.signer, err = gossh.NewSignerFromKey(priv)
	}
	if err != nil {
		p.stop()
		return nil, err
	}
	var setup strings.Builder
	fmt.Fprintf(&setup, "create SshKey name=bench9 key=\"%s xenbench\"\n", strings.TrimSpace(string(gossh.MarshalAuthorizedKey(p.signer.PublicKey()))))
	setup.WriteString("create ServerPool name=sess-pool\n")
	setup.WriteString(agents.discoverScript())
	for _, h := range agents.hostnames {
		fmt.Fprintf(&setup, "add Server name=%s to ServerPool name=sess-pool\n", h)
	}
	fmt.Fprintf(&setup, "create Repository name=sess-repo fsLocation=%s on ServerPool name=sess-pool\n", filepath.Join(dir, "repository"))
	for i := range vms {
		fmt.Fprintf(&setup, "create Vm name=sess-%d repository=sess-repo memory=256 cpuCount=1\n", i)
	}
	t0 := time.Now()
	if _, err := m.goSSH(ctx, setup.String(), true); err != nil {
		p.stop()
		return nil, fmt.Errorf("set-up: %w", err)
	}
	fmt.Printf("  pool of %d servers and %d VMs set up in %s\n", sessionAgents, vms, time.Since(t0).Round(time.Millisecond))
	return p, nil
}

// sessionLine is the k-th command session i types in figures 9 and 9b:
// `list Vm`, `show Vm`, `list Server`, `show Server`, `showclisession` in
// turn.
func sessionLine(hostnames []string, vms, each, i, k int) string {
	switch k % 5 {
	case 0:
		return "list Vm"
	case 1:
		return fmt.Sprintf("show Vm name=sess-%d", (i*each+k)%vms)
	case 2:
		return "list Server"
	case 3:
		return "show Server name=" + hostnames[(i+k)%len(hostnames)]
	default:
		return "showclisession"
	}
}

// procFigure is what figure 9 reads of the manager's /proc/<pid>/status.
type procFigure struct {
	rssKB, threads int64
}

func procFigures(pid int) (procFigure, error) {
	rss, err := statusKB(pid, "VmRSS")
	if err != nil {
		return procFigure{}, err
	}
	threads, err := statusKB(pid, "Threads") // a count, read as statusKB reads any number
	if err != nil {
		return procFigure{}, err
	}
	return procFigure{rssKB: rss, threads: threads}, nil
}

// loadClient is one interactive session of figure 9: a Go SSH client on a
// pty, whose output is kept from the last typed line on.
type loadClient struct {
	conn  *gossh.Client
	sess  *gossh.Session
	stdin io.WriteCloser

	mu     sync.Mutex    // guards out
	out    []byte        // what arrived since the last typed line
	notify chan struct{} // a token when out grew
}

func (c *loadClient) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.out = append(c.out, p...)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return len(p), nil
}

// waitOut waits until done holds for what arrived, or 60 s pass.
func (c *loadClient) waitOut(ctx context.Context, done func([]byte) bool) error {
	timer := time.NewTimer(60 * time.Second)
	defer timer.Stop()
	for {
		c.mu.Lock()
		ok := done(c.out)
		c.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-c.notify:
		case <-timer.C:
			c.mu.Lock()
			tail := string(c.out[max(0, len(c.out)-200):])
			c.mu.Unlock()
			return fmt.Errorf("no answer within 60 s; the screen ends %q", tail)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

var (
	promptText = []byte("OVM> ")
	statusText = []byte("Status: ")
)

// run types line and returns the time until its result and the next
// prompt arrived; an error unless the result is Status: Success.
func (c *loadClient) run(ctx context.Context, line string) (time.Duration, error) {
	c.mu.Lock()
	c.out = c.out[:0]
	c.mu.Unlock()
	start := time.Now()
	if _, err := c.stdin.Write([]byte(line + "\r")); err != nil {
		return 0, err
	}
	var success bool
	err := c.waitOut(ctx, func(out []byte) bool {
		i := bytes.Index(out, statusText)
		if i < 0 || !bytes.Contains(out[i:], promptText) {
			return false
		}
		success = bytes.HasPrefix(out[i+len(statusText):], []byte("Success"))
		return true
	})
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	if !success {
		c.mu.Lock()
		defer c.mu.Unlock()
		return 0, fmt.Errorf("failed: %s", firstFailure(string(c.out)))
	}
	return d, nil
}

// exit ends the session as an operator does.
func (c *loadClient) exit() { c.stdin.Write([]byte("exit\r")) }

func (c *loadClient) close() {
	c.sess.Close()
	c.conn.Close()
}

// openLoadClients logs n clients in as admin with auth, from 127.0.0.1 up to
// 127.0.0.<sessionAddresses> in turn, at most loginsInFlight at a time,
// each with a pty and the shell, and waits for each one's first prompt.
func openLoadClients(ctx context.Context, addr string, auth gossh.AuthMethod, n int) ([]*loadClient, []string) {
	var mu sync.Mutex // guards clients and errs
	var clients []*loadClient
	var errs []string
	slots := make(chan struct{}, loginsInFlight)
	var wg sync.WaitGroup
	for i := range n {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return clients, append(errs, ctx.Err().Error())
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			c, err := openLoadClient(ctx, fmt.Sprintf("127.0.0.%d", 1+i%sessionAddresses), addr, auth)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Sprintf("session %d: %v", i, err))
				return
			}
			clients = append(clients, c)
		}()
	}
	wg.Wait()
	return clients, errs
}

func openLoadClient(ctx context.Context, src, addr string, auth gossh.AuthMethod) (*loadClient, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 30 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	cfg := &gossh.ClientConfig{User: "admin", Auth: []gossh.AuthMethod{auth},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 30 * time.Second} // our own manager on loopback
	raw.SetDeadline(time.Now().Add(30 * time.Second))
	cc, chans, reqs, err := gossh.NewClientConn(raw, addr, cfg)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("log in from %s: %w", src, err)
	}
	raw.SetDeadline(time.Time{})
	c := &loadClient{conn: gossh.NewClient(cc, chans, reqs), notify: make(chan struct{}, 1)}
	fail := func(what string, err error) (*loadClient, error) {
		c.conn.Close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if c.sess, err = c.conn.NewSession(); err != nil {
		return fail("session", err)
	}
	if err := c.sess.RequestPty("xterm", 40, 120, gossh.TerminalModes{}); err != nil {
		return fail("pty", err)
	}
	c.sess.Stdout, c.sess.Stderr = c, c
	if c.stdin, err = c.sess.StdinPipe(); err != nil {
		return fail("stdin", err)
	}
	if err := c.sess.Shell(); err != nil {
		return fail("shell", err)
	}
	if err := c.waitOut(ctx, func(out []byte) bool { return bytes.Contains(out, promptText) }); err != nil {
		return fail("first prompt", err)
	}
	return c, nil
}
