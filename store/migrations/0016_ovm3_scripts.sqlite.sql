-- 0016: what scripts written for Oracle VM 3 set. A VM's memoryLimit (the
-- maxmem its memory may grow to while it runs; 0: equal to its memory). A
-- shareable VirtualDisk, which several VMs may map (a cluster's quorum
-- disk); a disk that is not shareable stays in one VM at most, which the
-- trigger below keeps now that the mapping table's UNIQUE (disk_id) has
-- become UNIQUE (vm_id, disk_id). And the name a mapping was given
-- (create VmDiskMapping name=); '' for one made by add VirtualDisk or add
-- VirtualCdrom, which is called <vm>/<disk>.

ALTER TABLE vms ADD COLUMN memory_limit_mib INTEGER NOT NULL DEFAULT 0;

ALTER TABLE virtual_disks ADD COLUMN shareable INTEGER NOT NULL DEFAULT 0;

CREATE TABLE vm_disk_mappings_new (
    id         TEXT PRIMARY KEY,
    vm_id      TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    disk_id    TEXT NOT NULL REFERENCES virtual_disks(id),
    slot       INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    name       TEXT NOT NULL DEFAULT '',
    UNIQUE (vm_id, slot),
    UNIQUE (vm_id, disk_id)
);
INSERT INTO vm_disk_mappings_new (id, vm_id, disk_id, slot, created_at)
    SELECT id, vm_id, disk_id, slot, created_at FROM vm_disk_mappings;
DROP TABLE vm_disk_mappings;
ALTER TABLE vm_disk_mappings_new RENAME TO vm_disk_mappings;
CREATE INDEX vm_disk_mappings_disk ON vm_disk_mappings(disk_id);
CREATE INDEX vm_disk_mappings_name ON vm_disk_mappings(name) WHERE name <> '';

-- The message says "constraint failed" so that the store reads it as a
-- conflict, as it read the UNIQUE it replaces.
CREATE TRIGGER vm_disk_mappings_exclusive BEFORE INSERT ON vm_disk_mappings
WHEN (SELECT shareable FROM virtual_disks WHERE id = NEW.disk_id) = 0
    AND EXISTS (SELECT 1 FROM vm_disk_mappings WHERE disk_id = NEW.disk_id)
BEGIN
    SELECT RAISE(ABORT, 'constraint failed: a VirtualDisk that is not shareable is in one VM at most');
END;

ALTER TABLE vm_cdrom_mappings ADD COLUMN name TEXT NOT NULL DEFAULT '';
CREATE INDEX vm_cdrom_mappings_name ON vm_cdrom_mappings(name) WHERE name <> '';
