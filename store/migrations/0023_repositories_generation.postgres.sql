-- The inventory's generation (store/generation.go) covers repositories as
-- well as servers and server pools: show commands cache the three tables'
-- names while it is unchanged. The trigger of migration 0001 notifies the
-- other managers, and tells the writer's own session, of each row changed.
CREATE TRIGGER repositories_changed AFTER INSERT OR UPDATE OR DELETE ON repositories
    FOR EACH ROW EXECUTE FUNCTION xenmanager_servers_changed();
