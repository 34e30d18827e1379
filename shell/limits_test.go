package shell

import (
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

func TestLoginFailureBackoff(t *testing.T) {
	f := newLoginFailures()
	now := time.Unix(1000, 0)
	f.now = func() time.Time { return now }
	var got []time.Duration
	for i := 0; i < 8; i++ {
		got = append(got, f.delay("10.0.0.1"))
		f.fail("10.0.0.1")
	}
	want := []time.Duration{0, 0, 0, 0, 500 * time.Millisecond, time.Second, 1500 * time.Millisecond, 2 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays = %v, want %v", got, want)
		}
	}
	if d := f.delay("10.0.0.2"); d != 0 {
		t.Fatalf("another address is delayed %v", d)
	}
	now = now.Add(failureWindow + time.Second)
	if d := f.delay("10.0.0.1"); d != 0 {
		t.Fatalf("delay after the window = %v, want 0", d)
	}
	f.fail("10.0.0.1")
	f.succeed("10.0.0.1")
	if d := f.delay("10.0.0.1"); d != 0 {
		t.Fatalf("delay after a success = %v", d)
	}
}

// Silent connections are closed after LoginTimeout, and connections past
// the per-address limit are refused at once, so that a valid login still
// gets through.
func TestConnectionLimits(t *testing.T) {
	e := newEnv(t, 0, 0)
	scfg := e.config(filepath.Join(t.TempDir(), "key"))
	scfg.MaxConnsPerIP, scfg.LoginTimeout = 2, 3*time.Second
	srv, err := New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	addr := l.Addr().String()

	silent := make([]net.Conn, 3)
	for i := range silent {
		if silent[i], err = net.Dial("tcp", addr); err != nil {
			t.Fatal(err)
		}
		defer silent[i].Close()
	}
	// One of the three is over the per-address limit: closed without a
	// banner. The other two get the banner and are closed when
	// LoginTimeout passes without a login.
	refused := 0
	for i, c := range silent {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("connection %d not closed: %v", i, err)
		}
		if len(got) == 0 {
			refused++
		}
	}
	if refused != 1 {
		t.Fatalf("%d connections refused at once, want 1", refused)
	}
	cfg := &gossh.ClientConfig{User: "admin", Auth: []gossh.AuthMethod{gossh.Password(e.password)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second}
	c, err := gossh.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("a valid login after the silent ones were closed: %v", err)
	}
	c.Close()
}

// An interactive session left idle past IdleTimeout is closed.
func TestIdleSessionClosed(t *testing.T) {
	e := newEnv(t, 0, 0)
	scfg := e.config(filepath.Join(t.TempDir(), "key"))
	scfg.IdleTimeout = 500 * time.Millisecond
	srv, err := New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	cfg := &gossh.ClientConfig{User: "admin", Auth: []gossh.AuthMethod{gossh.Password(e.password)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second}
	c, err := gossh.Dial("tcp", l.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RequestPty("xterm", 24, 80, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	out, _ := s.StdoutPipe()
	stdin, _ := s.StdinPipe() // kept open: the session is idle, not ended
	defer stdin.Close()
	start := time.Now()
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	done := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(out); done <- b }()
	select {
	case b := <-done: // the server closed the idle session
		if !strings.Contains(string(b), "OVM> ") {
			t.Fatalf("no prompt before the close: %q", b)
		}
		if d := time.Since(start); d < 400*time.Millisecond {
			t.Fatalf("closed after %s, before the idle timeout", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an idle session was not closed")
	}
}
