package commands

import (
	"fmt"
	"slices"
	"strings"

	"xenmanager/backend/names"
)

// Reference renders the command reference (docs/reference.md) from the
// registry, so that the documentation cannot drift from the parser.
func Reference(reg *Registry) string {
	var b strings.Builder
	b.WriteString("# Command reference\n\n")
	b.WriteString("Generated from the command registry by `make docs`; do not edit by hand (a test fails when this file\n")
	b.WriteString("differs from what the registry generates). The grammar and output formats are described in\n")
	b.WriteString("[the user guide](guide.md).\n\n")
	b.WriteString("Verbs, object types and attribute names are case-insensitive. `<instance>` is `id=<id>` or\n`name=<name>`. Attributes marked * are required.\n\n")
	b.WriteString("`[<instance>] [<filter> ...]` (the actions that take `multiple=`): an instance, filters, or both; the filters, " +
		"those of `list` for the type, are listed with the attributes and act only with `multiple=Yes`. Details: " +
		"[the command language](command-language.md#filters-select-the-objects-of-an-action).\n\n")
	b.WriteString("Names given to objects (`name=` of create, edit and importIso): " + names.Rule + ". " +
		"A name is kept in Unicode NFC and compared case-sensitively; names need not be unique. Names stored " +
		"before these rules keep working as they are. Details: [the command language](command-language.md#naming-objects).\n\n")
	b.WriteString("## Commands\n\n| command | what it does |\n|---|---|\n")
	for _, v := range reg.Verbs() {
		for _, s := range v.Specs {
			fmt.Fprintf(&b, "| [`%s`](#%s) | %s |\n", strings.TrimSpace(s.Verb+" "+s.Type), anchor(s), cell(s.Help))
		}
	}
	for _, v := range reg.Verbs() {
		for _, s := range v.Specs {
			fmt.Fprintf(&b, "\n### %s\n\n%s\n\n```\n%s\n```\n", strings.TrimSpace(s.Verb+" "+s.Type), cell(s.Help), s.Usage())
			if len(s.Attrs) > 0 {
				b.WriteString("\n| attribute | type | default | meaning |\n|---|---|---|---|\n")
				for _, a := range s.Attrs {
					name := a.Name
					if a.Required {
						name = "*" + name
					}
					fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", name, attrType(a), a.Default, cell(a.Help))
				}
			}
			if len(s.clashes) > 0 {
				var not []string
				for _, c := range s.clashes {
					why := "the command's own attribute"
					if c.own.Name != c.filter.Name {
						why = fmt.Sprintf("`%s=` names a %s already", c.own.Name, c.own.Object)
					}
					not = append(not, fmt.Sprintf("`%s=` (%s)", c.filter.Name, why))
				}
				slices.Sort(not)
				fmt.Fprintf(&b, "\nNot taken as filters: %s.\n", strings.Join(not, ", "))
			}
			if c := s.Clause; c != nil {
				req := "optional"
				if c.Required {
					req = "required"
				}
				fmt.Fprintf(&b, "\nClause (%s): `%s %s <instance>`\n", req, c.Prep, strings.Join(c.Types, "|"))
			}
		}
	}
	b.WriteString("\n## Error codes\n\nShown after `Error Msg:`; each code has one meaning and one exit status, whether the parser\nor the command found the fault.\n\n| code | exit status | meaning |\n|---|---|---|\n")
	for _, c := range Codes {
		fmt.Fprintf(&b, "| `%s` | %d | %s |\n", c.Code, c.ExitStatus(), c.Meaning)
	}
	b.WriteString("\n## Exit status of exec and batch sessions\n\n| status | meaning |\n|---|---|\n")
	b.WriteString("| 0 | every command succeeded |\n| 1 | at least one command failed with a code of exit status 1 |\n")
	b.WriteString("| 2 | at least one command could not be parsed: a code of exit status 2, or a line refused whole |\n")
	b.WriteString("| 3 | authentication or permission: `XM_0403E`, or a user deleted or never authenticated |\n")
	b.WriteString("\nA batch goes on after a failed or unparsable command; the exit status is the worst one seen.\n")
	referenceJSONVersion2(&b)
	return b.String()
}

// cell escapes text for a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", "\\|", "<", "&lt;", ">", "&gt;").Replace(s)
}

func anchor(s *Spec) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s.Verb+" "+s.Type), " ", "-"))
}

func attrType(a Attr) string {
	switch a.Kind {
	case AttrInt:
		return fmt.Sprintf("integer %d..%d", a.Min, a.Max)
	case AttrEnum:
		return strings.Join(a.Enum, " \\| ")
	case AttrYesNo:
		return "Yes \\| No"
	case AttrObject:
		return a.Object + " name or id"
	}
	return a.Kind.String()
}
