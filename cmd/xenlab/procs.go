package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopWait bounds how long a process may take to stop after SIGINT before
// it is killed (the agent lets calls in flight finish for up to 10 s).
const stopWait = 15 * time.Second

// proc is a process of the lab: the manager or an agent. Its output goes
// to a log file in the data directory.
type proc struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	log     *os.File
	done    chan struct{} // closed when it has exited
	err     error         // its exit, once done is closed

	stopping sync.Once
}

// startProc starts bin with args, its stdout and stderr appended to
// logPath, and waits (bounded by ctx) until a line of its stdout matches
// ready; it returns the line's submatches. exited receives the process
// when it ends (it must have room: it is not waited on).
func startProc(ctx context.Context, name, logPath string, ready *regexp.Regexp, exited chan<- *proc, bin string, args ...string) (*proc, []string, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(log, "=== xenlab %s: %s %s\n", time.Now().Format(time.RFC3339), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = procAttr()
	cmd.Stderr = log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		log.Close()
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, logPath: logPath, cmd: cmd, log: log, done: make(chan struct{})}
	matched := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		found := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(log, line)
			if !found {
				if m := ready.FindStringSubmatch(line); m != nil {
					found = true
					matched <- m
				}
			}
		}
		io.Copy(log, stdout)
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
		exited <- p
	}()
	select {
	case m := <-matched:
		return p, m, nil
	case <-p.done:
		return nil, nil, fmt.Errorf("%s exited before it was ready (%v); the end of its log, %s:\n%s", name, p.err, logPath, tailFile(logPath, 15))
	case <-ctx.Done():
		p.stop()
		return nil, nil, fmt.Errorf("%s: interrupted while it started", name)
	case <-time.After(time.Minute):
		p.stop()
		return nil, nil, fmt.Errorf("%s was not ready within a minute; the end of its log, %s:\n%s", name, logPath, tailFile(logPath, 15))
	}
}

// stop stops the process: SIGINT, then SIGKILL after stopWait; it returns
// once the process has exited (or, should SIGKILL not end it, after a
// bounded wait more).
func (p *proc) stop() {
	p.stopping.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
			return
		case <-time.After(stopWait):
		}
		fmt.Printf("xenlab: %s did not stop within %v after SIGINT: killing it\n", p.name, stopWait)
		p.cmd.Process.Signal(syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			fmt.Printf("xenlab: %s (pid %d) did not end after SIGKILL\n", p.name, p.cmd.Process.Pid)
		}
	})
}

// exitedEarly says whether the process has ended already.
func (p *proc) exitedEarly() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tailFile is the last n lines of a file, indented, for messages.
func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "    (" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}
