-- 0005: networks, virtual disks and their mappings to VMs, and VNICs.

CREATE TABLE networks (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    pool_id     TEXT NOT NULL REFERENCES server_pools(id),
    bridge      TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);
CREATE INDEX networks_pool ON networks(pool_id);

CREATE TABLE virtual_disks (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    repo_id     TEXT NOT NULL REFERENCES repositories(id),
    size_mib    INTEGER NOT NULL,
    sparse      INTEGER NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);
CREATE INDEX virtual_disks_repo ON virtual_disks(repo_id);

-- A disk is mapped to at most one VM, in one slot (0 = xvda).
CREATE TABLE vm_disk_mappings (
    id         TEXT PRIMARY KEY,
    vm_id      TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    disk_id    TEXT NOT NULL UNIQUE REFERENCES virtual_disks(id),
    slot       INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (vm_id, slot)
);

CREATE TABLE vnics (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    vm_id      TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    network_id TEXT NOT NULL REFERENCES networks(id),
    mac        TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE INDEX vnics_vm ON vnics(vm_id);
