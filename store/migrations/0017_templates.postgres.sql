-- 0017: VM templates (VmTemplate), the clone customizers of VMs and
-- templates (VmCloneCustomizer and its storage and network mappings), and
-- the manager's limits on the copies clone runs at once.
--
-- A template is Templates/<id>/vm.cfg in its repository; its disks are
-- VirtualDisks/<disk_id>.img files of repositories of its pool, recorded
-- here rather than as VirtualDisks, so that no VM maps, and no delete
-- VirtualDisk removes, a template's disk. A template imported by a
-- non-administrator stays Pending, and is not cloned, until an
-- administrator approves it.
--
-- PostgreSQL's form of 0017_templates.sqlite.sql (the same schema: BIGINT
-- where SQLite has INTEGER, whose PostgreSQL namesake is 32-bit).

CREATE TABLE vm_templates (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    pool_id         TEXT NOT NULL REFERENCES server_pools(id),
    repo_id         TEXT NOT NULL REFERENCES repositories(id),
    memory_mib      BIGINT NOT NULL,
    cpu_count       BIGINT NOT NULL,
    cpu_count_limit BIGINT NOT NULL DEFAULT 0,
    domain_type     TEXT NOT NULL,
    os_type         TEXT NOT NULL DEFAULT '',
    description     TEXT NOT NULL DEFAULT '',
    origin          TEXT NOT NULL DEFAULT '', -- the import's URL (without a password), or the VM or template it was cloned from
    state           TEXT NOT NULL,            -- Approved, or Pending until an administrator approves it
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX vm_templates_name ON vm_templates(name);
CREATE INDEX vm_templates_repo ON vm_templates(repo_id);

-- A template's disk in a slot (0 = xvda): the template's VmDiskMapping.
CREATE TABLE vm_template_disks (
    id          TEXT PRIMARY KEY,
    template_id TEXT NOT NULL REFERENCES vm_templates(id) ON DELETE CASCADE,
    disk_id     TEXT NOT NULL UNIQUE,
    repo_id     TEXT NOT NULL REFERENCES repositories(id),
    name        TEXT NOT NULL,
    slot        BIGINT NOT NULL,
    size_mib    BIGINT NOT NULL,
    sparse      BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (template_id, slot)
);
CREATE INDEX vm_template_disks_repo ON vm_template_disks(repo_id);

-- A template's network interface; network_id is NULL for one whose bridge
-- (in an imported vm.cfg) no network of the pool has.
CREATE TABLE vm_template_vnics (
    id          TEXT PRIMARY KEY,
    template_id TEXT NOT NULL REFERENCES vm_templates(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    network_id  TEXT REFERENCES networks(id),
    position    BIGINT NOT NULL,
    mac         TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (template_id, position)
);
CREATE INDEX vm_template_vnics_network ON vm_template_vnics(network_id);

-- A clone customizer belongs to one VM or one template (exactly one of
-- vm_id and template_id) and goes with it.
CREATE TABLE vm_clone_customizers (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    pool_id     TEXT NOT NULL REFERENCES server_pools(id),
    vm_id       TEXT REFERENCES vms(id) ON DELETE CASCADE,
    template_id TEXT REFERENCES vm_templates(id) ON DELETE CASCADE,
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    CHECK ((vm_id IS NULL) <> (template_id IS NULL))
);
CREATE INDEX vm_clone_customizers_name ON vm_clone_customizers(name);
CREATE INDEX vm_clone_customizers_vm ON vm_clone_customizers(vm_id);
CREATE INDEX vm_clone_customizers_template ON vm_clone_customizers(template_id);

-- Where and how a clone copies one of the source's disks: disk_mapping_id
-- is a VmDiskMapping of the source (vm_disk_mappings, or vm_template_disks
-- for a template), checked again at each clone.
CREATE TABLE vm_clone_storage_mappings (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    customizer_id   TEXT NOT NULL REFERENCES vm_clone_customizers(id) ON DELETE CASCADE,
    disk_mapping_id TEXT NOT NULL,
    clone_type      TEXT NOT NULL, -- SPARSE_COPY, NON_SPARSE_COPY or THIN_CLONE
    repo_id         TEXT NOT NULL REFERENCES repositories(id),
    created_at      BIGINT NOT NULL,
    UNIQUE (customizer_id, disk_mapping_id)
);
CREATE INDEX vm_clone_storage_mappings_repo ON vm_clone_storage_mappings(repo_id);

-- Which network a clone's interface made from one of the source's VNICs
-- (vnics, or vm_template_vnics for a template) is on.
CREATE TABLE vm_clone_network_mappings (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    customizer_id TEXT NOT NULL REFERENCES vm_clone_customizers(id) ON DELETE CASCADE,
    vnic_id       TEXT NOT NULL,
    network_id    TEXT NOT NULL REFERENCES networks(id),
    created_at    BIGINT NOT NULL,
    UNIQUE (customizer_id, vnic_id)
);
CREATE INDEX vm_clone_network_mappings_network ON vm_clone_network_mappings(network_id);

-- How many copies of a clone run at once on one server, and into one
-- repository (edit Manager cloneParallelismPerServer=,
-- cloneParallelismPerRepository=).
ALTER TABLE manager_settings ADD COLUMN clone_parallelism_per_server BIGINT NOT NULL DEFAULT 4
    CHECK (clone_parallelism_per_server BETWEEN 1 AND 64);
ALTER TABLE manager_settings ADD COLUMN clone_parallelism_per_repository BIGINT NOT NULL DEFAULT 8
    CHECK (clone_parallelism_per_repository BETWEEN 1 AND 64);
