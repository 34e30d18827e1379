package shell

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// quickAcker returns a function that asks Linux to acknowledge what arrives
// on conn at once instead of after the delayed-ACK timer (up to 40 ms).
// The OpenSSH client leaves Nagle's algorithm on during the handshake and
// for exec sessions, so a second small packet of its waits for the ack of
// the first: with delayed ACKs every such exchange costs 40 ms (an exec
// round trip took 60 ms, or 100 ms, instead of 15). The kernel turns quick
// acknowledgement off again by itself, so it is asked again after every
// read. nil when conn is not a TCP connection.
func quickAcker(conn net.Conn) func() {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	set := func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
	}
	return func() { _ = raw.Control(set) }
}
