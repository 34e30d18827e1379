-- 0028: on PostgreSQL the writer's session learns which VMs its
-- transaction changed at the commit (0028_vm_changes_at_commit.postgres.sql).
-- On SQLite the writer's pre-update hook sees every row: nothing to change.
SELECT 1;
