-- The VMs' generations (store/vmgeneration.go). On SQLite the writer's
-- pre-update hook sees every row of the tables show Vm reads: nothing to
-- add to the schema.
SELECT 1;
