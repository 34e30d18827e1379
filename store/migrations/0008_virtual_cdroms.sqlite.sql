-- 0008: ISO images imported into repositories (VirtualCdrom) and their
-- places in VMs. An ISO is read-only, so one may be in many VMs; a VM's
-- CD-ROM slots share the numbering of its disk slots (checked by the
-- backend under the VM's lock, as the two tables cannot share a UNIQUE).

CREATE TABLE virtual_cdroms (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    repo_id     TEXT NOT NULL REFERENCES repositories(id),
    url         TEXT NOT NULL,
    size_bytes  INTEGER NOT NULL,
    state       TEXT NOT NULL,            -- Approved, or Pending until an administrator approves it
    imported_by TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);
CREATE INDEX virtual_cdroms_repo ON virtual_cdroms(repo_id);

CREATE TABLE vm_cdrom_mappings (
    id         TEXT PRIMARY KEY,
    vm_id      TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    cdrom_id   TEXT NOT NULL REFERENCES virtual_cdroms(id),
    slot       INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (vm_id, slot),
    UNIQUE (vm_id, cdrom_id)
);
CREATE INDEX vm_cdrom_mappings_cdrom ON vm_cdrom_mappings(cdrom_id);
