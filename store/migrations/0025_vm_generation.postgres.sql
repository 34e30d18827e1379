-- The VMs' generations (store/vmgeneration.go): the manager keeps what
-- show Vm read of a VM while its generation is unchanged. A trigger on
-- each table show Vm reads tells the writer's own session of each row
-- changed (a notice, as the inventory's trigger of migration 0001 does),
-- and notifies the other managers at the commit (channel xenmanager_vms).
-- The payload and the notice's detail name the VM when a row of vms is
-- updated with its id and name kept (that VM's generation alone); they are
-- empty for any other change (every VM's: a VM inserted, deleted or
-- renamed, a disk, ISO, VNIC or tag changed or mapped).
CREATE FUNCTION xenmanager_vm_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    vm TEXT := '';
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.id = NEW.id AND OLD.name = NEW.name THEN
            vm := NEW.id;
        END IF;
    END IF;
    PERFORM pg_notify('xenmanager_vms', vm);
    IF current_setting('xenmanager.writer', true) = 'on' THEN
        RAISE NOTICE USING MESSAGE = 'xenmanager: vm changed', DETAIL = vm;
    END IF;
    RETURN NULL;
END
$$;
CREATE FUNCTION xenmanager_vms_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('xenmanager_vms', '');
    IF current_setting('xenmanager.writer', true) = 'on' THEN
        RAISE NOTICE USING MESSAGE = 'xenmanager: vm changed', DETAIL = '';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER vms_shown_changed AFTER INSERT OR UPDATE OR DELETE ON vms
    FOR EACH ROW EXECUTE FUNCTION xenmanager_vm_changed();
CREATE TRIGGER vm_disk_mappings_shown_changed AFTER INSERT OR UPDATE OR DELETE ON vm_disk_mappings
    FOR EACH ROW EXECUTE FUNCTION xenmanager_vms_changed();
CREATE TRIGGER vm_cdrom_mappings_shown_changed AFTER INSERT OR UPDATE OR DELETE ON vm_cdrom_mappings
    FOR EACH ROW EXECUTE FUNCTION xenmanager_vms_changed();
CREATE TRIGGER vnics_shown_changed AFTER INSERT OR UPDATE OR DELETE ON vnics
    FOR EACH ROW EXECUTE FUNCTION xenmanager_vms_changed();
CREATE TRIGGER object_tags_shown_changed AFTER INSERT OR UPDATE OR DELETE ON object_tags
    FOR EACH ROW EXECUTE FUNCTION xenmanager_vms_changed();
CREATE TRIGGER tags_shown_changed AFTER INSERT OR UPDATE OR DELETE ON tags
    FOR EACH ROW EXECUTE FUNCTION xenmanager_vms_changed();
CREATE TRIGGER virtual_disks_shown_changed AFTER INSERT OR UPDATE OR DELETE ON virtual_disks
    FOR EACH ROW EXECUTE FUNCTION xenmanager_vms_changed();
CREATE TRIGGER virtual_cdroms_shown_changed AFTER INSERT OR UPDATE OR DELETE ON virtual_cdroms
    FOR EACH ROW EXECUTE FUNCTION xenmanager_vms_changed();
