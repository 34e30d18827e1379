package shell

import (
	"strings"
	"testing"
)

// faultMessage is what a client is told when its session ends on a fault.
const faultMessage = "this session ended on an internal fault"

// A client may report any window size (SSH carries 32 bits): one far past
// what a terminal has, at the start or on a resize, is clamped, and both
// editors go on drawing and running commands.
func TestHugeWindowIsClamped(t *testing.T) {
	e := newEnv(t, 0, 0)
	for _, editor := range []struct {
		name  string
		front []string
	}{{"prompt", frontEnd(roleRealPrompt)}, {"simple", nil}} {
		t.Run(editor.name, func(t *testing.T) {
			addr, log := e.serveWith(func(c *Config) { c.PromptCommand = editor.front })
			tc := e.openTerm(t, addr, 65536, 65536)
			tc.waitText("OVM> ", 1)
			tc.typeText("showversion\r")
			tc.waitText("Agent API Version", 1)
			if err := tc.sess.WindowChange(24, 1<<31); err != nil {
				t.Fatal(err)
			}
			tc.typeText("showclisession\r")
			tc.waitText("Output Mode", 1)
			tc.typeText("exit\r")
			if st := tc.waitEnd(); st != 0 {
				t.Errorf("exit status %d, want 0", st)
			}
			if out := tc.out.String(); showsTrace(out) || strings.Contains(out, faultMessage) {
				t.Fatalf("the client saw a fault:\n%s", out)
			}
			if strings.Contains(log.String(), "fault") {
				t.Fatalf("the manager logged a fault:\n%s", log)
			}
		})
	}
}

// A front-end process that panics ends its session with one line to the
// client and the trace in the manager's log; the manager and another
// session go on.
func TestFrontEndFaultEndsOnlyItsSession(t *testing.T) {
	e := newEnv(t, 0, 0)
	addr, log := e.serveWith(func(c *Config) { c.PromptCommand = frontEnd(rolePlantedFault) })
	other := e.openTerm(t, e.sshAddr, 80, 24)
	other.waitText("OVM> ", 1)

	tc := e.openTerm(t, addr, 80, 24)
	tc.waitText("OVM> ", 1)
	tc.typeText("list Vm\r")
	tc.waitEnd()
	out := tc.out.String()
	if showsTrace(out) {
		t.Fatalf("the front-end's trace reached the client:\n%s", out)
	}
	if after := nonBlankLines(out[strings.Index(out, "list Vm")+len("list Vm"):]); len(after) != 1 || !strings.Contains(after[0], faultMessage) {
		t.Fatalf("the client was not told in one line that the session ended:\n%q", out)
	}
	if l := log.String(); !strings.Contains(l, "front-end") || !strings.Contains(l, "a fault planted by the test") || !strings.Contains(l, "goroutine") {
		t.Fatalf("the manager's log lacks the front-end's fault and trace:\n%s", l)
	}

	other.typeText("showversion\r")
	other.waitText("Agent API Version", 1)
	if out, st := e.run("showversion"); st != 0 {
		t.Fatalf("the manager stopped serving: exit %d\n%s", st, out)
	}
}

// A panic in the manager's side of a session (a command, completion) ends
// that session with one line to the client and a log entry with the
// trace, whatever the kind of session; the manager and other sessions go
// on.
func TestSessionFaultEndsOnlyItsSession(t *testing.T) {
	e := newEnv(t, 0, 0)
	const trigger = "name=plantfault"
	addr, log := e.serveWith(func(c *Config) {
		c.PromptCommand = frontEnd(roleRealPrompt)
		e.plantSessionFault(c, trigger)
	})
	other := e.openTerm(t, e.sshAddr, 80, 24)
	other.waitText("OVM> ", 1)
	checkLogged := func(t *testing.T, entries int) {
		t.Helper()
		l := log.String()
		if strings.Count(l, "session fault") != entries || !strings.Contains(l, "a fault planted by the test") || !strings.Contains(l, "goroutine") {
			t.Fatalf("the manager's log lacks the fault (%d entries expected):\n%s", entries, l)
		}
	}

	t.Run("exec", func(t *testing.T) {
		out, st := e.sessionAt(addr, "list Vm "+trigger, nil)
		if st != 1 || showsTrace(out) || strings.TrimSpace(out) != "xenmanager: "+faultMessage+"; the manager's log has the cause." {
			t.Fatalf("exit %d, output:\n%q", st, out)
		}
		checkLogged(t, 1)
	})
	t.Run("batch", func(t *testing.T) {
		out, st := e.sessionAt(addr, "", strings.NewReader("showversion\nlist Vm "+trigger+"\nshowversion\n"))
		if st != 1 || showsTrace(out) || strings.Count(out, "Agent API Version") != 1 || !strings.HasSuffix(out, faultMessage+"; the manager's log has the cause.\n") {
			t.Fatalf("exit %d, output:\n%q", st, out)
		}
		checkLogged(t, 2)
	})
	for i, c := range []struct{ name, editor string }{{"prompt", "prompt"}, {"simple editor", "simple"}} {
		t.Run(c.name, func(t *testing.T) {
			e.mustRun("set lineEditor=" + c.editor)
			tc := e.openTerm(t, addr, 80, 24)
			tc.waitText("OVM> ", 1)
			tc.typeText("list Vm " + trigger + "\r")
			tc.waitEnd()
			if out := tc.out.String(); showsTrace(out) || !strings.Contains(out, faultMessage) {
				t.Fatalf("the client got:\n%q", out)
			}
			checkLogged(t, 3+i)
		})
	}
	e.mustRun("set lineEditor=prompt")

	other.typeText("showversion\r")
	other.waitText("Agent API Version", 1)
	if out, st := e.sessionAt(addr, "showversion", nil); st != 0 {
		t.Fatalf("the manager stopped serving: exit %d\n%s", st, out)
	}
}
