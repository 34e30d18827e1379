package host

import "sync"

// vmLocks serialises the calls that check a VM's files and domain and then
// change them (create, configure, delete, start, reboot, restore, an
// incoming migration's setup), so that the check and the change cannot
// interleave with another such call of the same VM. Calls of different VMs
// do not wait for each other, and long operations (save, migrate) do not
// hold the lock: the driver makes the calls that meet them Busy.
//
// Lock order: a VM's lock, then Host.mu, then the driver's own locks; the
// driver never calls back into the host with its locks held, except for
// the event log and operation progress, whose mutexes come last, and
// configure_vm's write of vm.cfg, which takes no lock.
type vmLocks struct {
	mu sync.Mutex         // guards m
	m  map[string]*vmLock // by domainKey(repoID, vmID), while locked or awaited
}

type vmLock struct {
	mu    sync.Mutex
	users int // holders and waiters; guarded by vmLocks.mu
}

// lock locks the VM and returns its unlock.
func (l *vmLocks) lock(repoID, vmID string) (unlock func()) {
	key := domainKey(repoID, vmID)
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*vmLock{}
	}
	v := l.m[key]
	if v == nil {
		v = &vmLock{}
		l.m[key] = v
	}
	v.users++
	l.mu.Unlock()
	v.mu.Lock()
	return func() {
		v.mu.Unlock()
		l.mu.Lock()
		if v.users--; v.users == 0 {
			delete(l.m, key)
		}
		l.mu.Unlock()
	}
}
