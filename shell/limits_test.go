package shell

import (
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// The back-off grows per address and per user, each capped, and a success
// clears only the failures of that user from that address.
func TestLoginFailureBackoff(t *testing.T) {
	type attempt struct {
		user, addr string
		ok         bool // a success; else a failure
	}
	fails := func(user, addr string, n int) []attempt {
		var as []attempt
		for range n {
			as = append(as, attempt{user, addr, false})
		}
		return as
	}
	tests := []struct {
		name       string
		before     []attempt
		user, addr string
		want       time.Duration
	}{
		{"nothing failed", nil, "admin", "10.0.0.1", 0},
		{"typos are free", fails("admin", "10.0.0.1", freeFailures), "admin", "10.0.0.1", 0},
		{"one failure past the free ones", fails("admin", "10.0.0.1", freeFailures+1), "admin", "10.0.0.1", failureStep},
		{"per address: another user from the address", fails("admin", "10.0.0.1", freeFailures+4), "viewer", "10.0.0.1", 4 * failureStep},
		{"per address: capped", fails("admin", "10.0.0.1", 100), "viewer", "10.0.0.1", maxAddressDelay},
		{"per user: the user from another address", fails("admin", "10.0.0.1", freeFailures+2), "admin", "10.0.0.9", 2 * failureStep},
		{"per user: capped lower than per address", fails("admin", "10.0.0.1", 100), "admin", "10.0.0.9", maxUserDelay},
		{"per user: spread over many addresses", func() []attempt {
			var as []attempt
			for i := range 8 {
				as = append(as, attempt{"admin", fmt.Sprintf("10.0.1.%d", i), false})
			}
			return as
		}(), "admin", "10.0.0.9", 5 * failureStep},
		{"neither the user nor the address", fails("admin", "10.0.0.1", 100), "viewer", "10.0.0.9", 0},
		{"another user's success from the address clears nothing",
			append(fails("admin", "10.0.0.1", freeFailures+4), attempt{"viewer", "10.0.0.1", true}), "admin", "10.0.0.1", 4 * failureStep},
		{"the user's success from another address clears nothing of this one",
			append(fails("admin", "10.0.0.1", freeFailures+4), attempt{"admin", "10.0.0.9", true}), "admin", "10.0.0.1", 4 * failureStep},
		{"the user's success from the address clears its typos",
			append(fails("admin", "10.0.0.1", freeFailures+4), attempt{"admin", "10.0.0.1", true}), "admin", "10.0.0.1", 0},
		{"and only those: the address keeps what was failed on others",
			append(append(fails("root", "10.0.0.1", freeFailures+2), fails("admin", "10.0.0.1", 2)...), attempt{"admin", "10.0.0.1", true}),
			"admin", "10.0.0.1", 2 * failureStep},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newLoginFailures()
			now := time.Unix(1000, 0)
			f.now = func() time.Time { return now }
			for _, a := range tc.before {
				if a.ok {
					f.succeed(a.user, a.addr)
				} else {
					f.fail(a.user, a.addr)
				}
				now = now.Add(time.Second)
			}
			if got := f.delay(tc.user, tc.addr); got != tc.want {
				t.Fatalf("delay(%s, %s) = %v, want %v", tc.user, tc.addr, got, tc.want)
			}
			// Everything is forgotten once the window has passed.
			now = now.Add(failureWindow + time.Second)
			if got := f.delay(tc.user, tc.addr); got != 0 {
				t.Fatalf("delay after the window = %v, want 0", got)
			}
		})
	}
}

// Silent connections are closed after LoginTimeout, and connections past
// the per-address limit are refused at once, so that a valid login still
// gets through.
func TestConnectionLimits(t *testing.T) {
	e := newEnv(t, 0, 0)
	scfg := e.config()
	scfg.Limits.StartupsPerAddress, scfg.LoginTimeout = 2, 3*time.Second
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
	scfg := e.config()
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

// OpenSSH's MaxStartups: never below start, always from full, in between
// a probability rising linearly from rate % (checked over many rolls of a
// seeded generator, so the outcome is the same at every run).
func TestStartupsDropDecision(t *testing.T) {
	st := Startups{Start: 10, Rate: 30, Full: 100}
	tests := []struct {
		open int
		want float64 // share of connections refused
	}{
		{0, 0}, {9, 0}, {10, 0.30}, {55, 0.65}, {90, 0.92}, {99, 0.99}, {100, 1}, {500, 1},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range tests {
		const rolls = 20000
		dropped := 0
		for range rolls {
			if st.drop(tc.open, rng.IntN(100)) {
				dropped++
			}
		}
		got := float64(dropped) / rolls
		if math.Abs(got-tc.want) > 0.015 {
			t.Errorf("%d open: %.3f of new connections refused, want %.3f", tc.open, got, tc.want)
		}
	}
	// The bounds are exact, whatever the roll.
	for roll := range 100 {
		if st.drop(9, roll) || !st.drop(100, roll) || (st.drop(10, roll) != (roll < 30)) {
			t.Fatalf("roll %d: wrong decision at a bound", roll)
		}
	}
	// One number: everything up to it, nothing past it.
	one := Startups{Start: 5, Rate: 100, Full: 5}
	if one.drop(4, 99) || !one.drop(5, 0) {
		t.Fatal("MaxStartups 5 does not admit 5 and refuse the sixth")
	}
}

func TestParseStartups(t *testing.T) {
	tests := []struct {
		in      string
		want    Startups
		wantErr string
	}{
		{"10:30:100", Startups{10, 30, 100}, ""},
		{" 1:0:1 ", Startups{1, 0, 1}, ""},
		{"50", Startups{50, 100, 50}, ""},
		{"10:30", Startups{}, "use start:rate:full"},
		{"a:b:c", Startups{}, "use start:rate:full"},
		{"", Startups{}, "use start:rate:full"},
		{"100:30:10", Startups{}, "start must not be above full"},
		{"10:130:100", Startups{}, "rate is a percentage"},
		{"0:30:100", Startups{}, "1 or more"},
	}
	for _, tc := range tests {
		got, err := ParseStartups(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseStartups(%q) = %v, %v; want an error saying %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseStartups(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if again, err := ParseStartups(got.String()); err != nil || again != got {
			t.Errorf("%v does not read back: %v, %v", got, again, err)
		}
	}
}

// The unauthenticated pool: a per-address cap, and a newcomer that the
// drop would refuse takes the place of the oldest connection of the
// address holding the most, if that one holds at least two more.
func TestStartupsAdmit(t *testing.T) {
	p := newStartups(Startups{Start: 4, Rate: 100, Full: 4}, 3)
	evicted := map[string]int{}
	admit := func(addr, name string) (*startupSlot, bool) {
		return p.admit(addr, func() { evicted[name]++ })
	}
	var a []*startupSlot
	for i := range 3 {
		s, ok := admit("10.0.0.1", fmt.Sprint("a", i))
		if !ok {
			t.Fatalf("connection %d of 10.0.0.1 refused under its cap", i)
		}
		a = append(a, s)
	}
	if _, ok := admit("10.0.0.1", "a3"); ok {
		t.Fatal("a fourth connection from 10.0.0.1 admitted past the per-address cap of 3")
	}
	if _, ok := admit("10.0.0.2", "b0"); !ok {
		t.Fatal("10.0.0.2 refused below Start")
	}
	// Full (4): 10.0.0.3 (0 open) takes the place of 10.0.0.1's oldest (3 open).
	if _, ok := admit("10.0.0.3", "c0"); !ok || evicted["a0"] != 1 || a[0].inPool {
		t.Fatalf("a newcomer from an idle address was refused instead of evicting the oldest of the busiest (evicted %v)", evicted)
	}
	// 10.0.0.1 holds 2 now and 10.0.0.2 and 10.0.0.3 one each: a
	// newcomer from 10.0.0.2 would hold 2, as many as the busiest; refused.
	if _, ok := admit("10.0.0.2", "b1"); ok {
		t.Fatal("a newcomer evicted a connection of an address no busier than its own would be")
	}
	// Leaving frees the place; leaving twice (or after an eviction) changes nothing.
	p.leave(a[0])
	p.leave(a[1])
	p.leave(a[1])
	if p.open != 3 {
		t.Fatalf("%d open after the leaves, want 3", p.open)
	}
	if _, ok := admit("10.0.0.2", "b1"); !ok {
		t.Fatal("refused below Full after a leave")
	}
}

// startServer starts an SSH server on the env's manager with the changes
// edit makes to its configuration and prep to the server before it serves;
// it returns the server and its address.
func (e *env) startServer(edit func(*Config), prep func(*Server)) (*Server, string) {
	e.t.Helper()
	cfg := e.config()
	if edit != nil {
		edit(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	if prep != nil {
		prep(srv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	go srv.Serve(l)
	e.t.Cleanup(func() { srv.Close() })
	return srv, l.Addr().String()
}

// dialFrom opens a TCP connection to addr from the loopback address src
// (Linux answers on the whole of 127/8).
func dialFrom(src, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	return d.Dial("tcp", addr)
}

// sshFrom logs in to addr from the loopback address src.
func sshFrom(src, addr, user string, auth gossh.AuthMethod) (*gossh.Client, error) {
	conn, err := dialFrom(src, addr)
	if err != nil {
		return nil, err
	}
	cfg := &gossh.ClientConfig{User: user, Auth: []gossh.AuthMethod{auth},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	c, chans, reqs, err := gossh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return gossh.NewClient(c, chans, reqs), nil
}

// eventually polls cond until it holds, or fails the test after a generous
// bounded wait.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Sessions are bounded per connection, per user and in all, each refused
// with a message saying which limit; a connection that logged in holds a
// slot until its first session; everything is given back as sessions and
// connections end.
func TestSessionLimits(t *testing.T) {
	e := newEnv(t, 0, 0)
	e.mustRun("create User name=viewer password=viewer-pw-1 role=Viewer")
	srv, addr := e.startServer(func(c *Config) {
		c.Limits = Limits{SessionsPerConn: 3, SessionsPerUser: 5, Sessions: 7}
	}, nil)
	login := func(user, password string) *gossh.Client {
		t.Helper()
		c, err := sshFrom("127.0.0.1", addr, user, gossh.Password(password))
		if err != nil {
			t.Fatalf("login %s: %v", user, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	open := func(c *gossh.Client, refusal string) *gossh.Session {
		t.Helper()
		s, err := c.NewSession()
		if refusal == "" {
			if err != nil {
				t.Fatalf("session refused: %v", err)
			}
			return s
		}
		if err == nil || !strings.Contains(err.Error(), refusal) {
			t.Fatalf("session: %v, want a refusal saying %q", err, refusal)
		}
		return nil
	}
	c1 := login("admin", e.password)
	var sessions []*gossh.Session
	for range 3 {
		sessions = append(sessions, open(c1, ""))
	}
	open(c1, "this connection has 3 sessions open, the most one connection may have; open another connection")
	// The sessions work: one runs a command.
	if out, err := sessions[0].CombinedOutput("showclisession"); err != nil || !strings.Contains(string(out), "admin") {
		t.Fatalf("a session within the limits: %v\n%s", err, out)
	}
	// A session that ended gives its slot back.
	eventually(t, "a slot comes back when a session ends", func() bool {
		s, err := c1.NewSession()
		if err == nil {
			sessions[0] = s
		}
		return err == nil
	})

	c2 := login("admin", e.password)
	open(c2, "")
	open(c2, "")
	open(c2, "user admin has 5 sessions open, the most one user may have; close one first")

	c3 := login("viewer", "viewer-pw-1") // holds a slot: 6 in all
	open(c3, "")                         // in that slot
	open(c3, "")                         // 7
	c4 := login("viewer", "viewer-pw-1") // logs in, but no slot is left
	open(c4, "the manager has 7 sessions open, the most it admits; try again later")

	for _, s := range sessions {
		s.Close()
	}
	c1.Close()
	c2.Close()
	c3.Close()
	c4.Close()
	eventually(t, "every slot is given back", func() bool {
		srv.slots.mu.Lock()
		defer srv.slots.mu.Unlock()
		return srv.slots.total == 0 && len(srv.slots.perUser) == 0
	})
}

// Silent connections from 10 addresses, as many as the pool takes (100,
// 10 per address) and hundreds more refused, do not keep an administrator
// out, by key or by password. (The old limits, 32 per address and 256 in
// all, counting connections that had logged in too, were full after 300
// such connections, and everyone was refused for the grace time.)
func TestUnauthenticatedFloodLeavesAdminIn(t *testing.T) {
	e := newEnv(t, 0, 0)
	signer := e.adminKey()
	srv, addr := e.startServer(nil, nil) // the default limits and login grace time (20 s)
	full := DefaultLimits().Startups.Full
	open := func() int {
		srv.startups.mu.Lock()
		defer srv.startups.mu.Unlock()
		return srv.startups.open
	}

	attempts := 0
	for ; open() < full; attempts++ {
		if attempts == 20000 {
			t.Fatalf("the pool of unauthenticated connections holds %d after %d attempts, not %d", open(), attempts, full)
		}
		c, err := dialFrom(fmt.Sprintf("127.0.0.%d", 2+attempts%10), addr)
		if err != nil {
			t.Fatal(err)
		}
		// The server speaks first: its version line on an admitted
		// connection, nothing on a refused one.
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Cleanup(func() { c.Close() })
		} else {
			c.Close()
		}
	}
	t.Logf("%d silent connections tried, %d held", attempts, open())
	for _, auth := range []gossh.AuthMethod{gossh.PublicKeys(signer), gossh.Password(e.password)} {
		c, err := sshFrom("127.0.0.1", addr, "admin", auth)
		if err != nil {
			t.Fatalf("the administrator cannot log in during the flood: %v", err)
		}
		out, err := func() ([]byte, error) {
			s, err := c.NewSession()
			if err != nil {
				return nil, err
			}
			defer s.Close()
			return s.CombinedOutput("showclisession")
		}()
		c.Close()
		if err != nil || !strings.Contains(string(out), "admin") {
			t.Fatalf("the administrator's session during the flood: %v\n%s", err, out)
		}
	}
}

// adminKey registers a new key for admin and returns its signer.
func (e *env) adminKey() gossh.Signer {
	e.t.Helper()
	pub, priv, err := ed25519.GenerateKey(crand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	sshPub, _ := gossh.NewPublicKey(pub)
	signer, _ := gossh.NewSignerFromKey(priv)
	// With a comment after it, a key ending in '/' does not escape the
	// closing quote (command-language.md).
	e.mustRun(`create SshKey name=admin-key key="` + strings.TrimSpace(string(gossh.MarshalAuthorizedKey(sshPub))) + ` admin@test"`)
	return signer
}

// waitRecord is one back-off wait the server asked for.
type waitRecord struct {
	user, addr string
	d          time.Duration
}

// The login back-off counts per user across addresses, a viewer's login
// does not clear what was failed on admin from the same address, and a
// key login is never delayed by password failures.
func TestPasswordBackoffPerUser(t *testing.T) {
	e := newEnv(t, 0, 0)
	e.mustRun("create User name=viewer password=viewer-pw-1 role=Viewer")
	signer := e.adminKey()

	var mu sync.Mutex
	var waits []waitRecord
	_, addr := e.startServer(nil, func(s *Server) {
		s.wait = func(ctx context.Context, d time.Duration) bool {
			sc := ctx.(ssh.Context)
			mu.Lock()
			defer mu.Unlock()
			waits = append(waits, waitRecord{sc.User(), sourceOf(sc.RemoteAddr()), d})
			return true // the delay is recorded, not served
		}
	})
	// attempt logs in and returns the waits it caused.
	attempt := func(src, user string, auth gossh.AuthMethod, wantOK bool) []waitRecord {
		t.Helper()
		mu.Lock()
		waits = nil
		mu.Unlock()
		c, err := sshFrom(src, addr, user, auth)
		if c != nil {
			c.Close()
		}
		if (err == nil) != wantOK {
			t.Fatalf("login of %s from %s: %v, want success %v", user, src, err, wantOK)
		}
		mu.Lock()
		defer mu.Unlock()
		return append([]waitRecord(nil), waits...)
	}
	for range freeFailures + 8 {
		attempt("127.0.0.2", "admin", gossh.Password("guess"), false)
	}
	// The viewer logs in from the attacker's address: that clears nothing of admin's.
	attempt("127.0.0.2", "viewer", gossh.Password("viewer-pw-1"), true)
	if w := attempt("127.0.0.2", "admin", gossh.Password("guess"), false); len(w) != 1 || w[0].d != 8*failureStep {
		t.Fatalf("admin's next guess from 127.0.0.2 after a viewer's login waited %v, want one wait of %v", w, 8*failureStep)
	}
	// From another address: the per-user count delays the guess, capped.
	if w := attempt("127.0.0.3", "admin", gossh.Password("guess"), false); len(w) != 1 || w[0].d != maxUserDelay {
		t.Fatalf("a guess at admin from a fresh address waited %v, want one wait of %v", w, maxUserDelay)
	}
	// A key login is never delayed, from the attacker's address either.
	if w := attempt("127.0.0.2", "admin", gossh.PublicKeys(signer), true); len(w) != 0 {
		t.Fatalf("a key login waited %v", w)
	}
	// And the real password still works, after the capped delay.
	if w := attempt("127.0.0.4", "admin", gossh.Password(e.password), true); len(w) != 1 || w[0].d > maxUserDelay {
		t.Fatalf("admin's password login waited %v, want one wait of at most %v", w, maxUserDelay)
	}
}

// stallingSigner holds a registered public key but never signs: its client
// asks whether the key would do (the server says yes), then, asked for the
// signature, reads its own connection until the server closes it or 15 s
// pass, and reports which on closed.
type stallingSigner struct {
	gossh.Signer
	conn   net.Conn
	closed chan error
}

func (s stallingSigner) Sign(io.Reader, []byte) (*gossh.Signature, error) {
	s.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err := s.conn.Read(make([]byte, 1))
	s.closed <- err
	return nil, errors.New("no signature")
}

// Asking whether a key would do is not logging in: a client that knows
// admin's public key (which is public) and stalls after the answer is
// still closed at the login grace time, and its slot in the
// unauthenticated pool is freed.
func TestKeyQueryIsNotALogin(t *testing.T) {
	e := newEnv(t, 0, 0)
	signer := e.adminKey()
	srv, addr := e.startServer(func(c *Config) { c.LoginTimeout = time.Second }, nil)

	conn, err := dialFrom("127.0.0.1", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stall := stallingSigner{Signer: signer, conn: conn, closed: make(chan error, 1)}
	cfg := &gossh.ClientConfig{User: "admin", Auth: []gossh.AuthMethod{gossh.PublicKeys(stall)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey()}
	go gossh.NewClientConn(conn, addr, cfg)
	if err := <-stall.closed; err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the server did not close a connection that only asked about a key (read: %v)", err)
	}
	eventually(t, "the unauthenticated pool is empty", func() bool {
		srv.startups.mu.Lock()
		defer srv.startups.mu.Unlock()
		return srv.startups.open == 0
	})
}

func TestSourceOf(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"10.1.2.3:22", "10.1.2.3"},
		{"[::ffff:10.1.2.3]:22", "10.1.2.3"},
		{"[2001:db8:1:2:a:b:c:d]:22", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2::ffff]:22", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:22", "fe80::/64"},
		{"not an address", "not an address"},
	}
	for _, tc := range tests {
		if got := sourceOf(fakeAddr(tc.addr)); got != tc.want {
			t.Errorf("sourceOf(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

// fakeAddr is a net.Addr of any text.
type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }

// A password login that waits (its back-off here; its turn at bcrypt,
// backend's password slots, likewise) ends its wait when the server closes
// the connection at the login grace time: gliderlabs/ssh ends the
// connection's context when the handshake's read fails on the closed
// connection, so the wait does not outlive it.
func TestPasswordWaitEndsWithTheConnection(t *testing.T) {
	e := newEnv(t, 0, 0)
	ended := make(chan error, 1)
	_, addr := e.startServer(func(c *Config) { c.LoginTimeout = time.Second }, func(s *Server) {
		s.wait = func(ctx context.Context, d time.Duration) bool {
			<-ctx.Done() // never served: only the connection's end may stop it
			ended <- ctx.Err()
			return false
		}
	})
	for range freeFailures + 1 { // the next one waits
		if c, err := sshFrom("127.0.0.2", addr, "admin", gossh.Password("guess")); err == nil {
			c.Close()
			t.Fatal("a wrong password logged in")
		}
	}
	if c, err := sshFrom("127.0.0.2", addr, "admin", gossh.Password(e.password)); err == nil {
		c.Close()
		t.Fatal("a login whose back-off was never served logged in")
	}
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the wait ended with %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the back-off wait outlived its connection, closed at the 1 s login grace time")
	}
}
