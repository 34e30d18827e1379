-- 0003: jobs, events, the audit log; pool roles of servers; VM settings of
-- the full lifecycle; users' pools and SSH keys.

CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,
    summary     TEXT NOT NULL,
    user_name   TEXT NOT NULL,
    objects     TEXT NOT NULL DEFAULT '',   -- space-separated ids the job locks
    status      TEXT NOT NULL,              -- Running, Success, Failure, Aborted
    progress    INTEGER NOT NULL DEFAULT 0, -- 0..100
    message     TEXT NOT NULL DEFAULT '',
    result      TEXT NOT NULL DEFAULT '',
    error       TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    ended_at    INTEGER
);
CREATE INDEX jobs_status ON jobs(status);
CREATE INDEX jobs_created ON jobs(created_at);

CREATE TABLE events (
    id           TEXT PRIMARY KEY,
    severity     TEXT NOT NULL,   -- Info, Warning, Error
    kind         TEXT NOT NULL,
    object_type  TEXT NOT NULL DEFAULT '',
    object_id    TEXT NOT NULL DEFAULT '',
    object_name  TEXT NOT NULL DEFAULT '',
    pool_id      TEXT NOT NULL DEFAULT '',
    description  TEXT NOT NULL,
    acknowledged INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL
);
CREATE INDEX events_created ON events(created_at);

CREATE TABLE audit_records (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_name   TEXT NOT NULL,
    remote      TEXT NOT NULL,
    command     TEXT NOT NULL,
    result      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE user_pools (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    pool_id TEXT NOT NULL REFERENCES server_pools(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, pool_id)
);

CREATE TABLE ssh_keys (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    fingerprint TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

ALTER TABLE servers ADD COLUMN roles TEXT NOT NULL DEFAULT 'xen,utility';
ALTER TABLE servers ADD COLUMN is_master INTEGER NOT NULL DEFAULT 0;
ALTER TABLE servers ADD COLUMN maintenance_mode INTEGER NOT NULL DEFAULT 0;

ALTER TABLE vms ADD COLUMN cpu_count_limit INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vms ADD COLUMN cpu_pinning TEXT NOT NULL DEFAULT '';
ALTER TABLE vms ADD COLUMN preferred_servers TEXT NOT NULL DEFAULT '';
ALTER TABLE vms ADD COLUMN high_availability INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vms ADD COLUMN os_type TEXT NOT NULL DEFAULT 'Oracle Linux 9';
ALTER TABLE vms ADD COLUMN boot_order TEXT NOT NULL DEFAULT 'DISK';
ALTER TABLE vms ADD COLUMN start_policy TEXT NOT NULL DEFAULT 'USE_POOL_POLICY';
ALTER TABLE vms ADD COLUMN last_server_id TEXT NOT NULL DEFAULT '';

ALTER TABLE server_pools ADD COLUMN start_policy TEXT NOT NULL DEFAULT 'BEST_SERVER';
