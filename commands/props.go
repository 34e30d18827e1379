package commands

import (
	"strconv"
	"strings"

	"xenmanager/backend"
)

// This file holds what every type's properties and rows are printed and
// read with: references, numbers, Yes|No, object names in attributes.

// ref prints a reference as Oracle VM does: "<id>  [<name>]".
func ref(r backend.NamedRef) string {
	if r.ID == "" {
		return ""
	}
	return r.ID + "  [" + r.Name + "]"
}

// refsList prints references by name, comma-separated.
func refsList(refs []backend.NamedRef) string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.Name
	}
	return strings.Join(out, ", ")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// formatFloat prints f with decimals digits after the point, as %.<n>f does.
func formatFloat(f float64, decimals int) string { return strconv.FormatFloat(f, 'f', decimals, 64) }

func yesNo(b bool) string {
	if b {
		return "Yes"
	}
	return "No"
}

// rowOf is the result of a command on one object: its id and name.
func rowOf(id, name string, err error) (*Result, error) {
	if err != nil {
		return nil, err
	}
	return &Result{Rows: []Row{{ID: id, Name: name}}}, nil
}

// objectRef reads an attribute that names an object: an id when it has the
// id's shape, a name or pattern otherwise, nothing when empty.
func objectRef(s string) backend.Ref {
	switch {
	case s == "":
		return backend.Ref{}
	case backend.IsID(strings.ToLower(s)):
		return backend.Ref{ID: strings.ToLower(s)}
	}
	return backend.Ref{Name: s}
}

// splitRefs reads a comma-separated list of names or ids.
func splitRefs(s string) []backend.Ref {
	var out []backend.Ref
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, objectRef(p))
		}
	}
	return out
}
