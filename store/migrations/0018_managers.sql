-- 0018: the managers of a database and the leader lease. Every manager
-- process is a member (a row of managers, id new at each start) that
-- renews last_seen; one of them holds the leader lease (the one row of
-- leader) and runs the fleet-wide work. Each job records the member that
-- runs it, so that the leader ends only the jobs of dead members. Times
-- are unix milliseconds of the database's clock. Portable to both engines:
-- BIGINT, TEXT, 0/1 for booleans.

CREATE TABLE managers (
    id         TEXT PRIMARY KEY,
    hostname   TEXT NOT NULL,
    address    TEXT NOT NULL DEFAULT '',  -- the SSH address it listens on
    pid        BIGINT NOT NULL DEFAULT 0,
    version    TEXT NOT NULL DEFAULT '',
    started_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    ended      BIGINT NOT NULL DEFAULT 0  -- 1: known to have stopped
);

CREATE TABLE leader (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    manager_id TEXT NOT NULL DEFAULT '',  -- the member holding the lease; '' before the first
    term       BIGINT NOT NULL DEFAULT 0, -- incremented at every take-over
    expires_at BIGINT NOT NULL DEFAULT 0  -- the lease ends then unless renewed
);

INSERT INTO leader (id) VALUES (1);

ALTER TABLE jobs ADD COLUMN manager_id TEXT NOT NULL DEFAULT '';  -- '' for jobs of before 0018
