-- The inventory's generation (store/generation.go) covers the anti-affinity
-- groups and their members too: placement keeps the set of VMs that are
-- members of a group while it is unchanged, and reads the peers of a VM
-- only when it is in that set. The trigger function of migration 0001
-- notifies the other managers, and tells the writer's own session, of
-- each row changed (a member deleted with its VM or group included: a
-- foreign key's cascade fires the row triggers of the table it changes).
CREATE TRIGGER anti_affinity_groups_changed AFTER INSERT OR UPDATE OR DELETE ON anti_affinity_groups
    FOR EACH ROW EXECUTE FUNCTION xenmanager_servers_changed();
CREATE TRIGGER anti_affinity_members_changed AFTER INSERT OR UPDATE OR DELETE ON anti_affinity_members
    FOR EACH ROW EXECUTE FUNCTION xenmanager_servers_changed();
