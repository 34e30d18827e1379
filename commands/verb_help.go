package commands

import (
	"context"
	"fmt"
	"strings"
)

func verbHelp() *VerbInfo {
	return &VerbInfo{Name: "help", Help: "Show the commands, a verb's object types, or a command's attributes.", Specs: []*Spec{{
		Help: "help | help <verb> | help <verb> <Type>; '<command> ?' shows the same as help for that command.",
		Run: func(_ context.Context, x *Exec) (*Result, error) {
			var words []string
			for i := 0; ; i++ {
				w, ok := x.Cmd.Attrs[fmt.Sprintf("arg%d", i)]
				if !ok {
					break
				}
				words = append(words, w)
			}
			return &Result{Text: helpWords(x.Registry, words)}, nil
		},
	}}}
}

func helpWords(reg *Registry, words []string) []string {
	if len(words) == 0 {
		out := []string{"Commands (help <command> for more; <command> ? for its attributes):"}
		for _, v := range reg.Verbs() {
			types := ""
			if v.Typed() {
				types = " " + strings.Join(v.Types(), "|")
			}
			out = append(out, fmt.Sprintf("  %-16s %s%s", v.Name, v.Help, typesNote(types)))
		}
		return out
	}
	v, ok := reg.Verb(words[0])
	if !ok {
		msg := fmt.Sprintf("No command '%s'.", words[0])
		var names []string
		for _, v := range reg.Verbs() {
			names = append(names, v.Name)
		}
		if s := suggest(words[0], names); s != "" {
			msg += fmt.Sprintf(" Did you mean '%s'?", s)
		}
		return []string{msg, "Type help for the list of commands."}
	}
	if len(words) == 1 && v.Typed() {
		out := []string{v.Name + ": " + v.Help}
		for _, s := range v.Specs {
			out = append(out, fmt.Sprintf("  %-12s %s", s.Type, s.Help))
		}
		return out
	}
	typ := ""
	if len(words) > 1 {
		typ = words[1]
	}
	s, ok := v.Spec(typ)
	if !ok {
		return []string{fmt.Sprintf("%s does not act on '%s'; object types: %s", v.Name, typ, strings.Join(v.Types(), ", "))}
	}
	return specHelp(s)
}

func typesNote(types string) string {
	if types == "" {
		return ""
	}
	return " [" + strings.TrimSpace(types) + "]"
}

// specHelp is the text of '<command> ?': the synopsis, each attribute with
// its type and help (required ones starred), and the help text.
func specHelp(s *Spec) []string {
	out := []string{"Usage: " + s.Usage()}
	if len(s.Attrs) > 0 {
		out = append(out, "Attributes (* required):")
		width := 0
		for _, a := range s.Attrs {
			width = max(width, len(a.Name)+1)
		}
		for _, a := range s.Attrs {
			mark := " "
			if a.Required {
				mark = "*"
			}
			out = append(out, fmt.Sprintf("  %s%-*s  %s (%s)", mark, width, a.Name, a.Help, attrDetail(a)))
		}
	}
	return append(out, "HelpText: "+s.Help)
}

func attrDetail(a Attr) string {
	var d string
	switch a.Kind {
	case AttrInt:
		d = fmt.Sprintf("integer %d-%d", a.Min, a.Max)
	case AttrEnum:
		d = strings.Join(a.Enum, "|")
	case AttrYesNo:
		d = "Yes|No"
	case AttrObject:
		d = a.Object + " name or id"
	default:
		d = a.Kind.String()
	}
	if a.Default != "" {
		d += ", default " + a.Default
	}
	return d
}

// helpFor answers "<command> ?".
func helpFor(reg *Registry, cmd *Command) []string {
	if cmd.Spec == nil {
		return helpWords(reg, []string{cmd.Verb.Name})
	}
	return specHelp(cmd.Spec)
}
