package commands

import (
	"strconv"
	"testing"
)

// An absent attribute reads as its declared Default, so that no handler
// has to restate it; a given one reads as given.
func TestExecAppliesDefaults(t *testing.T) {
	for _, v := range Default.Verbs() {
		for _, s := range v.Specs {
			for _, a := range s.Attrs {
				if a.Default == "" {
					continue
				}
				x := &Exec{Cmd: &Command{Spec: s, Attrs: map[string]string{}}}
				if got := x.Str(a.Name); got != a.Default {
					t.Errorf("%s %s: Str(%q) = %q, want the default %q", s.Verb, s.Type, a.Name, got, a.Default)
				}
				if a.Kind == AttrInt {
					if got := strconv.FormatInt(x.Int(a.Name), 10); got != a.Default {
						t.Errorf("%s %s: Int(%q) = %s, want the default %s", s.Verb, s.Type, a.Name, got, a.Default)
					}
					x.Cmd.Attrs[a.Name] = "7"
					if got := x.Int(a.Name); got != 7 {
						t.Errorf("%s %s: Int(%q) = %d, want the given 7", s.Verb, s.Type, a.Name, got)
					}
				}
			}
		}
	}
}
