package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/creack/pty"
)

const idleSessions = 100

// sessionsPerAddress spreads the clients over several loopback source
// addresses, as 100 operators do not share one address.
const sessionsPerAddress = 25

// loginsInFlight is how many clients may be logging in at once: the
// manager, as OpenSSH's sshd, starts refusing unauthenticated connections
// at random from 10 (--max-startups 10:30:100), and operators do not all
// press Enter in the same millisecond.
const loginsInFlight = 8

// idleClient is one `ssh -tt` client on a pseudo-terminal of the harness's
// own (as in a terminal window), kept open and idle.
type idleClient struct {
	cmd    *exec.Cmd
	master *os.File
	exited chan struct{}
}

func (c *idleClient) close() {
	c.master.Close()
	procs.stop(c.cmd, 3*time.Second, c.exited)
	<-c.exited
}

// openIdle starts n interactive clients with extra ssh arguments, at most
// loginsInFlight of them logging in at a time, and waits until ready()
// reports that the server side of all n is up.
func (b *bench) openIdle(ctx context.Context, n, port int, alias, user string, ready func() int) ([]*idleClient, error) {
	var clients []*idleClient
	deadline := time.Now().Add(90 * time.Second)
	for i := range n {
		for ready() < i-loginsInFlight {
			if time.Now().After(deadline) {
				got := ready()
				closeIdle(clients)
				return nil, fmt.Errorf("only %d of %d sessions came up within 90 s", got, i)
			}
			select {
			case <-ctx.Done():
				closeIdle(clients)
				return nil, ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
		src := fmt.Sprintf("127.0.0.%d", 2+i/sessionsPerAddress)
		cmd := b.ssh.command(port, alias, user, []string{"-tt", "-b", src})
		cmd.Env = append(os.Environ(), "TERM=xterm")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
		master, err := pty.StartWithAttrs(cmd, &pty.Winsize{Rows: 40, Cols: 120}, cmd.SysProcAttr)
		if err != nil {
			closeIdle(clients)
			return nil, fmt.Errorf("start ssh -tt on a pty: %w", err)
		}
		procs.mu.Lock()
		procs.live[cmd] = true
		procs.mu.Unlock()
		c := &idleClient{cmd: cmd, master: master, exited: make(chan struct{})}
		go func() { cmd.Wait(); procs.forget(cmd); close(c.exited) }()
		go io.Copy(io.Discard, master) // the screen nobody looks at
		clients = append(clients, c)
	}
	for ready() < n {
		if time.Now().After(deadline) {
			got := ready()
			closeIdle(clients)
			return nil, fmt.Errorf("only %d of %d sessions came up within 90 s", got, n)
		}
		select {
		case <-ctx.Done():
			closeIdle(clients)
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return clients, nil
}

func closeIdle(cs []*idleClient) {
	for _, c := range cs {
		c.master.Close()
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGTERM)
	}
	for _, c := range cs {
		c.close()
	}
}

// countChildren counts root's descendants whose command name is comm.
func countChildren(root int, comm string) int {
	n := 0
	for _, d := range descendants(root) {
		if d.comm == comm {
			n++
		}
	}
	return n
}

// idleLoad measures the CPU of root and its descendants over window (as %
// of one core) and their memory.
type idleLoad struct {
	cpu          float64
	rootCPU      float64
	childRSSKB   int64
	childPSSKB   int64
	rootGrowthKB int64
	procs        int
}

func measureIdle(ctx context.Context, root int, rootBefore int64, window time.Duration) (idleLoad, error) {
	// Start-up of the sessions (history, first render) is over by now; let
	// the last of it pass before the window opens.
	select {
	case <-ctx.Done():
		return idleLoad{}, ctx.Err()
	case <-time.After(2 * time.Second):
	}
	a, err := sampleTreeCPU(root, true)
	if err != nil {
		return idleLoad{}, err
	}
	select {
	case <-ctx.Done():
		return idleLoad{}, ctx.Err()
	case <-time.After(window):
	}
	z, err := sampleTreeCPU(root, true)
	if err != nil {
		return idleLoad{}, err
	}
	l := idleLoad{cpu: cpuPercent(a, z), rootCPU: rootCPUPercent(a, z), procs: z.procs}
	for _, d := range descendants(root) {
		if v, err := statusKB(d.pid, "VmRSS"); err == nil {
			l.childRSSKB += v
		}
		if v, err := pssKB(d.pid); err == nil {
			l.childPSSKB += v
		}
	}
	after, _ := statusKB(root, "VmRSS")
	l.rootGrowthKB = after - rootBefore
	return l, nil
}

// idleSessions is the first half of figure 5: 100 idle interactive sessions
// (ssh -tt on a pty each), the CPU of the manager and its children over the
// window, and memory per session; baseline: as many idle `ssh -tt` sessions
// to an sshd whose ForceCommand is /bin/cat.
func (b *bench) idleSessions(ctx context.Context, m *managerProc) {
	measure := fmt.Sprintf("CPU of %d idle PTY sessions (manager + children)", idleSessions)
	fmt.Println("\n== figure 5:", measure)
	if !b.needSSH("5", measure) {
		return
	}
	before, _ := statusKB(m.pid, "VmRSS")
	t0 := time.Now()
	clients, err := b.openIdle(ctx, idleSessions, m.port, "xenbench-manager", "admin",
		func() int { return countChildren(m.pid, "xenmanager") })
	if err != nil {
		b.res.fail("5", measure, err)
		return
	}
	fmt.Printf("  %d sessions up in %s\n", idleSessions, time.Since(t0).Round(time.Millisecond))
	mgr, err := measureIdle(ctx, m.pid, before, b.plan.idleWindow)
	closeIdle(clients)
	if err != nil {
		b.res.fail("5", measure, err)
		return
	}

	var base idleLoad
	sshd, baseErr := startSSHD(ctx, b.work, "sshd-cat", "/bin/cat", b.ssh)
	if baseErr == nil {
		sbefore, _ := statusKB(sshd.pid, "VmRSS")
		var bc []*idleClient
		bc, baseErr = b.openIdle(ctx, idleSessions, sshd.port, sshd.alias, sshd.user,
			func() int { return countChildren(sshd.pid, "cat") })
		if baseErr == nil {
			base, baseErr = measureIdle(ctx, sshd.pid, sbefore, b.plan.idleWindow)
			closeIdle(bc)
		}
		sshd.stop()
	}
	r := row{Fig: "5", Measure: measure + fmt.Sprintf(", over %s", b.plan.idleWindow), Value: fmtPct(mgr.cpu) + " of a core",
		Target: "< 5 % of one core", Met: yesNo(mgr.cpu < 5)}
	if baseErr != nil {
		r.Baseline = "missing: " + oneLine(baseErr.Error())
	} else {
		r.Baseline = "sshd + /bin/cat: " + fmtPct(base.cpu)
		r.Ratio = ratio(mgr.cpu, base.cpu)
	}
	b.res.add(r)
	per := (mgr.childRSSKB + mgr.rootGrowthKB) / idleSessions
	mr := row{Fig: "5", Measure: "memory per idle PTY session (children's RSS / 100 + manager growth / 100)", Value: fmtMB(per)}
	if baseErr == nil {
		bper := (base.childRSSKB + base.rootGrowthKB) / idleSessions
		mr.Baseline = "sshd + /bin/cat: " + fmtMB(bper)
		mr.Ratio = ratio(float64(per), float64(bper))
	}
	b.res.add(mr)
	b.res.note("figure 5: %d processes under the manager during the window; CPU: manager process %s, front-ends %s; "+
		"per session: front-end RSS %s, PSS %s (RSS counts the shared binary once per process), manager growth %s in all",
		mgr.procs, fmtPct(mgr.rootCPU), fmtPct(mgr.cpu-mgr.rootCPU), fmtMB(mgr.childRSSKB/idleSessions), fmtMB(mgr.childPSSKB/idleSessions), fmtMB(mgr.rootGrowthKB))
	if baseErr == nil {
		b.res.note("figure 5 baseline: %d processes under sshd (CPU of the listening sshd %s); per session RSS %s, PSS %s",
			base.procs, fmtPct(base.rootCPU),
			fmtMB(base.childRSSKB/idleSessions), fmtMB(base.childPSSKB/idleSessions))
	}
	b.res.note("figure 5: clients connect from 127.0.0.2-127.0.0.%d, %d per address, at most %d logging in at a time",
		1+(idleSessions+sessionsPerAddress-1)/sessionsPerAddress, sessionsPerAddress, loginsInFlight)
}
