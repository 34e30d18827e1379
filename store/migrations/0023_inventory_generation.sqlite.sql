-- The inventory's generation covers repositories and users as well as
-- servers and server pools (store/generation.go). On SQLite the writer's
-- pre-update hook sees every row of these tables: nothing to add to the
-- schema.
SELECT 1;
