package shell

import (
	"strings"
	"testing"
)

// Scripts piped into ssh (docs/command-language.md, Comments and blank
// lines; Words and quoting): comment lines and blank lines print nothing and
// leave the exit status alone, a '#' inside a word is part of it, and a
// backslash before a closing quote is refused, naming the language's
// escape /", rather than read as a stray backslash.
func TestScriptsOverSSH(t *testing.T) {
	e := newEnv(t, 1, 4096)
	e.discoverAll()

	tests := []struct {
		name     string
		script   string // stdin of a batch; exec when it has no newline
		status   int
		commands []string // the Command: lines printed, in order
		contains []string
		absent   []string
	}{
		{name: "comments and blank lines do nothing",
			script:   "# set up the tags\n\ncreate Tag name=t1 description=web#1\n   # indented, after a blank line\n\t\n\t# after a tab\nshow Tag name=t1\n#\n",
			commands: []string{"create Tag name=t1 description=web#1", "show Tag name=t1"},
			contains: []string{"  Description = web#1"}, absent: []string{"set up", "indented", "after a tab", "XM_"}},
		{name: "a comment keeps its quotes and semicolons to itself",
			script:   "# don't run this; delete Tag name=t1\nshow Tag name=t1\n",
			commands: []string{"show Tag name=t1"}},
		{name: "a comment does not hide a failure",
			script: "show Tag name=nosuch\n# a comment after it\n\n", status: 1,
			commands: []string{"show Tag name=nosuch"}, contains: []string{"Error Msg: XM_0404E: "}},
		{name: "a comment does not end a session that stops on errors",
			script:   "set stopOnError=Yes\n# comment\n\nshow Tag name=t1\n",
			commands: []string{"set stopOnError=Yes", "show Tag name=t1"}},
		{name: "an exec of a comment alone", script: "# nothing to do", commands: nil},
		{name: "a # after ; is not a comment",
			script: "show Tag name=t1; # not a comment", status: 2,
			commands: []string{"show Tag name=t1", "# not a comment"}, contains: []string{"Error Msg: XM_0001E: "}},
		{name: "a # after a word is not a comment",
			script: "show Tag name=t1 # not a comment\n", status: 2,
			commands: []string{"show Tag name=t1 # not a comment"}, contains: []string{"Error Msg: XM_0003E: "}},
		{name: "the / escape", script: `edit Tag name=t1 description="say /"hi/" to C:\dir"; show Tag name=t1`,
			commands: []string{`edit Tag name=t1 description="say /"hi/" to C:\dir"`, "show Tag name=t1"},
			contains: []string{`  Description = say "hi" to C:\dir`}},
		{name: "a backslash escape is refused, naming /\"",
			script: `edit Tag name=t1 description="a \"b\""` + "\n", status: 2,
			commands: []string{"edit ..."}, // a line that does not lex is echoed as its first word
			contains: []string{"Error Msg: XM_0003E: ", `/"`}},
		{name: "nothing of a line with a backslash escape runs",
			script: `edit Tag name=t1 description="x \"; delete Tag name=t1; show Tag name=t1 \""` + "\nshow Tag name=t1\n", status: 2,
			commands: []string{"edit ...", "show Tag name=t1"},
			contains: []string{"Error Msg: XM_0003E: ", "none of the line was run", `  Description = say "hi" to C:\dir`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out string
			var status int
			if strings.Contains(tc.script, "\n") {
				out, status = e.batch(tc.script)
			} else {
				out, status = e.run(tc.script)
			}
			if status != tc.status {
				t.Errorf("exit %d, want %d\n%s", status, tc.status, out)
			}
			var commands []string
			for _, l := range strings.Split(out, "\n") {
				if c, ok := strings.CutPrefix(l, "Command: "); ok {
					commands = append(commands, c)
				}
			}
			if strings.Join(commands, "\n") != strings.Join(tc.commands, "\n") {
				t.Errorf("commands reported %q, want %q\n%s", commands, tc.commands, out)
			}
			for _, s := range tc.contains {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q\n%s", s, out)
				}
			}
			for _, s := range tc.absent {
				if strings.Contains(out, s) {
					t.Errorf("output has %q\n%s", s, out)
				}
			}
		})
	}
}
