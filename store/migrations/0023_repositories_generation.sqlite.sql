-- The inventory's generation covers repositories as well as servers and
-- server pools (store/generation.go). On SQLite the writer's pre-update
-- hook sees every row of the three tables: nothing to add to the schema.
SELECT 1;
