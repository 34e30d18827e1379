package shell

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// outputModeRx finds showclisession's Output Mode in any output mode.
var outputModeRx = regexp.MustCompile(`Output Mode(?:\s*[|=]\s*|":"|">)(\w+)`)

// outputModeAtPrompt opens an interactive session on addr and returns the
// output mode it starts in (showclisession).
func (e *env) outputModeAtPrompt(t *testing.T, addr string) string {
	t.Helper()
	tc := e.openTerm(t, addr, 120, 40)
	tc.waitText("OVM> ", 1)
	tc.typeText("showclisession\r")
	out := tc.waitFor("showclisession's Output Mode", outputModeRx.MatchString)
	tc.typeText("exit\r")
	tc.waitEnd()
	return outputModeRx.FindStringSubmatch(out)[1]
}

// runOnTerm runs command as an exec request on a pseudo-terminal (ssh -t
// "command") and returns its output.
func (e *env) runOnTerm(t *testing.T, addr, command string) string {
	t.Helper()
	cfg := &gossh.ClientConfig{User: "admin", Auth: []gossh.AuthMethod{gossh.Password(e.password)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}
	c, err := gossh.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("ssh dial: %v", err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RequestPty("xterm", 24, 80, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	out, err := s.CombinedOutput(command)
	if err != nil {
		t.Fatalf("%q on a terminal: %v\n%s", command, err, out)
	}
	return string(out)
}

// A setting made by a one-off command or a script (set outputMode=Json,
// as output-formats.md's jq example does) lasts for that session only:
// the user's next interactive session starts as before. One made at the
// OVM> prompt is remembered for the user's later interactive sessions,
// in either editor, and exec sessions still start in Verbose.
func TestSettingsOfScriptsLastTheirSession(t *testing.T) {
	e := newEnv(t, 0, 0)
	addr, _ := e.serveWith(func(c *Config) { c.PromptCommand = frontEnd(roleRealPrompt) })

	if out := e.mustRun("set outputMode=Json; showversion"); !strings.Contains(out, `{"command":"showversion","status":"Success"`) {
		t.Fatalf("exec in Json:\n%s", out)
	}
	if got := e.outputModeAtPrompt(t, addr); got != "Table" {
		t.Fatalf("after an exec's set outputMode=Json, an interactive session starts in %s, want Table", got)
	}
	if out, st := e.batch("set outputMode=Xml\nshowversion\n"); st != 0 || !strings.Contains(out, "<command>showversion</command>") {
		t.Fatalf("batch in Xml: exit %d\n%s", st, out)
	}
	if got := e.outputModeAtPrompt(t, addr); got != "Table" {
		t.Fatalf("after a batch's set outputMode=Xml, an interactive session starts in %s, want Table", got)
	}
	if out := e.runOnTerm(t, addr, "set outputMode=Sparse; showversion"); !strings.Contains(out, "Agent API Version = ") {
		t.Fatalf("exec on a terminal in Sparse:\n%q", out)
	}
	if got := e.outputModeAtPrompt(t, addr); got != "Table" {
		t.Fatalf("after ssh -t \"set outputMode=Sparse\", an interactive session starts in %s, want Table", got)
	}
	if _, ok := e.mgr.UserSetting(context.Background(), "admin", "outputMode"); ok {
		t.Fatal("an exec or batch session's outputMode was remembered")
	}

	for _, c := range []struct{ editor, mode string }{{"prompt", "Sparse"}, {"simple", "Json"}} {
		t.Run("at the prompt, "+c.editor, func(t *testing.T) {
			// lineEditor is a choice for the next sessions: remembered from exec.
			e.mustRun("set lineEditor=" + c.editor)
			tc := e.openTerm(t, addr, 120, 40)
			tc.waitText("OVM> ", 1)
			tc.typeText("set outputMode=" + c.mode + "\r")
			tc.typeText("exit\r")
			tc.waitEnd()
			if got := e.outputModeAtPrompt(t, addr); got != c.mode {
				t.Fatalf("after set outputMode=%s at the prompt, the next interactive session starts in %s", c.mode, got)
			}
			if out := e.mustRun("showversion"); !strings.HasPrefix(out, "Command: showversion\nStatus: Success\n") {
				t.Fatalf("an exec session after it does not start in Verbose:\n%s", out)
			}
		})
	}
}
