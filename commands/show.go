package commands

import (
	"context"
)

// verbShow declares show on every type with a Show.
func verbShow() *VerbInfo {
	v := &VerbInfo{Name: "show", Help: "Show one object's attributes as 'Key = value' lines."}
	for _, t := range typesWhere(func(t *objectType) bool { return t.Show != nil }) {
		v.Specs = append(v.Specs, &Spec{Type: t.Name, Instance: !t.Single, Help: "Show one " + t.Name + ".", Run: t.runShow})
	}
	return v
}

// runShow shows the object the command names; a taggable one ends with its
// Tags.
func (t *objectType) runShow(ctx context.Context, x *Exec) (*Result, error) {
	fields, err := t.Show(ctx, x)
	if err != nil {
		return nil, err
	}
	if t.taggable() && !hasField(fields, tagsLabel) {
		fields = append(fields, tagsField(x.Backend.TagsOf(ctx, fieldValue(fields, "Id"))))
	}
	return &Result{Fields: fields}, nil
}

// tagsLabel is the label of a taggable object's Tags field.
const tagsLabel = "Tags"

// tagsField is the Tags a taggable object's show ends with: their names.
func tagsField(names []string) Field { return stringsField(tagsLabel, "tags", names, ", ") }

// showFields are the fields show prints for a type: those of a zero object
// (every key of the machine form), and tags for a taggable type. Nil: the
// type is not shown.
func (t *objectType) showFields() []Field {
	if t.ShowFields == nil {
		return nil
	}
	fields := t.ShowFields()
	if t.taggable() {
		fields = append(fields, tagsField(nil))
	}
	return fields
}
