package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// procs is every child process the harness started and has not yet seen
// end; cleanup ends them all (also on error and on Ctrl-C).
var procs = &registry{live: map[*exec.Cmd]bool{}}

type registry struct {
	mu   sync.Mutex // guards live
	live map[*exec.Cmd]bool
}

// start starts cmd in a process group of its own (so that ending it ends
// what it started too) and records it.
func (r *registry) start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		return err
	}
	r.mu.Lock()
	r.live[cmd] = true
	r.mu.Unlock()
	return nil
}

// forget drops a process that has been waited for.
func (r *registry) forget(cmd *exec.Cmd) {
	r.mu.Lock()
	delete(r.live, cmd)
	r.mu.Unlock()
}

// run starts cmd, waits for it and forgets it.
func (r *registry) run(cmd *exec.Cmd) error {
	if err := r.start(cmd); err != nil {
		return err
	}
	err := cmd.Wait()
	r.forget(cmd)
	return err
}

// stop ends cmd's process group: SIGTERM, then SIGKILL after grace. It does
// not wait for the process (the caller's own Wait does), so it is safe to
// call for a process another goroutine waits on.
func (r *registry) stop(cmd *exec.Cmd, grace time.Duration, exited <-chan struct{}) {
	if cmd.Process == nil {
		return
	}
	if exited != nil {
		select {
		case <-exited:
			// Already waited for: its pid may belong to someone else now.
			r.forget(cmd)
			return
		default:
		}
	}
	pgid := cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	if exited != nil {
		select {
		case <-exited:
		case <-time.After(grace):
		}
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	r.forget(cmd)
}

// killAll ends every recorded process group at once (SIGKILL): the last
// resort when the harness exits.
func (r *registry) killAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for cmd := range r.live {
		if cmd.Process != nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		}
	}
	if len(r.live) > 0 {
		time.Sleep(200 * time.Millisecond)
	}
	for cmd := range r.live {
		if cmd.Process != nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		delete(r.live, cmd)
	}
}

// runTimed runs a command to completion and returns its wall time (from
// just before start to the end of Wait).
func runTimed(ctx context.Context, cmd *exec.Cmd) (time.Duration, error) {
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	t0 := time.Now()
	if err := procs.start(cmd); err != nil {
		return 0, err
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			procs.stop(cmd, time.Second, done)
		case <-done:
		}
	}()
	err := cmd.Wait()
	d := time.Since(t0)
	close(done)
	procs.forget(cmd)
	if ctx.Err() != nil {
		return d, ctx.Err()
	}
	return d, err
}

// exitErr makes an *exec.ExitError readable with the output the command left.
func exitErr(err error, out []byte) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		s := string(out)
		if len(s) > 600 {
			s = s[:300] + " ... " + s[len(s)-300:]
		}
		return errors.New(ee.Error() + ": " + s)
	}
	return err
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
