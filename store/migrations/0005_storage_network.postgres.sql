-- 0005: networks, virtual disks and their mappings to VMs, and VNICs.
--
-- PostgreSQL's form of 0005_storage_network.sqlite.sql (the same schema:
-- BIGINT where SQLite has INTEGER, whose PostgreSQL namesake is 32-bit).

CREATE TABLE networks (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    pool_id     TEXT NOT NULL REFERENCES server_pools(id),
    bridge      TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);
CREATE INDEX networks_pool ON networks(pool_id);

CREATE TABLE virtual_disks (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    repo_id     TEXT NOT NULL REFERENCES repositories(id),
    size_mib    BIGINT NOT NULL,
    sparse      BIGINT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);
CREATE INDEX virtual_disks_repo ON virtual_disks(repo_id);

-- A disk is mapped to at most one VM, in one slot (0 = xvda). rowid is
-- SQLite's implicit one, made explicit here: the mappings of a disk are
-- listed in the order they were made (ORDER BY created_at, rowid).
CREATE TABLE vm_disk_mappings (
    id         TEXT PRIMARY KEY,
    vm_id      TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    disk_id    TEXT NOT NULL UNIQUE REFERENCES virtual_disks(id),
    slot       BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    rowid      BIGINT GENERATED ALWAYS AS IDENTITY,
    UNIQUE (vm_id, slot)
);

CREATE TABLE vnics (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    vm_id      TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    network_id TEXT NOT NULL REFERENCES networks(id),
    mac        TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE INDEX vnics_vm ON vnics(vm_id);
