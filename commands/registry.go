// Package commands is the command language of the manager's SSH shell
// (docs/guide.md): the verb x object-type registry, the parser, help,
// completion and the output formats. Each object type is declared once, in
// objectTypes (types.go), and its file (vm.go, server.go ...) holds its
// entry and its own verbs; each verb is declared once, and parser, help,
// completion and the generated reference all read those declarations.
package commands

import (
	"context"
	"sort"
	"strings"
)

// AttrKind is the type of an attribute's value.
type AttrKind int

// The kinds of attribute values.
const (
	AttrString AttrKind = iota // any text
	AttrInt                    // a decimal integer within Min..Max
	AttrEnum                   // one of Enum, case-insensitive
	AttrYesNo                  // Yes or No
	AttrObject                 // the name or id of an object of type Object
	AttrSecret                 // text not to be echoed back or logged
)

func (k AttrKind) String() string {
	switch k {
	case AttrInt:
		return "integer"
	case AttrEnum:
		return "enumeration"
	case AttrYesNo:
		return "Yes|No"
	case AttrObject:
		return "object"
	case AttrSecret:
		return "secret"
	}
	return "string"
}

// Attr declares one attribute of a command.
type Attr struct {
	Name     string // canonical spelling, e.g. "cpuCount"
	Kind     AttrKind
	Enum     []string // for AttrEnum: canonical values
	Min, Max int64    // for AttrInt
	Object   string   // for AttrObject: the object type it names
	// Names is, for an AttrString whose value names an object that is no
	// one type's, what completion offers: the NameQuery.Type asked for
	// (backend.NamesCloneSourceDisks ...).
	Names    string
	Default  string // shown in help; Exec.Str and Exec.Int read it when the attribute is absent
	Required bool
	Help     string
	// Filter marks one of list's filters that an action takes to select
	// the objects it acts on (selecting, in select.go).
	Filter bool
}

// Clause declares the "on|to|from <Type> <instance>" part of a command.
type Clause struct {
	Prep     string   // "on", "to" or "from"
	Types    []string // object types accepted after Prep
	Required bool
}

// Spec declares one verb on one object type (Type "" for verbs that take
// none, such as discoverServer).
type Spec struct {
	Verb     string
	Type     string
	Help     string
	Instance bool // the command names one object: id=<id> or name=<name>
	// Args is the synopsis of the plain words a command without a type
	// takes instead of attributes ("<Type>" for showcustomcmds); the
	// parser hands them to the handler as arg0, arg1 ... (Exec.words).
	Args   string
	Attrs  []Attr
	Clause *Clause
	Run    func(ctx context.Context, x *Exec) (*Result, error)
	// AlsoNames says, by object type, the type whose objects an instance of
	// it may also name, for completion to offer them too: "Vm":
	// "VmTemplate" where, as in Oracle VM 3, a template is also addressed
	// as a Vm (clone Vm, create VmCloneCustomizer ... on Vm).
	AlsoNames map[string]string
	// clashes are list's filters this action does not take because one of
	// its attributes has their name or names objects of their type; by
	// lower-case filter name (selecting).
	clashes map[string]clash
}

// Usage is the command's synopsis, as in the reference.
func (s *Spec) Usage() string {
	var b strings.Builder
	b.WriteString(s.Verb)
	if s.Type != "" {
		b.WriteString(" " + s.Type)
	}
	switch {
	case s.Instance && s.selects():
		b.WriteString(" [<instance>] [<filter> ...]") // the filters are listed with the attributes
	case s.Instance:
		b.WriteString(" <instance>")
	}
	if s.Args != "" {
		b.WriteString(" " + s.Args)
	}
	for _, a := range s.Attrs {
		if a.Filter {
			continue
		}
		v := a.Name + "="
		switch a.Kind {
		case AttrEnum:
			v += strings.Join(a.Enum, "|")
		case AttrYesNo:
			v += "Yes|No"
		default:
			v += "<" + a.Kind.String() + ">"
		}
		if a.Required {
			b.WriteString(" " + v)
		} else {
			b.WriteString(" [" + v + "]")
		}
	}
	if c := s.Clause; c != nil {
		cl := c.Prep + " " + strings.Join(c.Types, "|") + " <instance>"
		if c.Required {
			b.WriteString(" " + cl)
		} else {
			b.WriteString(" [" + cl + "]")
		}
	}
	return b.String()
}

func (s *Spec) attr(name string) *Attr {
	for i := range s.Attrs {
		if strings.EqualFold(s.Attrs[i].Name, name) {
			return &s.Attrs[i]
		}
	}
	return nil
}

// VerbInfo declares a verb: its help and the object types it acts on.
type VerbInfo struct {
	Name  string
	Help  string
	Specs []*Spec // one per object type, or one with Type "" for type-less verbs
}

// Registry holds every verb.
type Registry struct {
	verbs map[string]*VerbInfo // key: lower-case verb
}

func newRegistry() *Registry { return &Registry{verbs: map[string]*VerbInfo{}} }

// add declares a verb, once.
func (r *Registry) add(v *VerbInfo) {
	key := strings.ToLower(v.Name)
	if _, dup := r.verbs[key]; dup {
		panic("commands: verb declared twice: " + v.Name)
	}
	for _, s := range v.Specs {
		s.Verb = v.Name
	}
	r.verbs[key] = v
}

// Verb returns the declaration of a verb, case-insensitively.
func (r *Registry) Verb(name string) (*VerbInfo, bool) {
	v, ok := r.verbs[strings.ToLower(name)]
	return v, ok
}

// Verbs returns every verb, sorted by name.
func (r *Registry) Verbs() []*VerbInfo {
	out := make([]*VerbInfo, 0, len(r.verbs))
	for _, v := range r.verbs {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name) })
	return out
}

// Spec returns the declaration of verb on type ("" for type-less verbs).
func (v *VerbInfo) Spec(typ string) (*Spec, bool) {
	for _, s := range v.Specs {
		if strings.EqualFold(s.Type, typ) {
			return s, true
		}
	}
	return nil, false
}

// Typed reports whether the verb takes an object type.
func (v *VerbInfo) Typed() bool { return len(v.Specs) > 0 && v.Specs[0].Type != "" }

// Types lists the object types the verb accepts.
func (v *VerbInfo) Types() []string {
	out := make([]string, 0, len(v.Specs))
	for _, s := range v.Specs {
		out = append(out, s.Type)
	}
	return out
}

// Default is the registry of every verb this package declares.
var Default = newRegistry()

func init() {
	for _, v := range []*VerbInfo{
		verbList(), verbShow(), verbCreate(), verbAdd(), verbDelete(), verbStart(), verbStop(),
		verbDiscoverServer(), verbHelp(), verbExit(), verbSet(), verbShowCLISession(), verbShowVersion(),
		verbShowObjTypes(), verbShowCustomCmds(), verbShowAllCustomCmds(),
		verbKill(), verbRestart(), verbSuspend(), verbResume(), verbPause(), verbUnpause(),
		verbAbort(), verbWait(), verbGetEvents(), verbAckEvent(), verbEdit(), verbRemove(), verbGetAuditLog(),
		verbTop(), verbConsole(), verbMigrate(), verbImportIso(), verbApprove(), verbGetVmCfgFileContent(), verbBackup(), verbRefresh(),
		verbClone(), verbImportTemplate(), verbImportVirtualAppliance(),
	} {
		Default.add(v)
	}
}
