-- The inventory's generation (store/generation.go) covers repositories and
-- users as well as servers and server pools: the manager caches their
-- names, and the users' roles, while it is unchanged. The trigger function
-- of migration 0001 notifies the other managers, and tells the writer's own
-- session, of each row changed.
CREATE TRIGGER repositories_changed AFTER INSERT OR UPDATE OR DELETE ON repositories
    FOR EACH ROW EXECUTE FUNCTION xenmanager_servers_changed();
CREATE TRIGGER users_changed AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION xenmanager_servers_changed();
