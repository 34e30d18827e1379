-- 0001: the first slice: users, pools, servers, repositories, VMs.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE server_pools (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);

CREATE TABLE servers (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    unique_id          TEXT NOT NULL UNIQUE,
    hostname           TEXT NOT NULL,
    address            TEXT NOT NULL,
    port               INTEGER NOT NULL,
    agent_password     BLOB NOT NULL,
    cert_spki_sha256   TEXT NOT NULL,
    pool_id            TEXT REFERENCES server_pools(id),
    ovm_version        TEXT NOT NULL DEFAULT '',
    agent_version      TEXT NOT NULL DEFAULT '',
    manufacturer       TEXT NOT NULL DEFAULT '',
    product            TEXT NOT NULL DEFAULT '',
    cpu_model          TEXT NOT NULL DEFAULT '',
    cpu_sockets        INTEGER NOT NULL DEFAULT 0,
    cores_per_socket   INTEGER NOT NULL DEFAULT 0,
    threads_per_core   INTEGER NOT NULL DEFAULT 0,
    cpu_khz            INTEGER NOT NULL DEFAULT 0,
    total_memory_mib   INTEGER NOT NULL DEFAULT 0,
    dom0_memory_mib    INTEGER NOT NULL DEFAULT 0,
    status             TEXT NOT NULL,
    created_at         INTEGER NOT NULL
);
CREATE INDEX servers_pool ON servers(pool_id);

CREATE TABLE repositories (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    pool_id     TEXT NOT NULL REFERENCES server_pools(id),
    fs_location TEXT NOT NULL,
    mount_point TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX repositories_pool ON repositories(pool_id);

CREATE TABLE vms (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    pool_id     TEXT NOT NULL REFERENCES server_pools(id),
    repo_id     TEXT NOT NULL REFERENCES repositories(id),
    server_id   TEXT REFERENCES servers(id),
    status      TEXT NOT NULL,
    memory_mib  INTEGER NOT NULL,
    cpu_count   INTEGER NOT NULL,
    domain_type TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);
CREATE INDEX vms_name ON vms(name);
CREATE INDEX vms_server ON vms(server_id);
CREATE INDEX vms_repo ON vms(repo_id);
