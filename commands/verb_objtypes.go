package commands

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// This file holds the verbs that describe the object types: showobjtypes,
// showcustomcmds and showallcustomcmds.

func verbShowObjTypes() *VerbInfo {
	return &VerbInfo{Name: "showobjtypes", Help: "List the object types.", Specs: []*Spec{{
		Help: "List the object types commands act on.",
		Run: func(context.Context, *Exec) (*Result, error) {
			fields := make([]Field, len(ObjectTypes))
			for i, t := range ObjectTypes {
				fields[i] = stringsField(t, t, verbsOn(Default, t, false), ", ")
			}
			return &Result{Fields: fields}, nil
		},
	}}}
}

// standardVerbs are the verbs every type may have; the others are "custom
// commands" in Oracle VM's terms.
var standardVerbs = map[string]bool{"list": true, "show": true, "create": true, "edit": true, "delete": true, "add": true, "remove": true}

// verbsOn lists the verbs that act on typ; customOnly leaves out the
// standard ones.
func verbsOn(reg *Registry, typ string, customOnly bool) []string {
	var out []string
	for _, v := range reg.Verbs() {
		if customOnly && standardVerbs[v.Name] {
			continue
		}
		if _, ok := v.Spec(typ); ok && v.Typed() {
			out = append(out, v.Name)
		}
	}
	sort.Strings(out)
	return out
}

func verbShowCustomCmds() *VerbInfo {
	return &VerbInfo{Name: "showcustomcmds", Help: "List the actions (custom commands) of an object type.", Specs: []*Spec{{
		Args: "<Type>",
		Help: "List the commands beyond list/show/create/edit/delete/add/remove that act on an object type, with their synopsis.",
		Run: func(_ context.Context, x *Exec) (*Result, error) {
			typ, err := customCmdsType(x.words())
			if err != nil {
				return nil, err
			}
			return &Result{Props: customCmds(x.Registry, typ)}, nil
		},
	}}}
}

// customCmdsType is the one object type showcustomcmds was given, in its
// canonical spelling. Its faults are those of a command's type word
// (XM_0002E) and of a stray word (XM_0003E), with their exit status 2.
func customCmdsType(words []string) (string, error) {
	if len(words) == 0 {
		return "", failf(CodeUnknownType, "showcustomcmds needs an object type: %s", strings.Join(ObjectTypes, ", "))
	}
	if len(words) > 1 {
		return "", failf(CodeSyntax, "showcustomcmds takes one object type, not %s after it", quoteWord(words[1]))
	}
	typ, ok := canonicalType(words[0])
	if !ok {
		msg := "unknown object type " + quoteWord(words[0])
		if sg := suggest(words[0], ObjectTypes); sg != "" {
			msg += fmt.Sprintf("; did you mean '%s'?", sg)
		}
		return "", failf(CodeUnknownType, "%s; accepted: %s", msg, strings.Join(ObjectTypes, ", "))
	}
	return typ, nil
}

func customCmds(reg *Registry, typ string) []Prop {
	var props []Prop
	for _, verb := range verbsOn(reg, typ, true) {
		v, _ := reg.Verb(verb)
		s, _ := v.Spec(typ)
		props = append(props, Prop{verb + " " + typ, s.Usage()})
	}
	return props
}

func verbShowAllCustomCmds() *VerbInfo {
	return &VerbInfo{Name: "showallcustomcmds", Help: "List the actions (custom commands) of every object type.", Specs: []*Spec{{
		Help: "List, for every object type, the commands beyond list/show/create/edit/delete/add/remove.",
		Run: func(_ context.Context, x *Exec) (*Result, error) {
			var props []Prop
			for _, t := range ObjectTypes {
				props = append(props, customCmds(x.Registry, t)...)
			}
			return &Result{Props: props}, nil
		},
	}}}
}
