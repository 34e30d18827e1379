-- 0012: how many VMs entering maintenance mode migrates off a server at
-- once (edit Manager evacuationParallelism=, show Manager); 4 by default.
--
-- PostgreSQL's form of 0012_evacuation_parallelism.sqlite.sql (the same
-- schema: BIGINT where SQLite has INTEGER, whose PostgreSQL namesake is
-- 32-bit).

ALTER TABLE manager_settings ADD COLUMN evacuation_parallelism BIGINT NOT NULL DEFAULT 4
    CHECK (evacuation_parallelism BETWEEN 1 AND 64);
