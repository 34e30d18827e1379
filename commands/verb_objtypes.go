package commands

import (
	"context"
	"sort"
	"strings"
)

// This file holds the verbs that describe the object types: showobjtypes,
// showcustomcmds and showallcustomcmds.

func verbShowObjTypes() *VerbInfo {
	return &VerbInfo{Name: "showobjtypes", Help: "List the object types.", Specs: []*Spec{{
		Help: "List the object types commands act on.",
		Run: func(context.Context, *Exec) (*Result, error) {
			props := make([]Prop, len(ObjectTypes))
			for i, t := range ObjectTypes {
				props[i] = Prop{t, strings.Join(verbsOn(Default, t, false), ", ")}
			}
			return &Result{Props: props}, nil
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
		Help:  "List the commands beyond list/show/create/edit/delete/add/remove that act on an object type, with their synopsis.",
		Attrs: nil,
		Run: func(_ context.Context, x *Exec) (*Result, error) {
			typ, ok := canonicalType(x.Str("arg0"))
			if !ok {
				return nil, failf(CodeUnknownType, "showcustomcmds needs an object type: %s", strings.Join(ObjectTypes, ", "))
			}
			return &Result{Props: customCmds(x.Registry, typ)}, nil
		},
	}}}
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
