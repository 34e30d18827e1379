package commands

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"xenmanager/backend"
)

// newTestSession is a session of reg without a manager core, printing to
// out in Verbose: enough for the commands that need no backend (help,
// showcustomcmds, set ...).
func newTestSession(reg *Registry, out io.Writer) *Session {
	return NewSession(context.Background(), reg, nil, backend.Actor{User: "tester"}, out,
		Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// TestSessionFramesAndEndsEachCommand: help and the commands that report a
// code from their handler print the Command/Status/Time frame and end with
// the exit status of their code, whether the parser or a handler found it.
func TestSessionFramesAndEndsEachCommand(t *testing.T) {
	tests := []struct {
		line string
		want Outcome
		code Code   // on failure
		msg  string // a part of the Error Msg line, or of the data
	}{
		{line: "help", want: OK, msg: "  Commands (help <command> for more"},
		{line: "help start", want: OK, msg: "  start: Start an object.\n    Vm "},
		{line: "help start Vm", want: OK, msg: "  Usage: start Vm [<instance>] [<filter> ...] [multiple=Yes|No]"},
		{line: "HELP START vm", want: OK, msg: "  Usage: start Vm [<instance>] [<filter> ...] [multiple=Yes|No]"},
		{line: "help showversion", want: OK, msg: "  Usage: showversion"},
		{line: "start Vm ?", want: OK, msg: "  Usage: start Vm [<instance>] [<filter> ...] [multiple=Yes|No]"},
		{line: "list ?", want: OK, msg: "  list: List objects of a type"},
		{line: "showcustomcmds Vm", want: OK, msg: "  start Vm = start Vm [<instance>] [<filter> ...] [multiple=Yes|No]"},
		{line: "help strat", want: ParseFailed, code: CodeUnknownCommand, msg: "unknown command 'strat'; did you mean 'start'?"},
		{line: "help frobnicate", want: ParseFailed, code: CodeUnknownCommand, msg: "type help for the list of commands"},
		{line: "help start Server", want: ParseFailed, code: CodeUnknownType, msg: "start does not act on 'Server'; object types accepted: Vm"},
		{line: "help start Vmm", want: ParseFailed, code: CodeUnknownType, msg: "did you mean 'Vm'?"},
		{line: "help showversion Vm", want: ParseFailed, code: CodeUnknownType, msg: "showversion takes no object type"},
		{line: "help start Vm name=web1", want: ParseFailed, code: CodeSyntax, msg: "help takes at most a verb and an object type"},
		{line: "showcustomcmds", want: ParseFailed, code: CodeUnknownType, msg: "showcustomcmds needs an object type: ServerPool, "},
		{line: "showcustomcmds Vmm", want: ParseFailed, code: CodeUnknownType, msg: "unknown object type 'Vmm'; did you mean 'Vm'?"},
		{line: "showcustomcmds Vm Server", want: ParseFailed, code: CodeSyntax, msg: "showcustomcmds takes one object type"},
		{line: "set", want: ParseFailed, code: CodeMissingAttribute, msg: "set needs at least one of: outputMode"},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			var out bytes.Buffer
			got := newTestSession(Default, &out).RunLine(context.Background(), tc.line)
			if got != tc.want {
				t.Errorf("outcome %v (exit %d), want %v (exit %d)\n%s", got, got.ExitStatus(), tc.want, tc.want.ExitStatus(), out.String())
			}
			status := "Success"
			if tc.code != "" {
				status = "Failure"
			}
			header := "Command: " + tc.line + "\nStatus: " + status + "\nTime: "
			if !strings.HasPrefix(out.String(), header) {
				t.Errorf("output does not begin with the frame %q\n%s", header, out.String())
			}
			if tc.code != "" && !strings.Contains(out.String(), "\nError Msg: "+string(tc.code)+": ") {
				t.Errorf("output lacks Error Msg: %s\n%s", tc.code, out.String())
			}
			if !strings.Contains(out.String(), tc.msg) {
				t.Errorf("output lacks %q\n%s", tc.msg, out.String())
			}
		})
	}
}

// TestEveryCodeEndsAsDocumented: a command that fails with a code ends the
// session with that code's exit status in the reference (CodeInfo), whoever
// found the failure: 2 for the parse codes, 3 for XM_0403E, 1 otherwise.
func TestEveryCodeEndsAsDocumented(t *testing.T) {
	reg := newRegistry()
	reg.add(&VerbInfo{Name: "fail", Help: "Fail with a code.", Specs: []*Spec{{
		Help:  "Fail with the code given.",
		Attrs: []Attr{{Name: "code", Kind: AttrString, Required: true, Help: "the code"}},
		Run: func(_ context.Context, x *Exec) (*Result, error) {
			return nil, failf(Code(x.Str("code")), "failed as asked")
		},
	}}})
	for _, ci := range Codes {
		t.Run(string(ci.Code), func(t *testing.T) {
			want := 1
			switch {
			case ci.Parse:
				want = 2
			case ci.Code == CodePermission:
				want = 3
			}
			if ci.ExitStatus() != want {
				t.Errorf("the reference gives exit status %d, want %d", ci.ExitStatus(), want)
			}
			var out bytes.Buffer
			got := newTestSession(reg, &out).RunLine(context.Background(), "fail code="+string(ci.Code))
			if got.ExitStatus() != ci.ExitStatus() {
				t.Errorf("a handler's %s ends the session with exit status %d; the reference says %d\n%s", ci.Code, got.ExitStatus(), ci.ExitStatus(), out.String())
			}
		})
	}
}

// The error table of docs/command-language.md gives every code with the
// exit status of the reference (CodeInfo), which the generated reference
// prints: the hand-written page cannot drift from the code.
func TestCommandLanguageErrorTable(t *testing.T) {
	page, err := os.ReadFile("../docs/command-language.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(XM_\\d{4}E)` \\| [^|]+ \\| \\**(\\d)\\** \\|$")
	documented := map[Code]int{}
	for _, m := range row.FindAllStringSubmatch(string(page), -1) {
		documented[Code(m[1])], _ = strconv.Atoi(m[2])
	}
	for _, ci := range Codes {
		status, ok := documented[ci.Code]
		switch {
		case !ok:
			t.Errorf("%s is missing from the error table of docs/command-language.md", ci.Code)
		case status != ci.ExitStatus():
			t.Errorf("docs/command-language.md gives %s exit status %d; the reference gives %d", ci.Code, status, ci.ExitStatus())
		}
		delete(documented, ci.Code)
	}
	for c := range documented {
		t.Errorf("docs/command-language.md lists %s, which is no code of the reference", c)
	}
}
