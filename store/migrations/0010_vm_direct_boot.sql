-- 0010: a VM's direct kernel boot (Xen PV): its kernel and initial ramdisk,
-- each a path relative to the root of the VM's repository ('' for none),
-- and the kernel command line. The manager writes them to vm.cfg as the
-- keys kernel and ramdisk (absolute, under the repository's mount point)
-- and extra.

ALTER TABLE vms ADD COLUMN kernel TEXT NOT NULL DEFAULT '';
ALTER TABLE vms ADD COLUMN ramdisk TEXT NOT NULL DEFAULT '';
ALTER TABLE vms ADD COLUMN extra TEXT NOT NULL DEFAULT '';
