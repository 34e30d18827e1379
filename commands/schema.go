package commands

import (
	"fmt"
	"strings"
	"time"

	"xenmanager/backend"
)

// This file lists the machine form of every result (Json version 2) for
// the reference, from the same functions that print the results, so that
// the documented keys cannot drift from the printed ones.

// resultSchema is the machine form of one result other than show's and
// list's.
type resultSchema struct {
	Of     string // the commands that print it
	Rows   bool   // printed as rows (beside each row's id and name), not attributes
	Fields func() []Field
}

// otherResults are the results other than show's and list's that the
// reference lists. Commands that print an object (edit, start, stop, wait
// Job ...) print its show keys.
var otherResults = []resultSchema{
	{Of: "refresh Server", Fields: fieldsOf(refreshServerFields)},
	{Of: "refresh Repository", Fields: fieldsOf(repoStatusFields)},
	{Of: "migrate Vm, after a live migration: the VM's show keys, then", Fields: fieldsOf(migrationFields)},
	{Of: "backup", Fields: fieldsOf(backupFields)},
	{Of: "showversion", Fields: func() []Field { return versionFields("") }},
	{Of: "showclisession", Fields: func() []Field { return sessionFields(backend.Actor{}, time.Time{}, defaultSettings) }},
	{Of: "showobjtypes: one key per object type, its verbs", Fields: func() []Field {
		return []Field{stringsField("Vm", "Vm", nil, ", ")}
	}},
	{Of: "a command that started a job in Asynchronous mode (set commandMode=Asynchronous)", Fields: func() []Field {
		return []Field{strField("Job Id", "jobId", "")}
	}},
	{Of: "a multi-object action (multiple=Yes), each object", Rows: true, Fields: func() []Field {
		return append(outcomeFields("", errSchema), startedFields("")[2:]...)
	}},
	{Of: "refresh ServerPool, each server", Rows: true, Fields: func() []Field {
		return append(outcomeFields("", errSchema), intField("", "vmsChanged", 0).machineOnly())
	}},
}

// errSchema stands for a failure in outcomeFields' schema.
var errSchema = fmt.Errorf("any failure")

// referenceJSONVersion2 writes the reference's section on Json version 2:
// each object type's keys in show and in list, then those of the other
// results.
func referenceJSONVersion2(b *strings.Builder) {
	b.WriteString("\n## Json version 2 keys\n\n")
	b.WriteString("The keys of `set outputMode=Json` with `set jsonVersion=2`, and the type of each value\n")
	b.WriteString("([output-formats.md](output-formats.md#json-version-2) describes the document and each type).\n")
	b.WriteString("A key whose Verbose label or column is a dash is printed by Json version 2 alone (it stands for\n")
	b.WriteString("several Verbose lines, or for a part of one); a row of a list always begins with `id` and `name`.\n")
	b.WriteString("Commands that print an object (create prints its row; edit, start, stop, wait Job ... its\n")
	b.WriteString("attributes) use the keys of its type.\n")
	for _, t := range typesWhere(func(t *objectType) bool { return t.Show != nil || t.List != nil }, listOrder...) {
		fmt.Fprintf(b, "\n### Keys of %s\n\n", t.Name)
		show := t.showFields()
		var list []Field
		if t.ListFields != nil {
			list = t.ListFields()
		}
		b.WriteString("| key | type | `show` (Verbose label) | `list` (Json version 1 column) |\n|---|---|---|---|\n")
		// A row's id and name are the object's.
		inList := map[string]Field{"id": strField("id", "id", ""), "name": strField("name", "name", "")}
		if t.Show == nil {
			list = append([]Field{inList["id"], inList["name"]}, list...)
		}
		for _, f := range machineOnes(list) {
			inList[f.Attr] = f
		}
		seen := map[string]bool{}
		for _, f := range machineOnes(show) {
			seen[f.Attr] = true
			col := ""
			if l, ok := inList[f.Attr]; ok {
				col = textKey(l)
			} else if t.List != nil {
				col = "not listed"
			}
			fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", f.Attr, f.Kind, textKey(f), col)
		}
		for _, f := range machineOnes(list) {
			if !seen[f.Attr] {
				fmt.Fprintf(b, "| `%s` | %s | not shown | %s |\n", f.Attr, f.Kind, textKey(f))
			}
		}
	}
	b.WriteString("\n### Keys of other results\n")
	for _, r := range otherResults {
		fmt.Fprintf(b, "\n%s:\n\n| key | type | Verbose label |\n|---|---|---|\n", cell(r.Of))
		fields := r.Fields()
		if r.Rows {
			fields = append([]Field{strField("id:", "id", ""), strField("name:", "name", "")}, fields...)
		}
		for _, f := range machineOnes(fields) {
			fmt.Fprintf(b, "| `%s` | %s | %s |\n", f.Attr, f.Kind, textKey(f))
		}
	}
}

// machineOnes are the fields Json version 2 prints.
func machineOnes(fields []Field) []Field {
	var out []Field
	for _, f := range fields {
		if f.Form != textOnly {
			out = append(out, f)
		}
	}
	return out
}

// textKey is the field's key in the text form, quoted, or a dash for a
// field of the machine form alone.
func textKey(f Field) string {
	if f.Form == machineOnly {
		return "—"
	}
	return "`" + cell(f.Key) + "`"
}
