package commands

import (
	"context"

	"xenmanager/backend"
)

// tagType is the Tag: a label put on taggable objects (see
// objectType.taggable), which list filters by.
var tagType = &objectType{
	Name:       "Tag",
	List:       &Spec{Help: "List tags.", Attrs: []Attr{filterName}, Run: streamedBy((*backend.Manager).StreamTags, tagRow)},
	Show:       shownBy((*backend.Manager).Tag, tagFields),
	ShowFields: fieldsOf(tagFields),
	ListFields: rowFieldsOf(tagRow),
	RenameHelp: "Rename a tag or change its description (Administrators: tags are shared by every pool).",
}

func tagRow(t backend.Tag) Row {
	return Row{ID: t.ID, Name: t.Name, Fields: []Field{intField("objects", "objectCount", int64(t.Objects)), strField("description", "description", t.Description)}}
}

func tagFields(t backend.Tag) []Field {
	return []Field{strField("Name", "name", t.Name), strField("Id", "id", t.ID), strField("Description", "description", t.Description),
		intField("Objects", "objectCount", int64(t.Objects))}
}

// taggable names the types tags go on, for the clause of add and remove
// Tag: the core's, in its order.
func taggable() []string { return backend.TaggableTypes() }

func createTagSpec() *Spec {
	return &Spec{
		Type: "Tag", Help: "Create a tag to put on objects (add Tag ... to Vm ...); Administrators, since tags are shared by every pool.",
		Attrs: []Attr{
			{Name: "name", Kind: AttrString, Required: true, Help: "the tag's name"},
			{Name: "description", Kind: AttrString, Help: "free text"},
		},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			t, err := x.Backend.CreateTag(ctx, x.Str("name"), x.Str("description"))
			return rowOf(t.ID, t.Name, err)
		},
	}
}

func deleteTagSpec() *Spec {
	return &Spec{
		Type: "Tag", Instance: true, Help: "Delete a tag; it comes off every object, in every pool (Administrators).",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			t, err := x.Backend.DeleteTag(ctx, x.Ref())
			return rowOf(t.ID, t.Name, err)
		},
	}
}

// tagSpec declares add Tag (remove false) or remove Tag (remove true).
func tagSpec(remove bool, prep, help string) *Spec {
	return &Spec{
		Type: "Tag", Instance: true, Help: help,
		Clause: &Clause{Prep: prep, Types: taggable(), Required: true},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			t, err := x.Backend.TagObject(ctx, x.Ref(), x.Cmd.Target.Type, x.TargetRef(), remove)
			return rowOf(t.ID, t.Name, err)
		},
	}
}

func addTagSpec() *Spec {
	return tagSpec(false, "to", "Put a tag on an object (list <Type> tag=<name> finds them). Operators tag the VMs of their pools; Administrators any object.")
}

func removeTagSpec() *Spec {
	return tagSpec(true, "from", "Take a tag off an object. Operators untag the VMs of their pools; Administrators any object.")
}
