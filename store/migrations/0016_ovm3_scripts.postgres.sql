-- 0016: what scripts written for Oracle VM 3 set. A VM's memoryLimit (the
-- maxmem its memory may grow to while it runs; 0: equal to its memory). A
-- shareable VirtualDisk, which several VMs may map (a cluster's quorum
-- disk); a disk that is not shareable stays in one VM at most, which the
-- trigger below keeps now that the mapping table's UNIQUE (disk_id) has
-- become UNIQUE (vm_id, disk_id). And the name a mapping was given
-- (create VmDiskMapping name=); '' for one made by add VirtualDisk or add
-- VirtualCdrom, which is called <vm>/<disk>.
--
-- PostgreSQL's form of 0016_ovm3_scripts.sqlite.sql (the same schema:
-- BIGINT where SQLite has INTEGER, whose PostgreSQL namesake is 32-bit).
-- PostgreSQL alters the constraint in place where SQLite rebuilds the
-- table, and its trigger is a PL/pgSQL function. The trigger's check and
-- the insert it guards cannot race with another manager's: every write
-- transaction takes the store's write lock first (store/writer.go).

ALTER TABLE vms ADD COLUMN memory_limit_mib BIGINT NOT NULL DEFAULT 0;

ALTER TABLE virtual_disks ADD COLUMN shareable BIGINT NOT NULL DEFAULT 0;

ALTER TABLE vm_disk_mappings DROP CONSTRAINT vm_disk_mappings_disk_id_key;
ALTER TABLE vm_disk_mappings ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE vm_disk_mappings ADD UNIQUE (vm_id, disk_id);
CREATE INDEX vm_disk_mappings_disk ON vm_disk_mappings(disk_id);
CREATE INDEX vm_disk_mappings_name ON vm_disk_mappings(name) WHERE name <> '';

-- An integrity constraint violation (SQLSTATE class 23), which the store
-- reads as a conflict, as it read the UNIQUE this replaces.
CREATE FUNCTION vm_disk_mappings_exclusive() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT shareable FROM virtual_disks WHERE id = NEW.disk_id) = 0
        AND EXISTS (SELECT 1 FROM vm_disk_mappings WHERE disk_id = NEW.disk_id) THEN
        RAISE EXCEPTION 'constraint failed: a VirtualDisk that is not shareable is in one VM at most'
            USING ERRCODE = 'unique_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER vm_disk_mappings_exclusive BEFORE INSERT ON vm_disk_mappings
    FOR EACH ROW EXECUTE FUNCTION vm_disk_mappings_exclusive();

ALTER TABLE vm_cdrom_mappings ADD COLUMN name TEXT NOT NULL DEFAULT '';
CREATE INDEX vm_cdrom_mappings_name ON vm_cdrom_mappings(name) WHERE name <> '';
