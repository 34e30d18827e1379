-- 0007: the pool a job acts in, so that users see only their pools' jobs.

ALTER TABLE jobs ADD COLUMN pool_id TEXT NOT NULL DEFAULT '';
