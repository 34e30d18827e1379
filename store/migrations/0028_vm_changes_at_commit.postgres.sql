-- 0028: the writer's own session learns which VMs its transaction changed
-- at the commit, not by a notice per row. The triggers of migration 0025
-- raised a notice for every row show Vm reads that the writer's session
-- changed: about 20 us of the server's time and 40 us of the manager's per
-- row, on the connection every write of a manager waits for (a batch of
-- 1,000 starts changes 1,000 VM rows; docs/performance.md, "Session 16").
-- They now keep the list in the transaction, in the setting
-- xenmanager.vms_changed (local to the transaction, so a savepoint rolled
-- back takes its part back with it): the VMs' ids separated by spaces, or
-- '*' when every VM's generation changes (a VM inserted, deleted or
-- renamed, a device or tag changed, or more than 8 KiB of ids). The writer
-- reads it with its COMMIT, in the same round trip (store/writer.go). The
-- other managers are still notified at the commit, row by row, as before.
-- A writer's session asks for the list with xenmanager.vm_list = on; one
-- that does not (a manager of an older binary, still running while a newer
-- one migrated the database) gets the notices of migration 0025 as before.

CREATE OR REPLACE FUNCTION xenmanager_vm_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    vm TEXT := '';
    changed TEXT;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.id = NEW.id AND OLD.name = NEW.name THEN
            vm := NEW.id;
        END IF;
    END IF;
    PERFORM pg_notify('xenmanager_vms', vm);
    IF current_setting('xenmanager.vm_list', true) = 'on' THEN
        changed := COALESCE(current_setting('xenmanager.vms_changed', true), '');
        IF changed <> '*' THEN
            IF vm = '' OR length(changed) > 8192 THEN
                changed := '*';
            ELSIF changed = '' THEN
                changed := vm;
            ELSE
                changed := changed || ' ' || vm;
            END IF;
            PERFORM set_config('xenmanager.vms_changed', changed, true);
        END IF;
    ELSIF current_setting('xenmanager.writer', true) = 'on' THEN
        RAISE NOTICE USING MESSAGE = 'xenmanager: vm changed', DETAIL = vm;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION xenmanager_vms_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('xenmanager_vms', '');
    IF current_setting('xenmanager.vm_list', true) = 'on' THEN
        PERFORM set_config('xenmanager.vms_changed', '*', true);
    ELSIF current_setting('xenmanager.writer', true) = 'on' THEN
        RAISE NOTICE USING MESSAGE = 'xenmanager: vm changed', DETAIL = '';
    END IF;
    RETURN NULL;
END
$$;
