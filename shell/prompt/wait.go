package prompt

import (
	"os"

	"golang.org/x/sys/unix"
)

// waitFDs lets keyParser block until the terminal has input: a descriptor
// of the terminal to poll, and a pipe that wakes the poll when go-prompt
// stops its reader. With them go-prompt's reader (patched, see
// third_party/goprompt/PATCHES.md) sleeps in poll(2) instead of waking every 10 ms.
type waitFDs struct {
	tty          int
	wakeR, wakeW int
}

func openWaitFDs() (*waitFDs, error) {
	tty, err := unix.Open("/dev/tty", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		unix.Close(tty)
		return nil, err
	}
	return &waitFDs{tty: tty, wakeR: p[0], wakeW: p[1]}, nil
}

// Wait blocks until the terminal is readable (true) or stop receives a
// value (false; the value is consumed, as go-prompt's reader expects).
func (p *keyParser) Wait(stop chan struct{}) bool {
	if len(p.pending) > 0 || p.wait == nil {
		return true
	}
	return p.wait.wait(stop)
}

// wait blocks until the terminal is readable (true) or stop receives a
// value or is closed (false). One goroutine at a time may wait on a
// waitFDs, since a waiter drains the wake-up pipe: go-prompt's readers,
// which it stops without waiting for them to end, share one; the key
// watcher of a running command has its own.
func (w *waitFDs) wait(stop chan struct{}) bool {
	done, finished, stopped := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		select {
		case <-stop:
			close(stopped)
			unix.Write(w.wakeW, []byte{1})
		case <-done:
		}
	}()
	fds := []unix.PollFd{{Fd: int32(w.tty), Events: unix.POLLIN}, {Fd: int32(w.wakeR), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); err != unix.EINTR {
			break
		}
	}
	close(done)
	<-finished
	var buf [16]byte
	for {
		if n, _ := unix.Read(w.wakeR, buf[:]); n <= 0 {
			break
		}
	}
	select {
	case <-stopped:
		return false
	default:
	}
	if fds[0].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
		// The terminal is gone (the manager closed the session): nothing
		// more will come.
		os.Exit(0)
	}
	return true
}
