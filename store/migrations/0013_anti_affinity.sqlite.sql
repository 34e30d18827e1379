-- 0013: anti-affinity groups. A group belongs to a server pool; its members
-- are VMs of that pool, which placement never puts two of on one server.
-- A group goes with its pool (a pool is deleted empty, so its groups have
-- no members then); a member goes with its VM. The manager refuses to
-- delete a group that still has members; the cascade from a group to its
-- memberships only serves the pool's.

CREATE TABLE anti_affinity_groups (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    pool_id     TEXT NOT NULL REFERENCES server_pools(id) ON DELETE CASCADE,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);
CREATE INDEX anti_affinity_groups_name ON anti_affinity_groups(name);
CREATE INDEX anti_affinity_groups_pool ON anti_affinity_groups(pool_id);

CREATE TABLE anti_affinity_members (
    group_id TEXT NOT NULL REFERENCES anti_affinity_groups(id) ON DELETE CASCADE,
    vm_id    TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    added_at INTEGER NOT NULL,
    PRIMARY KEY (group_id, vm_id)
);
CREATE INDEX anti_affinity_members_vm ON anti_affinity_members(vm_id);
