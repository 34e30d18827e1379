package commands

import (
	"context"
	"slices"
	"strings"

	"xenmanager/backend"
)

// objectType declares one object type of the language, once: everything
// the verbs that act on any type (list, show, showobjtypes, edit's renames,
// the tag verbs) need to know about it. Each entry lives in its type's file
// (vm.go, server.go ...) beside the type's own verbs; adding a type is
// adding its entry to objectTypes.
type objectType struct {
	Name string
	// List is list's declaration for the type, its listing columns in its
	// Run; Type is filled in, and tag= for taggable types. Nil: not listed.
	List *Spec
	// Show reads the object the command names as show prints it. Nil: the
	// type is listed, never shown one by one.
	Show func(ctx context.Context, x *Exec) ([]Field, error)
	// ShowFields and ListFields are the fields Show and a row of List give
	// a zero object: the keys and kinds of the type's machine form (Json
	// version 2), which the reference lists (fieldsOf, rowFieldsOf). A
	// type with a Show has ShowFields; one with a List, ListFields (nil
	// when its rows are an id and a name alone).
	ShowFields func() []Field
	ListFields func() []Field
	// Single types have one object (Manager): show takes no instance.
	Single bool
	// StatesFor, when set, gives the states in which a verb may act on an
	// object of the type, so that completion offers only those (start offers
	// stopped VMs); nil from it offers every object.
	StatesFor func(verb string) []string
	// RenameHelp, when set, declares edit on the type as a rename of a
	// backend.Renamable (name and, where it has one, description): it is
	// edit's help for the type.
	RenameHelp string
}

// taggable reports whether the type takes tags (the core's table says):
// add and remove Tag accept it, list filters it by tag= and show prints its
// Tags.
func (t *objectType) taggable() bool { return backend.Taggable(t.Name) }

// objectTypes is every object type, in the order showobjtypes, show and
// help list them.
var objectTypes = []*objectType{poolType, serverType, repositoryType, vmType, templateType, diskType, diskMappingType, cdromType, vnicType,
	networkType, antiAffinityType, customizerType, storageMappingType, networkMappingType, tagType, jobType, eventType, userType, sshKeyType,
	auditRecordType, managerType}

// ObjectTypes are the object types of the language, canonically spelled.
var ObjectTypes = typeNames(objectTypes)

func canonicalType(s string) (string, bool) {
	for _, t := range ObjectTypes {
		if strings.EqualFold(t, s) {
			return t, true
		}
	}
	return "", false
}

// typeNamed is the declaration of the type called name, or nil.
func typeNamed(name string) *objectType {
	for _, t := range objectTypes {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// typesWhere lists the types for which keep holds: those named in first in
// that order (the order help has always shown them in), then the others in
// objectTypes's order.
func typesWhere(keep func(*objectType) bool, first ...string) []*objectType {
	var out []*objectType
	for _, name := range first {
		for _, t := range objectTypes {
			if t.Name == name && keep(t) {
				out = append(out, t)
			}
		}
	}
	for _, t := range objectTypes {
		if keep(t) && !slices.Contains(first, t.Name) {
			out = append(out, t)
		}
	}
	return out
}

// typeNames are the names of types.
func typeNames(types []*objectType) []string {
	out := make([]string, len(types))
	for i, t := range types {
		out[i] = t.Name
	}
	return out
}

// shownBy is the Show of a type read by a backend lookup by reference
// (Manager.VM, Manager.Server ...) and printed by fields.
func shownBy[T any](lookup func(*backend.Manager, context.Context, backend.Ref) (T, error), fields func(T) []Field) func(context.Context, *Exec) ([]Field, error) {
	return func(ctx context.Context, x *Exec) ([]Field, error) {
		v, err := lookup(x.Backend, ctx, x.Ref())
		if err != nil {
			return nil, err
		}
		return fields(v), nil
	}
}

// listedBy is the Run of list for a type read by a backend listing with
// list's filters and printed one row per object by row.
func listedBy[T any](list func(*backend.Manager, context.Context, backend.Filter) ([]T, error), row func(T) Row) func(context.Context, *Exec) (*Result, error) {
	return func(ctx context.Context, x *Exec) (*Result, error) {
		objs, err := list(x.Backend, ctx, listFilter(x))
		if err != nil {
			return nil, err
		}
		return rowsOf(objs, row), nil
	}
}

// rowsOf is a listing: one row per object, an empty list when none.
func rowsOf[T any](objs []T, row func(T) Row) *Result {
	res := &Result{Rows: []Row{}}
	for _, o := range objs {
		res.Rows = append(res.Rows, row(o))
	}
	return res
}
