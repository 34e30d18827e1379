package backend

import (
	"context"
	"sync"
	"time"

	"xenmanager/backend/agentclient"
	"xenmanager/store"
)

// Start policies of VMs and pools.
const (
	PolicyBestServer    = "BEST_SERVER"
	PolicyCurrentServer = "CURRENT_SERVER"
	PolicyUsePool       = "USE_POOL_POLICY"
)

// candidate is a server a VM could start on, with what it had free when asked.
type candidate struct {
	server  store.Server
	client  *agentclient.Client
	freeMiB int64
	threads int64
	placed  int
}

// reservations is memory promised to starts in flight, per server: free
// memory read from an agent does not yet show a start that has been decided
// but not made, and without this, concurrent starts would all pick the same
// server.
type reservations struct {
	mu  sync.Mutex // guards mib
	mib map[string]int64
}

func (r *reservations) add(serverID string, mib int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mib == nil {
		r.mib = map[string]int64{}
	}
	r.mib[serverID] += mib
}

func (r *reservations) get(serverID string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mib[serverID]
}

// subtract takes what is reserved on each server off its free memory.
func (r *reservations) subtract(cs []choice) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range cs {
		cs[i].freeMiB -= r.mib[cs[i].server.ID]
	}
}

// placeExcept returns, best first, the servers other than except (a
// migration's source) where the VM may start now, and a release func for the
// memory reserved on the first of them: rank, with copies of the server rows.
func (m *Manager) placeExcept(ctx context.Context, v store.VM, except string) ([]candidate, func(), error) {
	choices, release, err := m.rank(ctx, v, except, 0)
	if err != nil {
		return nil, nil, err
	}
	out := make([]candidate, len(choices))
	for i, c := range choices {
		out[i] = candidate{server: *c.server, client: c.client, freeMiB: c.freeMiB, threads: c.threads, placed: c.placed}
	}
	return out, release, nil
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
// start now, and a release func for the memory reserved on the first of
// them. The decision is placementOrder's (policies, preferred servers,
// fit, order); rank gathers what it weighs: the pool's servers, what their
// agents say they have free, less the memory reserved for starts in
// flight. retries counts the rankings started over.
//
// It runs for every start of a batch, so it reads the pool, its servers and
// their clients from a cache (kept while the servers and pools tables do not
// change), asks no agent while each server's capacity is cached, starts no
// goroutine then, and takes each lock once. The server rows it returns are
// the cache's, not to be changed.
func (m *Manager) rank(ctx context.Context, v store.VM, except string, retries int) ([]choice, func(), error) {
	pp, err := m.poolPlacement(ctx, v.PoolID)
	if err != nil {
		return nil, nil, &Error{Kind: KindInternal, Msg: "read servers", Cause: err}
	}
	needs := needsOf(v, pp.pool, except)
	rooms := make([]serverRoom, len(pp.servers))
	for i := range pp.servers {
		s := &pp.servers[i]
		rooms[i] = serverRoom{ID: s.ID, Name: s.Name, Status: s.Status, Maintenance: s.Maintenance}
	}
	eligible, err := placementEligible(rooms, needs)
	if err != nil {
		return nil, nil, err
	}
	all := make([]choice, len(eligible))
	for k, i := range eligible {
		c, err := m.poolClient(pp, i)
		if err != nil {
			return nil, nil, err
		}
		all[k] = choice{server: &pp.servers[i], client: c}
	}
	// What is cached is read under one lock; only the servers whose
	// capacity is stale are asked, at once.
	ok := make([]bool, len(all))
	var errs []error // of the servers asked
	if stale := m.capacity.cached(all, ok); stale > 0 {
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
				free, threads, placed, err := m.capacity.get(ctx, c.server.ID, c.client, func() (int, error) {
					return m.st.Read().Count(ctx, "vms", "server_id", c.server.ID)
				})
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
	m.placeMu.Lock()
	if m.st.ServersGeneration() != pp.gen && retries < 3 {
		m.placeMu.Unlock()
		return m.rank(ctx, v, except, retries+1)
	}
	defer m.placeMu.Unlock()
	m.reserved.subtract(all)
	at := make([]int, len(pp.servers)) // a server's index in pp.servers -> its choice in all
	for k, i := range eligible {
		at[i] = k
		if ok[k] {
			rooms[i].FreeMiB, rooms[i].Threads, rooms[i].Placed = all[k].freeMiB, all[k].threads, all[k].placed
		}
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
	m.reserved.add(first, v.MemoryMiB)
	var once sync.Once
	return fits, func() { once.Do(func() { m.reserved.add(first, -v.MemoryMiB) }) }, nil
}

// capacityTTL is how long a server's free memory, as last read from its
// agent and adjusted for the manager's own starts and stops, is trusted:
// a batch of starts then asks each server once, not before every start,
// while changes made outside the manager are seen within seconds.
const capacityTTL = 2 * time.Second

// capacity caches each server's free memory and threads.
type capacity struct {
	mu       sync.Mutex // guards byServer
	byServer map[string]*capEntry
}

type capEntry struct {
	free, threads int64
	placed        int // VMs the manager has placed there
	at            time.Time
	ready         chan struct{} // closed when the read in flight ends
	err           error
}

// get returns the server's free memory, threads and placed VMs, reading
// them from the agent (and count, from the store) when the cached ones are
// older than capacityTTL; concurrent callers share one read.
func (cp *capacity) get(ctx context.Context, serverID string, c *agentclient.Client, count func() (int, error)) (free, threads int64, placed int, err error) {
	cp.mu.Lock()
	if cp.byServer == nil {
		cp.byServer = map[string]*capEntry{}
	}
	e := cp.byServer[serverID]
	if e != nil && e.ready != nil {
		ready := e.ready
		cp.mu.Unlock()
		select {
		case <-ready:
		case <-ctx.Done():
			return 0, 0, 0, ctx.Err()
		}
		cp.mu.Lock()
		e = cp.byServer[serverID]
	}
	if e != nil && e.ready == nil && e.err == nil && time.Since(e.at) < capacityTTL {
		free, threads, placed = e.free, e.threads, e.placed
		cp.mu.Unlock()
		return free, threads, placed, nil
	}
	e = &capEntry{ready: make(chan struct{})}
	cp.byServer[serverID] = e
	cp.mu.Unlock()

	hw, err := c.DiscoverHardware(ctx)
	n, cerr := count()
	if err == nil {
		err = cerr
	}
	cp.mu.Lock()
	e.free, e.threads, e.placed, e.err, e.at = hw.FreeMemoryMiB, hw.Threads(), n, err, time.Now()
	close(e.ready)
	e.ready = nil
	free, threads, placed = e.free, e.threads, e.placed
	cp.mu.Unlock()
	return free, threads, placed, err
}

// cached fills in the capacity of each choice whose server's is cached and
// current, marking it in ok, under one lock; it returns how many are not.
func (cp *capacity) cached(cs []choice, ok []bool) (stale int) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	now := time.Now()
	for i := range cs {
		e := cp.byServer[cs[i].server.ID]
		if e != nil && e.ready == nil && e.err == nil && now.Sub(e.at) < capacityTTL {
			cs[i].freeMiB, cs[i].threads, cs[i].placed, ok[i] = e.free, e.threads, e.placed, true
		} else {
			stale++
		}
	}
	return stale
}

// adjust applies a change the manager made itself (a start takes memory and
// adds a VM, a stop gives them back) to what is cached.
func (cp *capacity) adjust(serverID string, deltaMiB int64) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if e := cp.byServer[serverID]; e != nil && e.ready == nil {
		e.free += deltaMiB
		switch {
		case deltaMiB < 0:
			e.placed++
		case deltaMiB > 0 && e.placed > 0:
			e.placed--
		}
	}
}

// forget drops what is cached for a server (its agent refused a start for
// lack of room: the cache was wrong).
func (cp *capacity) forget(serverID string) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if e := cp.byServer[serverID]; e != nil && e.ready == nil {
		delete(cp.byServer, serverID)
	}
}

// serverLists caches each pool and its servers while the servers and pools
// tables do not change (store.ServersGeneration), with the servers' agent
// clients: a batch of starts then reads them once.
type serverLists struct {
	mu     sync.Mutex // guards gen and byPool
	gen    int64
	byPool map[string]*poolPlacement
}

// poolPlacement is one pool and its servers as read at one generation, and
// the servers' clients, made on first use.
type poolPlacement struct {
	gen     int64            // the servers' generation it was read at
	pool    store.ServerPool // its start policy and name
	servers []store.Server   // never changed once cached
	mu      sync.Mutex       // guards clients
	clients []*agentclient.Client
}

// poolPlacement returns the pool and its servers, from the cache when
// current.
func (m *Manager) poolPlacement(ctx context.Context, poolID string) (*poolPlacement, error) {
	gen := m.st.ServersGeneration()
	m.serverLists.mu.Lock()
	if m.serverLists.gen == gen && m.serverLists.byPool != nil {
		if pp, ok := m.serverLists.byPool[poolID]; ok {
			m.serverLists.mu.Unlock()
			return pp, nil
		}
	}
	m.serverLists.mu.Unlock()
	l, err := m.st.Read().ServersInPool(ctx, poolID)
	if err != nil {
		return nil, err
	}
	pool, _ := m.st.Read().ServerPool(ctx, poolID) // as before: a pool gone reads as none
	pp := &poolPlacement{gen: gen, pool: pool, servers: l, clients: make([]*agentclient.Client, len(l))}
	m.serverLists.mu.Lock()
	defer m.serverLists.mu.Unlock()
	if m.serverLists.gen != gen || m.serverLists.byPool == nil {
		m.serverLists.gen, m.serverLists.byPool = gen, map[string]*poolPlacement{}
	}
	if m.st.ServersGeneration() == gen {
		m.serverLists.byPool[poolID] = pp
	}
	return pp, nil
}

// poolClient returns the client of the pool's server i: the one cached
// with the list while the manager still uses it for that server (it
// replaces a client when the server's address, password or pin change),
// else m.client's. It saves unsealing the agent password at every start.
func (m *Manager) poolClient(pp *poolPlacement, i int) (*agentclient.Client, error) {
	pp.mu.Lock()
	c := pp.clients[i]
	pp.mu.Unlock()
	if c != nil {
		m.mu.Lock()
		current := m.clients[pp.servers[i].ID] == c
		m.mu.Unlock()
		if current {
			return c, nil
		}
	}
	c, err := m.client(pp.servers[i])
	if err != nil {
		return nil, err
	}
	pp.mu.Lock()
	pp.clients[i] = c
	pp.mu.Unlock()
	return c, nil
}
