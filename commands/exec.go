package commands

import (
	"strconv"

	"xenmanager/backend"
)

// Exec is what a handler gets: the parsed command and the session's context.
type Exec struct {
	Cmd      *Command
	Backend  *backend.Manager
	Actor    backend.Actor
	Registry *Registry
	Session  *Session
	// Settings is the handler's copy of the session's settings; the session
	// adopts it when the handler finishes in time, so that a handler still
	// running after a timeout never races with the session.
	Settings *Settings
	// Terminal is the session's terminal when it is interactive, else nil.
	Terminal Terminal
}

// Ref returns the command's instance as a backend reference.
func (x *Exec) Ref() backend.Ref { return refOf(x.Cmd.Instance) }

// TargetRef returns the on/to/from clause's instance, or the zero Ref.
func (x *Exec) TargetRef() backend.Ref {
	if x.Cmd.Target == nil {
		return backend.Ref{}
	}
	return refOf(&x.Cmd.Target.Instance)
}

func refOf(i *Instance) backend.Ref {
	if i == nil {
		return backend.Ref{}
	}
	if i.ByID {
		return backend.Ref{ID: i.Value}
	}
	return backend.Ref{Name: i.Value}
}

// Str returns the value of attribute name or, when absent, its declared
// Default: handlers never restate a default.
func (x *Exec) Str(name string) string {
	if v, ok := x.Cmd.Attrs[name]; ok {
		return v
	}
	if x.Cmd.Spec != nil {
		if a := x.Cmd.Spec.attr(name); a != nil {
			return a.Default
		}
	}
	return ""
}

// Int returns the integer value of attribute name (already validated by the
// parser) or, when absent, its declared Default (0 without one).
func (x *Exec) Int(name string) int64 {
	n, _ := strconv.ParseInt(x.Str(name), 10, 64)
	return n
}

// words returns the free words of a command that takes them (Spec.Args),
// in order: the parser keeps them as arg0, arg1 ...
func (x *Exec) words() []string {
	var out []string
	for i := 0; ; i++ {
		w, ok := x.Cmd.Attrs["arg"+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, w)
	}
}

// optStr returns a pointer to the attribute's value when it was given.
func optStr(x *Exec, name string) *string {
	if v, ok := x.Cmd.Attrs[name]; ok {
		return &v
	}
	return nil
}

// optInt is optStr for integers.
func optInt(x *Exec, name string) *int64 {
	if _, ok := x.Cmd.Attrs[name]; ok {
		n := x.Int(name)
		return &n
	}
	return nil
}

// optBool is optStr for Yes|No.
func optBool(x *Exec, name string) *bool {
	if v, ok := x.Cmd.Attrs[name]; ok {
		b := v == "Yes"
		return &b
	}
	return nil
}

// slotAttr is the slot= attribute, or -1 (the backend's "the first free
// slot") when absent.
func slotAttr(x *Exec) int {
	if n := optInt(x, "slot"); n != nil {
		return int(*n)
	}
	return -1
}
