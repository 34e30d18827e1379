package commands

import (
	"fmt"
	"slices"
	"strings"

	"xenmanager/backend"
)

// This file holds filter-selected actions: an action on one object that
// takes multiple=Yes (start Vm, migrate Vm, delete Vm ...) also takes the
// filters list takes for its type, so that "stop Vm server=ovs1
// multiple=Yes" acts on what "list Vm server=ovs1" lists. The instance then
// becomes optional (id= or name= anywhere, at most once), filters act only
// with multiple=Yes, and an attribute of the action itself wins over a
// filter it clashes with.

// selecting declares s, an action on one object of its type with
// multiple=Yes, as one that list's filters of the type (but name=, which is
// the instance) may select the objects of, and returns it. A filter clashes
// with an attribute of s that has its name (the action's attribute wins: it
// is its target, not a filter) or that names objects of the filter's type
// (migrate's destServer= against server=: which is where the VMs go would
// be a guess); a clashing filter is not taken, and the parser says why.
func selecting(s *Spec) *Spec {
	t := typeNamed(s.Type)
	if t == nil || t.List == nil || !s.Instance || s.attr(attrMultiple.Name) == nil {
		panic("commands: only an action on one listed object with multiple= selects by filters: " + s.Type)
	}
	var filters []Attr
	for _, f := range listAttrs(t) {
		if selectFilters[f.Name] == nil {
			continue // name= is the instance's (a name or a pattern); other filters are list's alone
		}
		if own := s.clashingAttr(f); own != nil {
			if s.clashes == nil {
				s.clashes = map[string]clash{}
			}
			s.clashes[strings.ToLower(f.Name)] = clash{filter: f, own: *own}
			continue
		}
		f.Filter = true
		f.Help = "filter (with multiple=Yes): " + f.Help
		filters = append(filters, f)
	}
	s.Attrs = append(filters, s.Attrs...)
	return s
}

// clash is a filter an action does not take, and its own attribute that
// wins over it.
type clash struct {
	filter, own Attr
}

// clashingAttr is s's own attribute that filter f clashes with: one of its
// name, or one that names objects of the type f filters by. Nil: none.
func (s *Spec) clashingAttr(f Attr) *Attr {
	for i, a := range s.Attrs {
		if strings.EqualFold(a.Name, f.Name) || f.Object != "" && a.Kind == AttrObject && a.Object == f.Object {
			return &s.Attrs[i]
		}
	}
	return nil
}

// selects reports whether filters may select the objects s acts on.
func (s *Spec) selects() bool {
	return slices.ContainsFunc(s.Attrs, func(a Attr) bool { return a.Filter })
}

// filterNames are the filters s takes, as "status=, server=, ..." for
// messages.
func (s *Spec) filterNames() string {
	var out []string
	for _, a := range s.Attrs {
		if a.Filter {
			out = append(out, a.Name+"=")
		}
	}
	return strings.Join(out, ", ")
}

// clashError is the parser's refusal of filter key on s (named name), when
// key clashes with an attribute of s that names objects of the same type;
// nil when it does not.
func (s *Spec) clashError(t *token, name string) *ParseError {
	c, ok := s.clashes[strings.ToLower(t.key)]
	own := c.own
	if !ok || strings.EqualFold(own.Name, t.key) {
		return nil
	}
	return parseErrorf(CodeUnknownAttribute, t, "%s= is not a filter of %s: its %s= names a %s already (%s), so %s= would read as that; select by id=, name=, %s",
		t.key, name, own.Name, own.Object, own.Help, t.key, s.filterNames())
}

// needsInstance says what a command of s (named name) needs in place of
// its instance: the object, or for an action that filters, the objects.
func (s *Spec) needsInstance(name string) string {
	if s.selects() {
		return fmt.Sprintf("%s needs the objects: id=<id> or name=<name or pattern>, or filters (%s) with multiple=Yes", name, s.filterNames())
	}
	return name + " needs the object: id=<id> or name=<name>"
}

// missingSelection is the parser's refusal of a command of s (named name)
// that has neither an instance nor a filter; it names the attributes given
// that are the action's own though they are called like a filter.
func (s *Spec) missingSelection(cmd *Command, name string) *ParseError {
	msg := s.needsInstance(name)
	for _, a := range s.Attrs {
		if _, given := cmd.Attrs[a.Name]; given {
			if c, ok := s.clashes[strings.ToLower(a.Name)]; ok && c.own.Name == a.Name {
				msg += fmt.Sprintf("; %s= here is %s's own attribute (%s), not a filter", a.Name, name, a.Help)
			}
		}
	}
	return parseErrorf(CodeMissingInstance, nil, "%s", msg)
}

// filtered reports whether the command was given a filter.
func (c *Command) filtered() bool {
	for _, a := range c.Spec.Attrs {
		if _, ok := c.Attrs[a.Name]; ok && a.Filter {
			return true
		}
	}
	return false
}

// selection is what selects the objects of x's action: its instance (the
// zero Ref when it has none) and its filters, and the words that gave them
// ("name=web* server=ovs1") for messages; filtered is false when no filter
// was given.
func selection(x *Exec) (ref backend.Ref, f backend.Filter, words string, filtered bool) {
	var w []string
	if i := x.Cmd.Instance; i != nil {
		key := "name="
		if i.ByID {
			key = "id="
		}
		w = append(w, key+quoteIfNeeded(i.Value))
	}
	for _, a := range x.Cmd.Spec.Attrs {
		if v, ok := x.Cmd.Attrs[a.Name]; ok && a.Filter {
			w = append(w, a.Name+"="+quoteIfNeeded(v))
			selectFilters[a.Name](&f, v)
			filtered = true
		}
	}
	return x.Ref(), f, strings.Join(w, " "), filtered
}

// selectFilters are the filters of list an action takes, each with how it
// narrows the backend's Filter. A filter list takes and this table does not
// know is left out of the actions (selecting), never ignored by them.
var selectFilters = map[string]func(f *backend.Filter, v string){
	"status":              func(f *backend.Filter, v string) { f.Status = v },
	filterServer.Name:     func(f *backend.Filter, v string) { f.Server = objectRef(v) },
	filterServerPool.Name: func(f *backend.Filter, v string) { f.Pool = objectRef(v) },
	filterRepository.Name: func(f *backend.Filter, v string) { f.Repository = objectRef(v) },
	filterTag.Name:        func(f *backend.Filter, v string) { f.Tag = objectRef(v) },
}
