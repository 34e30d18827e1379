-- 0022: the step a running job is at, recorded before each agent call
-- that moves a VM (a JSON object: the call, the VM, the server called and,
-- for a migration, the destination), so that when the job's manager dies
-- the leader can finish or undo the job against what the agents report.
-- Portable to both engines.
ALTER TABLE jobs ADD COLUMN step TEXT NOT NULL DEFAULT '';
