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

// Str returns the value of attribute name, or def when absent.
func (x *Exec) Str(name, def string) string {
	if v, ok := x.Cmd.Attrs[name]; ok {
		return v
	}
	return def
}

// Int returns the integer value of attribute name (already validated by the
// parser), or def when absent.
func (x *Exec) Int(name string, def int64) int64 {
	v, ok := x.Cmd.Attrs[name]
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return def
	}
	return n
}
