-- The inventory's generation covers the anti-affinity groups and their
-- members (store/generation.go). On SQLite the writer's pre-update hook
-- sees every row of these tables, those a foreign key's cascade deletes
-- included: nothing to add to the schema.
SELECT 1;
