-- 0001: the first slice: users, pools, servers, repositories, VMs.
--
-- PostgreSQL's form of 0001_initial.sqlite.sql (the same schema: BIGINT
-- where SQLite has INTEGER, whose PostgreSQL namesake is 32-bit, BYTEA for
-- BLOB).

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE server_pools (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);

CREATE TABLE servers (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    unique_id          TEXT NOT NULL UNIQUE,
    hostname           TEXT NOT NULL,
    address            TEXT NOT NULL,
    port               BIGINT NOT NULL,
    agent_password     BYTEA NOT NULL,
    cert_spki_sha256   TEXT NOT NULL,
    pool_id            TEXT REFERENCES server_pools(id),
    ovm_version        TEXT NOT NULL DEFAULT '',
    agent_version      TEXT NOT NULL DEFAULT '',
    manufacturer       TEXT NOT NULL DEFAULT '',
    product            TEXT NOT NULL DEFAULT '',
    cpu_model          TEXT NOT NULL DEFAULT '',
    cpu_sockets        BIGINT NOT NULL DEFAULT 0,
    cores_per_socket   BIGINT NOT NULL DEFAULT 0,
    threads_per_core   BIGINT NOT NULL DEFAULT 0,
    cpu_khz            BIGINT NOT NULL DEFAULT 0,
    total_memory_mib   BIGINT NOT NULL DEFAULT 0,
    dom0_memory_mib    BIGINT NOT NULL DEFAULT 0,
    status             TEXT NOT NULL,
    created_at         BIGINT NOT NULL
);
CREATE INDEX servers_pool ON servers(pool_id);

CREATE TABLE repositories (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    pool_id     TEXT NOT NULL REFERENCES server_pools(id),
    fs_location TEXT NOT NULL,
    mount_point TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX repositories_pool ON repositories(pool_id);

CREATE TABLE vms (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    pool_id     TEXT NOT NULL REFERENCES server_pools(id),
    repo_id     TEXT NOT NULL REFERENCES repositories(id),
    server_id   TEXT REFERENCES servers(id),
    status      TEXT NOT NULL,
    memory_mib  BIGINT NOT NULL,
    cpu_count   BIGINT NOT NULL,
    domain_type TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);
CREATE INDEX vms_name ON vms(name);
CREATE INDEX vms_server ON vms(server_id);
CREATE INDEX vms_repo ON vms(repo_id);

-- PostgreSQL only: the servers' generation (store/generation.go). Every row
-- of servers and server_pools a statement changes notifies channel
-- xenmanager_servers when its transaction commits, which every manager
-- listens on; and the manager whose writer makes the change is told at once
-- by a notice, on the connections that ask for it (xenmanager.writer = on),
-- as SQLite's pre-update hook tells it. SQLite has no such trigger: there
-- one manager runs, and its hook sees every row.
CREATE FUNCTION xenmanager_servers_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('xenmanager_servers', '');
    IF current_setting('xenmanager.writer', true) = 'on' THEN
        RAISE NOTICE 'xenmanager: servers changed';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER server_pools_changed AFTER INSERT OR UPDATE OR DELETE ON server_pools
    FOR EACH ROW EXECUTE FUNCTION xenmanager_servers_changed();
CREATE TRIGGER servers_changed AFTER INSERT OR UPDATE OR DELETE ON servers
    FOR EACH ROW EXECUTE FUNCTION xenmanager_servers_changed();
