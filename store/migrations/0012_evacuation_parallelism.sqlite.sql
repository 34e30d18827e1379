-- 0012: how many VMs entering maintenance mode migrates off a server at
-- once (edit Manager evacuationParallelism=, show Manager); 4 by default.

ALTER TABLE manager_settings ADD COLUMN evacuation_parallelism INTEGER NOT NULL DEFAULT 4
    CHECK (evacuation_parallelism BETWEEN 1 AND 64);
