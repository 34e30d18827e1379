package store

import (
	"hash/fnv"
	"sync"
	"sync/atomic"

	"modernc.org/sqlite"
)

// The VMs' generations: the manager may keep what show Vm read of a VM
// (its row and its devices, VMShownByID and VMsShownByName) while the
// VM's generation is unchanged, so every write that could change what
// those reads return must change it. As for the inventory (generation.go)
// no write method says so by hand: SQLite's pre-update hook on the
// writer's connections, and on PostgreSQL a trigger on each table
// (migration 0025) that sends the writer's session a notice and the
// other managers a notification, report every row changed.
//
// A row of vms updated with its id and name unchanged (a state, a setting)
// changes that VM's generation alone: vmGenStripes counters, the VM's
// chosen by a hash of its id (a change to one VM also ages the few that
// share its counter, never the reverse). Any other change (a VM inserted,
// deleted or renamed, which changes what a name finds; a disk, ISO, VNIC
// or tag, mapped or renamed) changes every VM's: vmAllGen. The bump is
// two-phase, as the inventory's: once when the write changes the row,
// again after its transaction commits (vmSettled), so that a read between
// the two (which sees the rows as they were) is not kept.
//
// Staleness across managers is the inventory's (pgListener): another
// manager's change is seen when its notification arrives, and nothing is
// kept while the listener has no connection.

// vmGenStripes is how many counters the VMs' generations share.
const vmGenStripes = 4096

// vmShownTables are the tables, besides vms, whose rows show Vm reads: a
// change to any changes every VM's generation.
var vmShownTables = map[string]bool{"vm_disk_mappings": true, "vm_cdrom_mappings": true, "vnics": true,
	"object_tags": true, "tags": true, "virtual_disks": true, "virtual_cdroms": true}

// vmGens are the VMs' generations of a store.
type vmGens struct {
	all     atomic.Int64 // every VM's: names and devices
	stripes [vmGenStripes]atomic.Int64
	// seq counts every bump of all or of a stripe, so that a read can
	// tell that nothing changed while it ran (VMChanges).
	seq atomic.Int64

	mu      sync.Mutex       // guards pending and allPending
	pending map[int]struct{} // the stripes the running writes changed, bumped again after the commit
	// allPending: the running writes changed every VM's generation.
	allPending bool
}

// vmStripe is the counter of the VM with id.
func vmStripe(id string) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % vmGenStripes)
}

// VMGeneration is the generation of the VM with id: what VMShownByID read
// of it is current while the value is unchanged. On PostgreSQL while no
// one hears of the other managers' changes it is new at each call.
func (s *Store) VMGeneration(id string) int64 {
	if s.pg != nil && !s.pg.listening.Load() {
		return s.vmGen.seq.Add(1)
	}
	return s.vmGen.stripes[vmStripe(id)].Load()
}

// VMNamesGeneration changes with every VM's generation (a VM inserted,
// deleted or renamed, a device or tag changed): which VMs a name finds,
// and their devices, are current while it and each found VM's
// VMGeneration are unchanged.
func (s *Store) VMNamesGeneration() int64 {
	if s.pg != nil && !s.pg.listening.Load() {
		return s.vmGen.seq.Add(1)
	}
	return s.vmGen.all.Load()
}

// VMChanges changes whenever any VM's generation does: a read of VMs
// between two equal values saw no change in flight, and the generations
// taken before the second are those of what it read.
func (s *Store) VMChanges() int64 {
	if s.pg != nil && !s.pg.listening.Load() {
		return s.vmGen.seq.Add(1)
	}
	return s.vmGen.seq.Load()
}

// vmChanged bumps the generation of the VM with id (a write of the
// writer's, marked for the bump after its commit).
func (s *Store) vmChanged(id string) {
	i := vmStripe(id)
	s.vmGen.mu.Lock()
	if s.vmGen.pending == nil {
		s.vmGen.pending = map[int]struct{}{}
	}
	s.vmGen.pending[i] = struct{}{}
	s.vmGen.mu.Unlock()
	s.vmGen.stripes[i].Add(1)
	s.vmGen.seq.Add(1)
}

// vmsChanged bumps every VM's generation (a write of the writer's, marked
// for the bump after its commit).
func (s *Store) vmsChanged() {
	s.vmGen.mu.Lock()
	s.vmGen.allPending = true
	s.vmGen.mu.Unlock()
	s.vmGen.all.Add(1)
	s.vmGen.seq.Add(1)
}

// vmSettled bumps again what the writes of a transaction that has just
// ended changed (committed or not: a bump too many costs a read, never a
// stale view).
func (s *Store) vmSettled() {
	s.vmGen.mu.Lock()
	pending, all := s.vmGen.pending, s.vmGen.allPending
	s.vmGen.pending, s.vmGen.allPending = nil, false
	s.vmGen.mu.Unlock()
	if len(pending) == 0 && !all {
		return
	}
	for i := range pending {
		s.vmGen.stripes[i].Add(1)
	}
	if all {
		s.vmGen.all.Add(1)
	}
	s.vmGen.seq.Add(1)
}

// vmHeard bumps the generations another manager's change named: its
// notification arrives after its commit, so one bump is enough. id "" is
// every VM's.
func (s *Store) vmHeard(id string) {
	if id == "" {
		s.vmGen.all.Add(1)
	} else {
		s.vmGen.stripes[vmStripe(id)].Add(1)
	}
	s.vmGen.seq.Add(1)
}

// vmRowChanging is the part of the writer's pre-update hook (rowChanging)
// that follows the rows show Vm reads.
func (s *Store) vmRowChanging(d sqlite.SQLitePreUpdateData) {
	switch {
	case d.TableName == "vms":
		// A row updated with its id and name kept changes that VM alone;
		// an insert or delete (no old or new row) or a rename, every VM's.
		old, new := make([]any, 2), make([]any, 2)
		if d.Old(old...) == nil && d.New(new...) == nil && old[0] == new[0] && old[1] == new[1] {
			if id, ok := new[0].(string); ok {
				s.vmChanged(id)
				return
			}
		}
		s.vmsChanged()
	case vmShownTables[d.TableName]:
		s.vmsChanged()
	}
}
