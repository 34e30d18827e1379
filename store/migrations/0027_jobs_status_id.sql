-- 0027: the jobs' status index keyed by (status, id), not status alone.
-- A Running job's writes (its step, progress, end, abort) look it up by
-- id and status = 'Running'; with an index on status alone PostgreSQL's
-- planner, whose statistics say almost every job has ended, read that
-- index's Running entries and filtered them by id: during a batch of 1,000
-- starts every running job and every version a job left behind, at each
-- job's end (docs/performance.md, "Session 16"). Keyed by both, the same
-- lookup reads one entry whichever index the planner takes, and the
-- queries that look for the Running jobs (orphans, aborts) read the
-- index's Running range as before.

DROP INDEX jobs_status;
CREATE INDEX jobs_status_id ON jobs(status, id);
