package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// listener is a process of the harness that says on its stdout which port
// it listens on: the manager, the agent of figure 7, the Python baseline.
type listener struct {
	cmd     *exec.Cmd
	pid     int
	port    int
	grace   time.Duration // between SIGTERM and SIGKILL in stop
	exited  chan struct{} // closed once the process has been waited for
	waitErr error         // what cmd.Wait returned; set before exited closes
}

// startListener starts cmd, its stderr appended to logPath, and waits until
// a line of its stdout matches rx (the port in rx's first group), the
// process exits, within passes or ctx ends; what names it in errors.
func startListener(ctx context.Context, cmd *exec.Cmd, what, logPath string, rx *regexp.Regexp, within, grace time.Duration) (*listener, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := procs.start(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", what, err)
	}
	l := &listener{cmd: cmd, pid: cmd.Process.Pid, grace: grace, exited: make(chan struct{})}
	ports := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if mm := rx.FindStringSubmatch(sc.Text()); mm != nil {
				p, _ := strconv.Atoi(mm[1])
				select {
				case ports <- p:
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		l.waitErr = cmd.Wait()
		procs.forget(cmd)
		close(l.exited)
	}()
	select {
	case l.port = <-ports:
		return l, nil
	case <-l.exited:
		return nil, fmt.Errorf("%s exited before listening (%v): %s", what, l.waitErr, tail(logPath))
	case <-time.After(within):
		l.stop()
		return nil, fmt.Errorf("%s did not listen within %s: %s", what, within, tail(logPath))
	case <-ctx.Done():
		l.stop()
		return nil, ctx.Err()
	}
}

// stop ends the process (SIGTERM, then SIGKILL after its grace) and waits.
func (l *listener) stop() {
	if l == nil {
		return
	}
	procs.stop(l.cmd, l.grace, l.exited)
	<-l.exited
}
