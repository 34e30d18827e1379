package commands

import (
	"testing"
	"unicode/utf8"
)

// FuzzParse: no input panics, and every input either parses to a command
// with a spec (or nothing, for a blank line) or yields a coded parse error.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"list Vm", `create Vm name="a b" repository=r memory=512 on ServerPool name=p`,
		"show Vm id=0004fb00000600001122334455667788", `edit Vm name='x/'y' description="/"q/""`,
		"discoverServer ipAddress=h password=p port=8899", "help start Vm", "create Vm ?", "a=b=c", `"`, "on to from",
		"list Vm; show Vm name=x;;", "\x00", "\xff\xfe", "# a comment; list Vm", `edit Vm name=x description="a \"b\""; list Vm`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		for _, p := range Default.ParseLine(in) {
			switch {
			case p.Err != nil:
				if p.Err.Code == "" || p.Err.Msg == "" {
					t.Fatalf("ParseLine(%q): error without code or message: %+v", in, p.Err)
				}
				if !utf8.ValidString(p.Err.Msg) && utf8.ValidString(in) {
					t.Fatalf("ParseLine(%q): message is not UTF-8: %q", in, p.Err.Msg)
				}
			case p.Cmd != nil:
				if p.Cmd.Verb == nil || (p.Cmd.Spec == nil && !p.Cmd.Help) {
					t.Fatalf("ParseLine(%q): command without verb or spec: %+v", in, p.Cmd)
				}
			}
		}
	})
}
