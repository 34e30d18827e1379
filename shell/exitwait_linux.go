package shell

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// awaitExit returns once process pid, a child not yet reaped, has exited,
// leaving it to be reaped (exec.Cmd.Wait then returns at once). It waits on
// a pidfd through the runtime's poller, so that the waiting goroutine holds
// no OS thread: os.Process.Wait blocks a thread in waitid for the child's
// whole life, one per interactive session, and the Go runtime keeps every
// thread it ever made. An error means pidfds are unusable here (Linux older
// than 5.3): the caller then waits as before.
func awaitExit(pid int) error {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return fmt.Errorf("pidfd_open: %w", err)
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var pollErr error
	err = raw.Read(func(fd uintptr) bool {
		// A pidfd is readable once its process has exited.
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		if err == unix.EINTR {
			return false
		}
		if err != nil {
			pollErr = err
			return true
		}
		return n > 0
	})
	if err == nil {
		err = pollErr
	}
	return err
}
