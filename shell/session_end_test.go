package shell

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// osThreads is the number of OS threads of this process, where the
// manager's SSH server runs.
func osThreads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("/proc/self/status: %q", line)
			}
			return n
		}
	}
	t.Fatal("/proc/self/status has no Threads line")
	return 0
}

// maxExtraThreads is how many more OS threads than before the process may
// keep once sessions have ended: the Go runtime keeps the idle threads it
// made, but no session may hold one for its whole life.
const maxExtraThreads = 16

// frontEnds is how many front-end processes the server runs.
func (s *Server) frontEnds() int {
	s.children.mu.Lock()
	defer s.children.mu.Unlock()
	return len(s.children.procs)
}

// Interactive sessions hold no OS thread while they run, and leave none
// behind: 24 front-end sessions open at once, then ended, leave the process
// with at most maxExtraThreads more threads than before. Each used to hold
// two for its whole life, one blocked in waitid for its front-end process
// and one in a blocking read of its pty master, and the runtime kept them.
func TestSessionThreadsReleased(t *testing.T) {
	e := newEnv(t, 0, 0)
	srv, addr := e.startServer(func(c *Config) { c.PromptCommand = frontEnd(roleRealPrompt) }, nil)
	warm := e.openTerm(t, addr, 80, 24)
	warm.waitText("OVM> ", 1)
	warm.typeText("exit\r")
	warm.waitEnd()
	before := osThreads(t)

	var terms []*termClient
	for range 24 {
		terms = append(terms, e.openTerm(t, addr, 80, 24))
	}
	for _, tc := range terms {
		tc.waitText("OVM> ", 1)
	}
	during := osThreads(t)
	for _, tc := range terms {
		tc.typeText("exit\r")
	}
	for _, tc := range terms {
		if st := tc.waitEnd(); st != 0 {
			t.Fatalf("a session ended with status %d", st)
		}
	}
	eventually(t, "every front-end process ended", func() bool { return srv.frontEnds() == 0 })
	after := osThreads(t)
	t.Logf("OS threads: %d before, %d with 24 sessions open, %d after", before, during, after)
	if during > before+maxExtraThreads || after > before+maxExtraThreads {
		t.Fatalf("OS threads: %d before, %d with 24 sessions open, %d after; want at most %d more",
			before, during, after, maxExtraThreads)
	}
}

// A session ends with its channel, even while its connection lives on (a
// client multiplexing sessions on one connection): its front-end process
// is ended and its slot given back.
func TestSessionEndsWithItsChannel(t *testing.T) {
	e := newEnv(t, 0, 0)
	srv, addr := e.startServer(func(c *Config) { c.PromptCommand = frontEnd(roleRealPrompt) }, nil)
	tc := e.openTerm(t, addr, 80, 24)
	tc.waitText("OVM> ", 1)
	if srv.frontEnds() != 1 {
		t.Fatalf("%d front-ends run, want 1", srv.frontEnds())
	}
	tc.sess.Close() // the channel only; the connection stays
	eventually(t, "the front-end of a closed session ended", func() bool { return srv.frontEnds() == 0 })
	eventually(t, "the session's slot is back (the connection keeps one)", func() bool {
		srv.slots.mu.Lock()
		defer srv.slots.mu.Unlock()
		return srv.slots.total == 1
	})
}
