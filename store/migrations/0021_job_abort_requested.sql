-- 0021: abort Job of a job another manager runs. The manager the command
-- reached sets abort_requested (1) in the job's row; the manager running
-- the job polls the flags of its running jobs every second and aborts
-- them as a local abort does. Portable to both engines: BIGINT 0/1.
ALTER TABLE jobs ADD COLUMN abort_requested BIGINT NOT NULL DEFAULT 0;
