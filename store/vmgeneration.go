package store

import (
	"hash/fnv"
	"strings"
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
// (migrations 0025 and 0028) that lists the VMs in the writer's
// transaction and notifies the other managers at the commit, report every
// row changed.
//
// A row of vms updated with its id and name unchanged (a state, a setting)
// changes that VM's generation alone: vmGenStripes counters, the VM's
// chosen by a hash of its id (a change to one VM also ages the few that
// share its counter, never the reverse). Any other change (a VM inserted,
// deleted or renamed, which changes what a name finds; a disk, ISO, VNIC
// or tag, mapped or renamed) changes every VM's: vmAllGen.
//
// The bump comes after the transaction commits (vmSettled), before the
// write returns, which is what keeps a read from being kept stale: a read
// is kept with the generations taken before it (vmRead), or only when
// VMChanges did not move while it ran and with the generations taken before
// that second look (shownVMCache), so a read that saw a row as it was
// before a commit carries a generation the bump after that commit has
// left behind. On SQLite the hook bumps once more as each row changes
// (vmChanged), which costs nothing there. On PostgreSQL the trigger keeps
// the list in a setting local to the transaction (xenmanager.vms_changed)
// for a writer's session that asks (xenmanager.vm_list, openPostgres),
// which reads it with its COMMIT in one round trip (pgTx.Commit, vmNoted):
// a notice for each row, as migration 0025 sent (and still sends the
// writers of older binaries), cost the server and the manager 60 us a row
// on the connection every write waits for.
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
	s.vmGen.pendLocked(i)
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

// vmNoted marks for the bump after the commit (vmSettled) the VMs that
// the triggers of migration 0028 listed in a transaction of the writer's
// on PostgreSQL: ids separated by spaces, "*" for every VM's generation,
// "" for none.
func (s *Store) vmNoted(changed string) {
	if changed == "" {
		return
	}
	s.vmGen.mu.Lock()
	defer s.vmGen.mu.Unlock()
	if changed == "*" {
		s.vmGen.allPending = true
		return
	}
	for id := range strings.SplitSeq(changed, " ") {
		s.vmGen.pendLocked(vmStripe(id))
	}
}

// pendLocked marks stripe i for the bump after the commit; g.mu is held.
func (g *vmGens) pendLocked(i int) {
	if g.pending == nil {
		g.pending = map[int]struct{}{}
	}
	g.pending[i] = struct{}{}
}

// vmSettled bumps what the writes of a transaction that has just ended
// changed (committed or not: a bump too many costs a read, never a stale
// view): again on SQLite, once on PostgreSQL.
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
