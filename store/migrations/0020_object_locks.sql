-- 0020: the object locks of jobs, shared by every manager of one database
-- (PostgreSQL). Each manager serialises operations on an object in its own
-- process first; a job then records here each object it holds, in one write
-- (writes of all managers serialise, so the check for another job's row
-- and the insert are one step), and its rows go when it ends, or when the
-- leader ends the job of a dead manager. A SQLite database has one manager
-- and leaves the table empty. since is unix milliseconds of the database's
-- clock. Portable to both engines: BIGINT, TEXT.
CREATE TABLE object_locks (
    object_id  TEXT PRIMARY KEY,
    job_id     TEXT NOT NULL,
    manager_id TEXT NOT NULL,
    summary    TEXT NOT NULL,
    since      BIGINT NOT NULL
);

CREATE INDEX object_locks_job ON object_locks (job_id);
