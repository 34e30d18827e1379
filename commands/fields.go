package commands

import (
	"slices"
	"strings"
	"time"

	"xenmanager/backend"
)

// This file holds the typed form of what commands print: a Field is a Prop
// (the label and text that Verbose, Sparse, Table, Xml and Json version 1
// print) together with its machine form, which Json version 2 prints (set
// jsonVersion=2; docs/output-formats.md): the key, named as the command
// language names the attribute, and the value with its type.

// Kind is the type of a Field's value in Json version 2.
type Kind uint8

// The kinds of value. Each says where the value lives: Value (the text form)
// for strings, numbers and booleans, Raw for the others.
const (
	// KindString is Value as a JSON string.
	KindString Kind = iota
	// KindInt is Value, a decimal integer, as a JSON number; "" is null.
	KindInt
	// KindFloat is Value, a decimal fraction, as a JSON number; "" is null.
	KindFloat
	// KindBool is Value, Yes or No, as true or false; "" is null.
	KindBool
	// KindTime is Raw, a time.Time, as an RFC 3339 string in UTC with
	// milliseconds; the zero time is null.
	KindTime
	// KindRef is Raw, a backend.NamedRef, as {"id": ..., "name": ...}; a
	// reference without an id is null.
	KindRef
	// KindRefs is Raw, a []backend.NamedRef, as an array of references.
	KindRefs
	// KindStrings is Raw, a []string, as an array of strings.
	KindStrings
	// KindError is Raw, an errorValue, as {"code": ..., "message": ...,
	// "exitStatus": ...}.
	KindError
)

// kindNames are the kinds as the reference names them.
var kindNames = map[Kind]string{
	KindString:  "string",
	KindInt:     "integer",
	KindFloat:   "number",
	KindBool:    "boolean",
	KindTime:    "time",
	KindRef:     "reference",
	KindRefs:    "array of references",
	KindStrings: "array of strings",
	KindError:   "error",
}

func (k Kind) String() string { return kindNames[k] }

// form says which outputs print a Field.
type form uint8

const (
	bothForms   form = iota // every mode
	textOnly                // every mode but Json version 2 (Server 1, Server 2 ... of show ServerPool)
	machineOnly             // Json version 2 only (servers, the array those lines are in version 1)
)

// Field is one attribute of show, or one column of a row, in both forms.
type Field struct {
	// Prop is the text form: the label ("Memory (MB)") or column key
	// ("memory") and the value as the text modes print it.
	Prop
	// Attr is the key in Json version 2: the attribute's name in the
	// command language ("memory", "cpuCount") or, for what no command
	// sets, a lowerCamel name the reference lists.
	Attr string
	Kind Kind
	// Raw is the value of the kinds Value cannot carry (time, references,
	// lists, errors); nil otherwise.
	Raw  any
	Form form
}

// errorValue is the value of a KindError field: a failure of one object of
// a multi-object action.
type errorValue struct {
	Code Code
	Msg  string
}

// textOnly returns f printed by the text modes and Json version 1 only.
func (f Field) textOnly() Field {
	f.Form = textOnly
	return f
}

// machineOnly returns f printed by Json version 2 only.
func (f Field) machineOnly() Field {
	f.Form = machineOnly
	return f
}

// withText returns f with another text form of its value (a list column
// that joins names by "," where show joins them by ", ").
func (f Field) withText(v string) Field {
	f.Value = v
	return f
}

// The constructors of fields, one per kind: label is the text form's key,
// attr the machine form's.

func strField(label, attr, v string) Field {
	return Field{Prop: Prop{label, v}, Attr: attr}
}

func intField(label, attr string, n int64) Field {
	return Field{Prop: Prop{label, itoa(n)}, Attr: attr, Kind: KindInt}
}

// floatField prints f with decimals digits after the point.
func floatField(label, attr string, f float64, decimals int) Field {
	return Field{Prop: Prop{label, formatFloat(f, decimals)}, Attr: attr, Kind: KindFloat}
}

func boolField(label, attr string, b bool) Field {
	return Field{Prop: Prop{label, yesNo(b)}, Attr: attr, Kind: KindBool}
}

// timeField prints t as Oracle VM does in the text form.
func timeField(label, attr string, t time.Time) Field {
	return Field{Prop: Prop{label, t.Format(timeLayout)}, Attr: attr, Kind: KindTime, Raw: t}
}

// optTimeField is timeField for a time that may not have come yet (a job's
// end): the zero time is an empty text and null.
func optTimeField(label, attr string, t time.Time) Field {
	f := timeField(label, attr, t)
	if t.IsZero() {
		f.Value = ""
	}
	return f
}

// refField prints r as show does: "<id>  [<name>]".
func refField(label, attr string, r backend.NamedRef) Field {
	return Field{Prop: Prop{label, ref(r)}, Attr: attr, Kind: KindRef, Raw: r}
}

// refCol is a row's column that names an object: its name in the text form.
func refCol(key, attr string, r backend.NamedRef) Field {
	return Field{Prop: Prop{key, r.Name}, Attr: attr, Kind: KindRef, Raw: r}
}

// refsField prints refs by name, comma-separated.
func refsField(label, attr string, refs []backend.NamedRef) Field {
	return Field{Prop: Prop{label, refsList(refs)}, Attr: attr, Kind: KindRefs, Raw: refs}
}

// stringsField prints ss joined by sep.
func stringsField(label, attr string, ss []string, sep string) Field {
	return Field{Prop: Prop{label, strings.Join(ss, sep)}, Attr: attr, Kind: KindStrings, Raw: ss}
}

// errorField is the machine form of a failure (machine only: the text form
// prints failures in its result column).
func errorField(attr string, code Code, msg string) Field {
	return Field{Attr: attr, Kind: KindError, Raw: errorValue{code, msg}, Form: machineOnly}
}

// fieldValue is the text of the field called label, or "".
func fieldValue(fields []Field, label string) string {
	for _, f := range fields {
		if f.Key == label && f.Form != machineOnly {
			return f.Value
		}
	}
	return ""
}

// hasField reports whether fields hold a field called label.
func hasField(fields []Field, label string) bool {
	for _, f := range fields {
		if f.Key == label {
			return true
		}
	}
	return false
}

// fieldsOf is the fields fields gives a zero T: every key and kind of the
// type's machine form (a machine-only list is there even when empty), for
// the reference.
func fieldsOf[T any](fields func(T) []Field) func() []Field {
	return func() []Field {
		var zero T
		return fields(zero)
	}
}

// rowFieldsOf is the fields of the row row gives a zero T.
func rowFieldsOf[T any](row func(T) Row) func() []Field {
	return func() []Field {
		var zero T
		return row(zero).Fields
	}
}

// textProps is the text form of props and fields, in that order: the
// fields that the text modes print.
func textProps(props []Prop, fields []Field) []Prop {
	if fields == nil {
		return props
	}
	out := make([]Prop, 0, len(props)+len(fields))
	out = append(out, props...)
	for _, f := range fields {
		if f.Form != machineOnly {
			out = append(out, f.Prop)
		}
	}
	return out
}

// textRows is rows in the text form: each row's Fields become its Cols.
// The columns of every row share one allocation, so that a list of 100,000
// VMs costs two allocations more than it did before rows had fields.
func textRows(rows []Row) []Row {
	n, typed := 0, false
	for i := range rows {
		n += len(rows[i].Cols) + len(rows[i].Fields)
		typed = typed || rows[i].Fields != nil
	}
	if !typed {
		return rows
	}
	out := make([]Row, len(rows))
	cols := make([]Prop, 0, n)
	for i, row := range rows {
		start := len(cols)
		cols = append(cols, row.Cols...)
		for _, f := range row.Fields {
			if f.Form != machineOnly {
				cols = append(cols, f.Prop)
			}
		}
		out[i] = Row{ID: row.ID, Name: row.Name, Cols: slices.Clip(cols[start:])}
	}
	return out
}

// machineFields is the machine form of props and fields: a Prop without one
// keeps its key as Json version 1 prints it and is a string.
func machineFields(props []Prop, fields []Field) []Field {
	if props == nil && !hasForm(fields, textOnly) {
		return fields
	}
	out := make([]Field, 0, len(props)+len(fields))
	for i, k := range propKeys(props) {
		out = append(out, Field{Prop: props[i], Attr: k})
	}
	for _, f := range fields {
		if f.Form != textOnly {
			out = append(out, f)
		}
	}
	return out
}

// machineRows is rows in the machine form: a column without one keeps its
// key as Json version 1 prints it and is a string.
func machineRows(rows []Row) []Row {
	convert := false
	for i := range rows {
		if len(rows[i].Cols) > 0 || hasForm(rows[i].Fields, textOnly) {
			convert = true
			break
		}
	}
	if !convert {
		return rows
	}
	out := make([]Row, len(rows))
	var keys colKeyCache
	for i, row := range rows {
		fields := make([]Field, 0, len(row.Cols)+len(row.Fields))
		for j, k := range keys.keys(row) {
			fields = append(fields, Field{Prop: row.Cols[j], Attr: k})
		}
		for _, f := range row.Fields {
			if f.Form != textOnly {
				fields = append(fields, f)
			}
		}
		out[i] = Row{ID: row.ID, Name: row.Name, Fields: fields}
	}
	return out
}

func hasForm(fields []Field, fm form) bool {
	for i := range fields {
		if fields[i].Form == fm {
			return true
		}
	}
	return false
}
