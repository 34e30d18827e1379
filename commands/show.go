package commands

import (
	"context"
	"strings"
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
	props, err := t.Show(ctx, x)
	if err != nil {
		return nil, err
	}
	if t.taggable() {
		props = append(props, Prop{"Tags", strings.Join(x.Backend.TagsOf(ctx, propValue(props, "Id")), ", ")})
	}
	return &Result{Props: props}, nil
}
