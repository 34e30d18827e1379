-- 0011: the manager's policy settings, one row (edit Manager, show
-- Manager). import_allowed_networks is a comma-separated list of networks
-- in CIDR form where imports may reach loopback, link-local, private and
-- the servers' own addresses; empty, the default, allows none.

CREATE TABLE manager_settings (
    id                      INTEGER PRIMARY KEY CHECK (id = 1),
    import_allowed_networks TEXT NOT NULL DEFAULT ''
);

INSERT INTO manager_settings (id) VALUES (1);
