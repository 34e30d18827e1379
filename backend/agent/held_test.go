package agent

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"xenmanager/backend/agentapi"
)

// countingListener counts the writes on the connections it accepts.
type countingListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.writes}, nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestAnswerInOneWrite checks that an answer, header and body, small or
// larger than a TLS record, goes out in one
// write on the TCP connection, and arrives whole, call after call on one
// keep-alive connection.
func TestAnswerInOneWrite(t *testing.T) {
	dir := t.TempDir()
	a, err := New(Config{DataDir: dir, Password: testPassword, Hostname: "xen-test", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var writes atomic.Int64
	go a.Serve(countingListener{l, &writes})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	ta := &testAgent{Agent: a, addr: l.Addr(), dir: dir}
	c := ta.client(t)
	var s string
	mustCall(t, c, agentapi.MethodEcho, []any{"hello"}, &s) // the TLS handshake
	for _, size := range []int{10, 3 << 10, 4 << 10, 14 << 10, 100 << 10, maxKeptHeld + 1, 20} {
		msg := strings.Repeat("x", size)
		before := writes.Load()
		mustCall(t, c, agentapi.MethodEcho, []any{msg}, &s)
		if s != msg {
			t.Fatalf("echo of %d bytes came back as %d bytes", size, len(s))
		}
		if n := writes.Load() - before; n != 1 {
			t.Errorf("the answer to an echo of %d bytes took %d writes, want 1", size, n)
		}
	}
}
