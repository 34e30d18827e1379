-- 0015: what the hypervisor does with a VM's domain when its guest
-- crashes (OVM's restartActionOnCrash): Restart, Destroy, Preserve,
-- CoredumpRestart or CoredumpDestroy, written to vm.cfg as on_crash.
-- Restart is what the manager has always written there.

ALTER TABLE vms ADD COLUMN on_crash TEXT NOT NULL DEFAULT 'Restart';
