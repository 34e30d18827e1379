package backend

import (
	"context"
	"sync"

	"xenmanager/backend/agentclient"
	"xenmanager/store"
)

// Start policies of VMs and pools.
const (
	PolicyBestServer    = "BEST_SERVER"
	PolicyCurrentServer = "CURRENT_SERVER"
	PolicyUsePool       = "USE_POOL_POLICY"
)

// StartPolicies are a VM's start policies; a pool's are the first two.
var StartPolicies = []string{PolicyBestServer, PolicyCurrentServer, PolicyUsePool}

// placer decides where VMs start: it ranks a pool's servers by what their
// agents say they have free, with caches that let a batch of starts ask
// each agent once, and reserves memory for the starts it has decided.
type placer struct {
	st      *store.Store
	clients *clientCache
	// inventory is the manager's (Manager.inventory): the pools and their
	// servers placement chooses from.
	inventory func(context.Context) (*inventory, error)

	// mu serialises placement decisions (choose and reserve) with each
	// other, with fencing a server out of placement (exclude) and with
	// a VM joining an anti-affinity group (join); it guards claims. The caches have their own mutexes.
	mu sync.Mutex
	// claims are the servers VMs are on their way to (a start, resume or
	// migration decided and not yet recorded): vm id -> server id -> how
	// many. Anti-affinity counts a VM on its way to a server as there.
	claims      map[string]map[string]int
	reserved    reservations
	capacity    capacity
	serverLists serverLists
}

// reserve claims the server for a start of v that tries it after the
// candidate rank claimed refused, and returns the release: the server must
// still have no member of v's anti-affinity groups (one may have been
// placed there since rank), and while the start is in flight there, its
// memory is reserved (fencing waits, and a read of the server's capacity
// may or may not show it, as for the first candidate) and anti-affinity
// counts v as there.
func (p *placer) reserve(ctx context.Context, v store.VM, s store.Server) (release func(), err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.apartFrom(ctx, v, s, "server"); err != nil {
		return nil, err
	}
	p.reserved.add(s.ID, v.MemoryMiB)
	p.capacity.decided(s.ID)
	unclaim := p.claimLocked(v.ID, s.ID)
	var once sync.Once
	return func() {
		once.Do(func() {
			p.reserved.add(s.ID, -v.MemoryMiB)
			unclaim()
		})
	}, nil
}

// exclude runs fence (which takes the server out of placement) under the
// lock placement decides under, unless a start has reserved memory on the
// server: then it reports reserved and does not run fence.
func (p *placer) exclude(serverID string, fence func() error) (reserved bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reserved.get(serverID) > 0 {
		return true, nil
	}
	return false, fence()
}

// candidate is a server a VM could start on, with what it had free when asked.
type candidate struct {
	server  store.Server
	client  *agentclient.Client
	freeMiB int64
	threads int64
	placed  int
}

// placeExcept returns, best first, the servers other than except (a
// migration's source) where the VM may start now, and a release func for
// the claim on the first of them (its memory reserved, and anti-affinity
// counting the VM there): rank, with copies of the server rows.
//
// Every path that picks a server for a VM goes through rank: start and
// resume (placeAndRun, which tries the next candidates through reserve),
// migrate without destServer and whatever else moves or restarts VMs
// (an HA restart, a maintenance evacuation) through placeExcept or
// placeAndRun; a server named by the operator goes through admit. The
// rules, anti-affinity among them, are checked there, under one lock, and
// the callers check none themselves. The caller keeps the claim until
// the VM is recorded on the server (or the attempt failed).
func (p *placer) placeExcept(ctx context.Context, v store.VM, except string) ([]candidate, func(), error) {
	choices, release, err := p.rank(ctx, v, except, 0)
	if err != nil {
		return nil, nil, err
	}
	out := make([]candidate, len(choices))
	for i, c := range choices {
		out[i] = candidate{server: *c.server, client: c.client, freeMiB: c.freeMiB, threads: c.threads, placed: c.placed}
	}
	return out, release, nil
}

// capacityOf reads c's server's capacity: free memory and threads from its
// agent, the VMs placed there from the store.
func (p *placer) capacityOf(c *choice) capacityReading {
	return func(ctx context.Context) (free, threads int64, placed int, err error) {
		hw, err := c.client.DiscoverHardware(ctx)
		n, cerr := p.st.Read().Count(ctx, "vms", "server_id", c.server.ID)
		if err == nil {
			err = cerr
		}
		return hw.FreeMemoryMiB, hw.Threads(), n, err
	}
}

// choice is a server a VM could start on, as rank returns it: the server
// row is shared with the pool's cached list and must not be changed.
type choice struct {
	server  *store.Server
	client  *agentclient.Client
	freeMiB int64
	threads int64
	placed  int
}

// rank returns, best first, the servers other than except where the VM may
// start now, and a release func for the claim on the first of them (its
// memory reserved, anti-affinity counting the VM there). The decision is
// placementOrder's (policies, preferred servers, anti-affinity, fit,
// order); rank gathers what it weighs: the pool's servers, what their
// agents say they have free, less the memory reserved for starts in
// flight, and where the members of the VM's anti-affinity groups are.
// retries counts the rankings started over.
//
// It runs for every start of a batch, so it takes the pool, its servers and
// their clients from the manager's inventory and what placement built from
// it, asks no agent while each server's capacity is current, starts no
// goroutine then, and takes each lock once; a capacity older than
// capacityTTL but still usable is used at once while its server is read
// again in the background, and only when such capacities leave the VM no
// room does rank wait for those reads and rank again. The server rows it
// returns are the cache's, not to be changed.
func (p *placer) rank(ctx context.Context, v store.VM, except string, retries int) ([]choice, func(), error) {
	pp, err := p.poolPlacement(ctx, v.PoolID)
	if err != nil {
		return nil, nil, err
	}
	needs := needsOf(v, pp.pool, except)
	rooms := make([]serverRoom, len(pp.servers))
	for i := range pp.servers {
		s := &pp.servers[i]
		rooms[i] = serverRoom{ID: s.ID, Name: s.Name, Status: s.Status, Maintenance: s.Maintenance, Roles: s.Roles}
	}
	eligible, err := placementEligible(rooms, needs)
	if err != nil {
		return nil, nil, err
	}
	all := make([]choice, len(eligible))
	for k, i := range eligible {
		c, err := p.poolClient(pp, i)
		if err != nil {
			return nil, nil, err
		}
		all[k] = choice{server: &pp.servers[i], client: c}
	}
	// What is cached is read under one lock; only the servers whose
	// capacity is stale are asked, at once.
	ok := make([]bool, len(all))
	var errs []error // of the servers asked
	busy := func(k int) bool { return p.reserved.get(all[k].server.ID) > 0 }
	stale, old := p.capacity.cached(all, ok, func(k int) capacityReading { return p.capacityOf(&all[k]) }, busy)
	if stale > 0 {
		errs = make([]error, len(all))
		var wg sync.WaitGroup
		for k := range all {
			if ok[k] {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := &all[k]
				free, threads, placed, err := p.capacity.get(ctx, c.server.ID, p.capacityOf(c),
					func() bool { return busy(k) })
				if err != nil {
					errs[k] = err
					return
				}
				c.freeMiB, c.threads, c.placed, ok[k] = free, threads, placed, true
			}()
		}
		wg.Wait()
	}
	answered := 0
	for k, i := range eligible {
		if ok[k] {
			answered++
		} else {
			rooms[i].Silent = agentError("ask free memory", all[k].server.Name, errs[k]).Msg
		}
	}
	if answered == 0 {
		_, err := placementOrder(rooms, needs) // the error names who did not answer
		return nil, nil, err
	}
	// Choose and reserve under one lock, so that concurrent starts see each
	// other's choices, and so that a server fenced out of placement
	// meanwhile (fence, under the same lock) is not chosen: its status
	// change makes the list read above stale, and the ranking starts over.
	p.mu.Lock()
	current := p.st.InventoryGeneration() == pp.gen
	if !current && retries < 3 {
		p.mu.Unlock()
		return p.rank(ctx, v, except, retries+1)
	}
	fits, release, err := p.decideLocked(ctx, v, all, ok, rooms, eligible, needs, current, pp)
	p.mu.Unlock()
	if err != nil && len(old) > 0 && retries < 3 {
		// Values older than capacityTTL (being read again) found no room:
		// the servers may have more than they say. Rank again once their
		// reads have ended.
		if werr := p.capacity.await(ctx, all, old); werr != nil {
			return nil, nil, err
		}
		return p.rank(ctx, v, except, retries+1)
	}
	return fits, release, err
}

// decideLocked is rank's decision under p.mu, from the capacities gathered
// (all, ok): the order of the servers that fit, and the claim on the first.
func (p *placer) decideLocked(ctx context.Context, v store.VM, all []choice, ok []bool, rooms []serverRoom, eligible []int,
	needs vmNeeds, current bool, pp *poolPlacement) ([]choice, func(), error) {
	p.reserved.subtract(all)
	at := make([]int, len(pp.servers)) // a server's index in pp.servers -> its choice in all
	for k, i := range eligible {
		at[i] = k
		if ok[k] {
			rooms[i].FreeMiB, rooms[i].Threads, rooms[i].Placed = all[k].freeMiB, all[k].threads, all[k].placed
		}
	}
	// Anti-affinity is read here, under the lock, so that the members
	// placed or on their way are those of every decision made before. The
	// VMs in a group are the inventory's while its generation is current
	// (a membership written since, join's under this lock among them, has
	// changed it): a VM in none has no peers, and nothing is read.
	var grouped map[string]bool
	if current {
		grouped = pp.grouped
	}
	peers, err := p.peersByServer(ctx, v.ID, grouped)
	if err != nil {
		return nil, nil, err
	}
	for i := range rooms {
		rooms[i].Apart = peers[rooms[i].ID]
	}
	order, err := placementOrder(rooms, needs)
	if err != nil {
		return nil, nil, err
	}
	fits := make([]choice, len(order))
	for k, i := range order {
		fits[k] = all[at[i]]
	}
	first := fits[0].server.ID
	p.reserved.add(first, v.MemoryMiB)
	p.capacity.decided(first)
	unclaim := p.claimLocked(v.ID, first)
	var once sync.Once
	return fits, func() {
		once.Do(func() {
			p.reserved.add(first, -v.MemoryMiB)
			unclaim()
		})
	}, nil
}
