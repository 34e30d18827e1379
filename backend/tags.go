package backend

import (
	"context"
	"errors"
	"time"

	"xenmanager/store"
)

// Tag is a tag as the operator sees it.
type Tag struct {
	ID, Name, Description string
	Objects               int
	CreatedAt             time.Time
}

func (t Tag) String() string { return "Tag " + t.Name }

func (m *Manager) tagKind() kind[store.Tag] {
	q := m.st.Read()
	return kind[store.Tag]{"Tag", q.Tag, q.TagsByName, q.Tags,
		func(x store.Tag) string { return x.Name }, func(x store.Tag) string { return x.ID }, func(store.Tag) string { return "" }}
}

// findTag resolves a tag; tags are global and visible to every user.
func (m *Manager) findTag(ctx context.Context, ref Ref) (store.Tag, error) {
	return resolve(context.WithValue(ctx, actorKey{}, system), m, m.tagKind(), ref)
}

// tagsRefused is what an actor who may not manage tags may not do. Tags
// are global: one tag is seen, and may be on objects, in every pool, so an
// Operator, whose rights end at their pools' VMs, neither makes, renames
// nor deletes them; they put the tags there are on their VMs and take them
// off (TagObject).
const tagsRefused = "create, rename or delete tags, which every pool shares (Administrators do)"

// CreateTag adds a tag (Administrators: tags are global).
func (m *Manager) CreateTag(ctx context.Context, name, description string) (Tag, error) {
	if err := m.authorizeTo(ctx, PermManage, tagsRefused); err != nil {
		return Tag{}, err
	}
	name, err := ValidateName("Tag", name)
	if err != nil {
		return Tag{}, err
	}
	t := store.Tag{ID: NewID(TypeTag), Name: name, Description: description, CreatedAt: time.Now()}
	if err := m.st.Write(ctx, func(q *store.Queries) error { return q.InsertTag(ctx, t) }); err != nil {
		return Tag{}, &Error{Kind: KindInternal, Msg: "record tag", Cause: err}
	}
	return m.Tag(ctx, Ref{ID: t.ID})
}

// Tags lists the tags whose name matches f.Name.
func (m *Manager) Tags(ctx context.Context, f Filter) ([]Tag, error) {
	l, err := m.StreamTags(ctx, f)
	return collected(ctx, l, err)
}

// Tag returns one tag.
func (m *Manager) Tag(ctx context.Context, ref Ref) (Tag, error) {
	t, err := m.findTag(ctx, ref)
	if err != nil {
		return Tag{}, err
	}
	return m.tagView(ctx, m.st.Read(), t)
}

func (m *Manager) tagView(ctx context.Context, q *store.Queries, t store.Tag) (Tag, error) {
	n, err := counted(q.CountTagged(ctx, t.ID))
	if err != nil {
		return Tag{}, err
	}
	return Tag{ID: t.ID, Name: t.Name, Description: t.Description, Objects: n, CreatedAt: t.CreatedAt}, nil
}

// DeleteTag removes a tag from every object, in every pool, and deletes it
// (administrators: it reaches pools others do not see).
func (m *Manager) DeleteTag(ctx context.Context, ref Ref) (Tag, error) {
	if err := m.authorizeTo(ctx, PermManage, tagsRefused); err != nil {
		return Tag{}, err
	}
	t, err := m.findTag(ctx, ref)
	if err != nil {
		return Tag{}, err
	}
	view, err := m.tagView(ctx, m.st.Read(), t)
	if err != nil {
		return Tag{}, err
	}
	if err := m.st.Write(ctx, func(q *store.Queries) error { return q.DeleteTag(ctx, t.ID) }); err != nil {
		return Tag{}, &Error{Kind: KindInternal, Msg: "delete tag", Cause: err}
	}
	return view, nil
}

// TagObject puts a tag on (or, with remove, takes it off) the object of
// objType (a taggable type of objectKinds: "Vm", "Server" ...) that ref
// names; that needs what changing the object needs (objectKind.tagPerm):
// an Operator tags their pools' VMs, not their servers, pools or
// repositories.
func (m *Manager) TagObject(ctx context.Context, tag Ref, objType string, ref Ref, remove bool) (Tag, error) {
	if err := m.authorize(ctx, PermVMLifecycle); err != nil {
		return Tag{}, err
	}
	t, err := m.findTag(ctx, tag)
	if err != nil {
		return Tag{}, err
	}
	k := objectKindNamed(objType)
	if k == nil || !k.taggable {
		return Tag{}, errorf(KindInvalidArgument, "tags go on %s objects, not %s", taggableKinds(), objType)
	}
	o, err := k.find(ctx, m, ref)
	if err != nil {
		return Tag{}, err
	}
	if err := m.authorizeTo(ctx, k.tagPerm, "put tags on or take them off "+objType+" objects (Administrators do)"); err != nil {
		return Tag{}, err
	}
	err = m.st.Write(ctx, func(q *store.Queries) error {
		if remove {
			return q.UntagObject(ctx, t.ID, o.id)
		}
		return q.TagObject(ctx, t.ID, o.id, objType)
	})
	if errors.Is(err, store.ErrNotFound) {
		return Tag{}, errorf(KindInvalidState, "%s %s does not carry Tag %s", objType, ref, t.Name)
	}
	if err != nil {
		return Tag{}, &Error{Kind: KindInternal, Msg: "record tag", Cause: err}
	}
	return m.tagView(ctx, m.st.Read(), t)
}

// TagsOf returns the names of the tags on an object.
func (m *Manager) TagsOf(ctx context.Context, objectID string) []string {
	names, err := m.st.Read().ObjectTags(ctx, objectID)
	if err != nil {
		m.log.Warn("read tags", "object", objectID, "err", err)
	}
	return names
}
