package commands

import (
	"context"
	"fmt"
	"strings"
)

func verbHelp() *VerbInfo {
	return &VerbInfo{Name: "help", Help: "Show the commands, a verb's object types, or a command's attributes.", Specs: []*Spec{{
		Args: "[<verb> [<Type>]]",
		Help: "help | help <verb> | help <verb> <Type>; '<command> ?' shows the same as help for that command. A verb or type it does not know fails as the command itself would (XM_0001E, XM_0002E).",
		Run: func(_ context.Context, x *Exec) (*Result, error) {
			text, err := helpWords(x.Registry, x.words())
			if err != nil {
				return nil, err
			}
			return &Result{Text: text}, nil
		},
	}}}
}

// helpWords answers help with its words: every verb, a verb's object
// types, or a command's synopsis and attributes. A word that names no verb,
// or no type of the verb, fails with the code and message the parser gives
// that word in a command, so that a script asking for help on a misspelt
// verb learns it from the exit status as well as from the text.
func helpWords(reg *Registry, words []string) ([]string, error) {
	if len(words) == 0 {
		return commandList(reg), nil
	}
	if len(words) > 2 {
		return nil, failf(CodeSyntax, "help takes at most a verb and an object type (help start Vm), not %s after them", quoteWord(words[2]))
	}
	v, ok := reg.Verb(words[0])
	if !ok {
		return nil, failf(CodeUnknownCommand, "%s", unknownCommandMsg(reg, words[0]))
	}
	if len(words) == 1 {
		if v.Typed() {
			return verbTypes(v), nil
		}
		return specHelp(v.Specs[0]), nil
	}
	if !v.Typed() {
		return nil, failf(CodeUnknownType, "%s takes no object type; help %s shows its attributes", v.Name, v.Name)
	}
	s, ok := v.Spec(words[1])
	if !ok {
		return nil, failf(CodeUnknownType, "%s", wrongTypeMsg(v, words[1]))
	}
	return specHelp(s), nil
}

// commandList is the text of a bare help: every verb with its help and the
// object types it takes.
func commandList(reg *Registry) []string {
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

// verbTypes is the text of help <verb> for a verb that takes an object
// type: its help, then each type with what the verb does to it.
func verbTypes(v *VerbInfo) []string {
	out := []string{v.Name + ": " + v.Help}
	for _, s := range v.Specs {
		out = append(out, fmt.Sprintf("  %-12s %s", s.Type, s.Help))
	}
	return out
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

// helpFor answers "<command> ?": the command's help, or the verb's object
// types when no type was given ("list ?").
func helpFor(cmd *Command) []string {
	if cmd.Spec == nil {
		return verbTypes(cmd.Verb)
	}
	return specHelp(cmd.Spec)
}
