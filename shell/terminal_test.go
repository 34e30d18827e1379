package shell

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"xenmanager/backend"
	"xenmanager/commands"
	"xenmanager/shell/prompt"
	"xenmanager/shell/termproto"
)

// The test binary doubles as the front-end of interactive sessions: a
// server configured with frontEnd(role) starts it as
// "<test binary> frontend <role>", and TestMain runs that role instead of
// the tests. (The manager gives the front-end a minimal environment, so the
// role travels in the arguments.)
const (
	roleRealPrompt   = "prompt"  // the real front-end, prompt.Main
	rolePlantedFault = "planted" // answers hello, draws a prompt, panics on the first line typed
)

func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == "frontend" {
		switch os.Args[2] {
		case roleRealPrompt:
			os.Exit(prompt.Main())
		case rolePlantedFault:
			plantedFaultFrontEnd()
		}
		os.Exit(2)
	}
	os.Exit(m.Run())
}

// frontEnd is the PromptCommand that runs this test binary in role.
func frontEnd(role string) []string { return []string{os.Args[0], "frontend", role} }

// plantedFaultFrontEnd is a front-end with a fault: it greets the manager,
// draws a prompt, and panics on the first line typed, as a bug in go-prompt
// would, with the Go runtime's trace on its standard error.
func plantedFaultFrontEnd() {
	f := os.NewFile(prompt.SocketFD, "manager")
	c, err := net.FileConn(f)
	if err != nil {
		os.Exit(2)
	}
	conn := termproto.NewConn(c)
	if conn.Send(termproto.Msg{Op: termproto.OpHello}) != nil {
		os.Exit(2)
	}
	if _, err := conn.Recv(); err != nil {
		os.Exit(2)
	}
	os.Stdout.WriteString("OVM> ")
	bufio.NewReader(os.Stdin).ReadString('\n')
	panic("a fault planted by the test")
}

// logBuffer is a manager log the test reads; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serveWith starts a second SSH server on the env's manager, with the
// changes edit makes to its configuration, and returns its address and log.
func (e *env) serveWith(edit func(*Config)) (addr string, log *logBuffer) {
	e.t.Helper()
	log = &logBuffer{}
	cfg := e.config()
	cfg.Logger = slog.New(slog.NewTextHandler(log, nil))
	if edit != nil {
		edit(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	go srv.Serve(l)
	e.t.Cleanup(func() { srv.Close() })
	return l.Addr().String(), log
}

// termClient is an SSH session on a pseudo-terminal, as a person or an
// expect script has it: it types, and waits for what the screen shows.
type termClient struct {
	t     *testing.T
	sess  *gossh.Session
	stdin io.WriteCloser
	out   *logBuffer // everything the client received, stdout and stderr
	ended chan error // the session's end (Wait's result)
}

// openTerm opens a session on addr with a pty of width x height (0 x 0 is
// a terminal that reports no size, as expect's) and starts the shell.
func (e *env) openTerm(t *testing.T, addr string, width, height int) *termClient {
	t.Helper()
	return e.openTermFrom(t, "127.0.0.1", addr, width, height)
}

// openTermFrom is openTerm from the loopback address src.
func (e *env) openTermFrom(t *testing.T, src, addr string, width, height int) *termClient {
	t.Helper()
	c, err := sshFrom(src, addr, "admin", gossh.Password(e.password))
	if err != nil {
		t.Fatalf("ssh dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RequestPty("xterm", height, width, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	tc := &termClient{t: t, sess: s, out: &logBuffer{}, ended: make(chan error, 1)}
	s.Stdout, s.Stderr = tc.out, tc.out
	if tc.stdin, err = s.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	go func() { tc.ended <- s.Wait() }()
	return tc
}

// typeText sends keys as typed.
func (tc *termClient) typeText(s string) {
	tc.t.Helper()
	if _, err := io.WriteString(tc.stdin, s); err != nil {
		tc.t.Fatalf("type %q: %v", s, err)
	}
}

// waitFor polls what the client received until match holds (a bounded
// wait on a condition) and returns it.
func (tc *termClient) waitFor(what string, match func(string) bool) string {
	tc.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := tc.out.String()
		if match(s) {
			return s
		}
		if time.Now().After(deadline) {
			tc.t.Fatalf("the client never received %s; it has:\n%q", what, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitText waits until the client received text, at least n times in all.
func (tc *termClient) waitText(text string, n int) string {
	tc.t.Helper()
	return tc.waitFor(fmt.Sprintf("%q (%d times)", text, n), func(s string) bool { return strings.Count(s, text) >= n })
}

// waitEnd waits for the server to end the session and returns its exit
// status (-1 when it sent none).
func (tc *termClient) waitEnd() int {
	tc.t.Helper()
	select {
	case err := <-tc.ended:
		if err == nil {
			return 0
		}
		if ee, ok := err.(*gossh.ExitError); ok {
			return ee.ExitStatus()
		}
		return -1
	case <-time.After(20 * time.Second):
		tc.t.Fatalf("the session did not end; the client has:\n%q", tc.out.String())
		return -1
	}
}

// panicWriter is the output of a command session that panics when a
// command's output names trigger: a fault planted in the session's own
// goroutine, as a bug in a command would be.
type panicWriter struct {
	io.Writer
	trigger string
}

func (w panicWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(w.trigger)) {
		panic("a fault planted by the test")
	}
	return w.Writer.Write(p)
}

// plantSessionFault makes every command session of cfg panic when a
// command's output mentions trigger.
func (e *env) plantSessionFault(cfg *Config, trigger string) {
	cfg.NewSession = func(ctx context.Context, reg *commands.Registry, actor backend.Actor, out io.Writer, opts commands.Options) *commands.Session {
		return commands.NewSession(ctx, reg, e.mgr, actor, panicWriter{Writer: out, trigger: trigger}, opts)
	}
}

// nonBlankLines are the lines of s that hold more than blanks.
func nonBlankLines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.ReplaceAll(s, "\r", ""), "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// showsTrace reports whether s holds a Go panic or a goroutine trace.
func showsTrace(s string) bool {
	return strings.Contains(s, "goroutine ") || strings.Contains(s, "panic:") || strings.Contains(s, ".go:")
}
