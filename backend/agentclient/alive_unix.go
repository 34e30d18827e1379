//go:build unix

package agentclient

import (
	"net"
	"syscall"
)

// alive reports whether an idle connection is still open and silent: a
// peek that would block. An agent that closed it (its idle timeout, a
// restart) has sent its end, or a TLS alert before it; a call on it would
// fail where a new connection would not.
func alive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		open = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true
	})
	return err == nil && open
}
