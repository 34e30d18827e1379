-- 0006: each user's command history, kept across sessions.

CREATE TABLE history (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    user_name  TEXT NOT NULL,
    line       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX history_user ON history(user_name, seq);
