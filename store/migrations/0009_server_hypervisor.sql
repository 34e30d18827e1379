-- 0009: the hypervisor each server's agent reports in discover_server
-- (hypervisor_type, hypervisor_version), so that a pool keeps servers of one
-- type. Agents that predate the fields are taken as xen of an unknown
-- version, and so are the servers recorded before this migration, except
-- those whose agent_version says they ran this project's simulated host
-- (0.1.0-xensim): before the fields existed that agent had no other driver.
-- Discovering or refreshing a server records what its agent reports now.

ALTER TABLE servers ADD COLUMN hypervisor_type TEXT NOT NULL DEFAULT 'xen';
ALTER TABLE servers ADD COLUMN hypervisor_version TEXT NOT NULL DEFAULT '';
UPDATE servers SET hypervisor_type = 'simulated' WHERE agent_version LIKE '%-xensim';
