-- 0014: high availability of a server pool (edit ServerPool
-- highAvailability=Yes haRepository=R). The pool's agents keep leases in its
-- HA repository and fence themselves when they cannot renew them; the
-- manager restarts a dead server's HA VMs elsewhere once its lease has
-- expired plus the margin. Times are in milliseconds: lease renewal interval,
-- fence timeout (an agent that has not renewed for this long stops its
-- domains), and the manager's margin beyond it (clock skew, slow storage).
--
-- PostgreSQL's form of 0014_pool_ha.sqlite.sql (the same schema: BIGINT
-- where SQLite has INTEGER, whose PostgreSQL namesake is 32-bit).

ALTER TABLE server_pools ADD COLUMN ha_enabled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE server_pools ADD COLUMN ha_repository_id TEXT NOT NULL DEFAULT '';
ALTER TABLE server_pools ADD COLUMN ha_renew_ms BIGINT NOT NULL DEFAULT 2000;
ALTER TABLE server_pools ADD COLUMN ha_fence_ms BIGINT NOT NULL DEFAULT 20000;
ALTER TABLE server_pools ADD COLUMN ha_margin_ms BIGINT NOT NULL DEFAULT 10000;
