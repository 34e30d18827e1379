-- 0004: tags on objects, for grouping and for list's tag= filter.

CREATE TABLE tags (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);
CREATE INDEX tags_name ON tags(name);

CREATE TABLE object_tags (
    tag_id      TEXT NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    object_id   TEXT NOT NULL,
    object_type TEXT NOT NULL,
    PRIMARY KEY (tag_id, object_id)
);
CREATE INDEX object_tags_object ON object_tags(object_id);
