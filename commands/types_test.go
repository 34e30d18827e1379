package commands

import (
	"slices"
	"testing"

	"xenmanager/backend"
)

// Each object type is declared once, and the orders that keep help as it
// always was name only declared types.
func TestObjectTypesDeclaredOnce(t *testing.T) {
	seen := map[string]bool{}
	for _, typ := range objectTypes {
		if seen[typ.Name] {
			t.Errorf("%s is declared twice", typ.Name)
		}
		seen[typ.Name] = true
		if typ.List == nil && typ.Show == nil {
			t.Errorf("%s is neither listed nor shown", typ.Name)
		}
		if typ.List != nil && typ.List.Type != "" {
			t.Errorf("%s: its List names a type; list fills it in", typ.Name)
		}
	}
	for what, order := range map[string][]string{"listOrder": listOrder, "renameOrder": renameOrder, "taggable": taggable()} {
		for _, name := range order {
			if !seen[name] {
				t.Errorf("%s names %s, which is not declared", what, name)
			}
		}
	}
	for _, typ := range objectTypes {
		if _, ok := Default.verbs["edit"].Spec(typ.Name); typ.RenameHelp != "" && !ok {
			t.Errorf("%s has a RenameHelp but edit does not act on it", typ.Name)
		}
		if slices.Contains(taggable(), typ.Name) != typ.taggable() {
			t.Errorf("%s: add Tag's clause and taggable disagree", typ.Name)
		}
		// A type the core renames is edited: by the rename spec its
		// RenameHelp declares, or by an edit spec of its own that renames
		// too (edit VirtualDisk also grows the disk).
		if _, edited := Default.verbs["edit"].Spec(typ.Name); backend.Renamed(typ.Name) && !edited {
			t.Errorf("%s: the core renames it, but edit does not act on it", typ.Name)
		}
		if typ.RenameHelp != "" && !backend.Renamed(typ.Name) {
			t.Errorf("%s: RenameHelp %q, but the core does not rename it", typ.Name, typ.RenameHelp)
		}
	}
}
