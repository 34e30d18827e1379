package store

import (
	"context"
	"time"
)

// Tag is a label operators put on objects.
type Tag struct {
	ID          string
	Name        string
	Description string
	CreatedAt   time.Time
}

const tagColumns = `id, name, description, created_at`

func scanTag(row scanner) (Tag, error) {
	var t Tag
	var created int64
	err := row.Scan(&t.ID, &t.Name, &t.Description, &created)
	t.CreatedAt = fromUnix(created)
	return t, err
}

// InsertTag adds a tag.
func (q *Queries) InsertTag(ctx context.Context, t Tag) error {
	return q.exec(ctx, `INSERT INTO tags (`+tagColumns+`) VALUES ($1, $2, $3, $4)`,
		t.ID, t.Name, t.Description, unix(t.CreatedAt))
}

// Tag returns the tag with id, or ErrNotFound.
func (q *Queries) Tag(ctx context.Context, id string) (Tag, error) {
	return queryOne(ctx, q.db, scanTag, `SELECT `+tagColumns+` FROM tags WHERE id = $1`, id)
}

// Tags returns every tag by name.
func (q *Queries) Tags(ctx context.Context) ([]Tag, error) {
	return queryAll(ctx, q.db, scanTag, `SELECT `+tagColumns+` FROM tags ORDER BY name, id`)
}

// TagsByName returns the tags called name.
func (q *Queries) TagsByName(ctx context.Context, name string) ([]Tag, error) {
	return queryAll(ctx, q.db, scanTag, `SELECT `+tagColumns+` FROM tags WHERE name = $1 ORDER BY id`, name)
}

// DeleteTag removes a tag and its placements.
func (q *Queries) DeleteTag(ctx context.Context, id string) error {
	return q.execOne(ctx, `DELETE FROM tags WHERE id = $1`, id)
}

// TagObject puts the tag on an object; putting it twice is a no-op.
func (q *Queries) TagObject(ctx context.Context, tagID, objectID, objectType string) error {
	return q.exec(ctx, `INSERT INTO object_tags (tag_id, object_id, object_type) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		tagID, objectID, objectType)
}

// UntagObject takes the tag off an object.
func (q *Queries) UntagObject(ctx context.Context, tagID, objectID string) error {
	return q.execOne(ctx, `DELETE FROM object_tags WHERE tag_id = $1 AND object_id = $2`, tagID, objectID)
}

// TaggedObjects returns the ids of the objects that carry any of tagIDs.
func (q *Queries) TaggedObjects(ctx context.Context, tagIDs []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, id := range tagIDs {
		objects, err := queryAll(ctx, q.db, scanString, `SELECT object_id FROM object_tags WHERE tag_id = $1`, id)
		if err != nil {
			return nil, err
		}
		for _, o := range objects {
			out[o] = true
		}
	}
	return out, nil
}

// ObjectTags returns the names of the tags on an object.
func (q *Queries) ObjectTags(ctx context.Context, objectID string) ([]string, error) {
	return queryAll(ctx, q.db, scanString, `SELECT t.name FROM object_tags o JOIN tags t ON t.id = o.tag_id WHERE o.object_id = $1 ORDER BY t.name`, objectID)
}

// CountTagged returns how many objects carry the tag.
func (q *Queries) CountTagged(ctx context.Context, tagID string) (int, error) {
	return q.count(ctx, `object_tags`, `tag_id = $1`, tagID)
}
