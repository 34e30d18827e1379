package shell

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// A setup slot is given back by its release, once however often it is
// called, by itself after its hold, and a wait for one ends with its
// context.
func TestSetupSlots(t *testing.T) {
	s := newSetupSlots(1)
	release, ok := s.take(context.Background())
	if !ok {
		t.Fatal("no slot in an empty pool")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := s.take(ctx); ok {
		t.Fatal("a second slot of one was given")
	}
	release()
	release() // a second release gives back nothing more
	r2, ok := s.take(context.Background())
	if !ok {
		t.Fatal("no slot after the release")
	}
	if _, ok := s.take(ctx); ok {
		t.Fatal("a release given twice freed two slots")
	}
	r2()

	s.hold = time.Millisecond
	if _, ok := s.take(context.Background()); !ok { // never released by hand
		t.Fatal("no slot in an empty pool")
	}
	if !s.do(context.Background(), func() {}) { // waits for the hold to pass
		t.Fatal("the slot held past its hold was not given back")
	}
}

// With every setup slot taken, a key login, a password login and an
// interactive session's first prompt wait for one, while an exec session
// (which starts no front-end) does not; all go on once a slot is free.
func TestSessionSetupsQueue(t *testing.T) {
	e := newEnv(t, 0, 0)
	signer := e.adminKey()
	srv, addr := e.startServer(func(c *Config) { c.Limits.SessionSetups = 1 }, nil)
	c, err := sshFrom("127.0.0.2", addr, "admin", gossh.Password(e.password))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	release, ok := srv.setups.take(context.Background())
	if !ok {
		t.Fatal("no setup slot")
	}
	released := false
	defer func() {
		if !released {
			release()
		}
	}()

	// The logins wait for their checks' slots.
	loginsDone := make(chan error, 2)
	for i, auth := range []gossh.AuthMethod{gossh.PublicKeys(signer), gossh.Password(e.password)} {
		go func() {
			c, err := sshFrom(fmt.Sprintf("127.0.0.%d", 3+i), addr, "admin", auth)
			if err == nil {
				c.Close()
			}
			loginsDone <- err
		}()
	}

	// An exec session does not wait.
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := s.CombinedOutput("showclisession"); err != nil || !strings.Contains(string(out), "admin") {
		t.Fatalf("an exec session while the setup slots are taken: %v\n%s", err, out)
	}
	s.Close()

	// An interactive session waits for its setup slot: no prompt yet.
	s, err = c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestPty("xterm", 24, 80, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	out, _ := s.StdoutPipe()
	stdin, _ := s.StdinPipe()
	defer stdin.Close()
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	first := make(chan string, 1)
	go func() {
		b := make([]byte, 64)
		n, _ := io.ReadAtLeast(out, b, len("OVM> "))
		first <- string(b[:n])
	}()
	select {
	case err := <-loginsDone:
		t.Fatalf("a login was checked without a setup slot (err %v)", err)
	case got := <-first:
		t.Fatalf("an interactive session set up without a setup slot: %q", got)
	default:
	}

	release()
	released = true
	select {
	case got := <-first:
		if !strings.Contains(got, "OVM> ") {
			t.Fatalf("the interactive session's first output is %q, want its prompt", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no prompt after the setup slot was freed")
	}
	for range 2 {
		select {
		case err := <-loginsDone:
			if err != nil {
				t.Fatalf("a login after the setup slot was freed: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a login never ended after the setup slot was freed")
		}
	}
}
