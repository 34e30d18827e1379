package shell

import (
	"strings"
	"testing"

	"github.com/gliderlabs/ssh"
)

// A terminal that reports no size (0 x 0: expect's, whose pty nobody
// sized) gets 80 x 24 in both editors: the prompt is drawn, commands echo
// on one line and run, as scripts written for OVM's CLI expect.
func TestTerminalWithoutSize(t *testing.T) {
	e := newEnv(t, 0, 0)
	for _, editor := range []struct {
		name  string
		front []string
	}{{"prompt", frontEnd(roleRealPrompt)}, {"simple", nil}} {
		t.Run(editor.name, func(t *testing.T) {
			addr, _ := e.serveWith(func(c *Config) { c.PromptCommand = editor.front })
			tc := e.openTerm(t, addr, 0, 0)
			tc.waitText("OVM> ", 1)
			tc.typeText("showversion\r")
			tc.waitFor("the next prompt", func(s string) bool {
				_, after, ok := strings.Cut(s, "Agent API Version")
				return ok && strings.Contains(after, "OVM> ")
			})
			if err := tc.sess.WindowChange(0, 0); err != nil {
				t.Fatal(err)
			}
			tc.typeText("showclisession\r")
			tc.waitText("Output Mode", 1)
			tc.typeText("exit\r")
			if st := tc.waitEnd(); st != 0 {
				t.Errorf("exit status %d, want 0", st)
			}
			out := tc.out.String()
			if strings.Contains(out, "too small") {
				t.Fatalf("the front-end found the window too small:\n%q", out)
			}
			for _, typed := range []string{"showversion", "showclisession"} {
				if !strings.Contains(out, typed) {
					t.Fatalf("%q was not echoed on one line:\n%q", typed, out)
				}
			}
		})
	}
}

// Each dimension a client reports is clamped on its own: 0 (unknown) is
// 80 columns or 24 rows, past the bound is the bound.
func TestClampWindow(t *testing.T) {
	for _, c := range []struct{ in, want ssh.Window }{
		{ssh.Window{Width: 0, Height: 0}, ssh.Window{Width: 80, Height: 24}},
		{ssh.Window{Width: 132, Height: 0}, ssh.Window{Width: 132, Height: 24}},
		{ssh.Window{Width: 0, Height: 50}, ssh.Window{Width: 80, Height: 50}},
		{ssh.Window{Width: 1, Height: 1}, ssh.Window{Width: 1, Height: 1}},
		{ssh.Window{Width: 65536, Height: 1 << 31}, ssh.Window{Width: maxWindowCols, Height: maxWindowRows}},
		{ssh.Window{Width: -5, Height: -1}, ssh.Window{Width: 80, Height: 24}},
	} {
		if got := clampWindow(c.in); got != c.want {
			t.Errorf("clampWindow(%+v) = %+v, want %+v", c.in, got, c.want)
		}
	}
}
