package backend

import (
	"context"
	"sync"
	"time"

	"xenmanager/backend/agentclient"
	"xenmanager/store"
)

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
func (p *placer) poolPlacement(ctx context.Context, poolID string) (*poolPlacement, error) {
	gen := p.st.ServersGeneration()
	p.serverLists.mu.Lock()
	if p.serverLists.gen == gen && p.serverLists.byPool != nil {
		if pp, ok := p.serverLists.byPool[poolID]; ok {
			p.serverLists.mu.Unlock()
			return pp, nil
		}
	}
	p.serverLists.mu.Unlock()
	l, err := p.st.Read().ServersInPool(ctx, poolID)
	if err != nil {
		return nil, err
	}
	pool, err := optional(p.st.Read().ServerPool(ctx, poolID)) // a pool gone reads as none
	if err != nil {
		return nil, err
	}
	pp := &poolPlacement{gen: gen, pool: pool, servers: l, clients: make([]*agentclient.Client, len(l))}
	p.serverLists.mu.Lock()
	defer p.serverLists.mu.Unlock()
	if p.serverLists.gen != gen || p.serverLists.byPool == nil {
		p.serverLists.gen, p.serverLists.byPool = gen, map[string]*poolPlacement{}
	}
	if p.st.ServersGeneration() == gen {
		p.serverLists.byPool[poolID] = pp
	}
	return pp, nil
}

// poolClient returns the client of the pool's server i: the one cached
// with the list while the manager still uses it for that server (it
// replaces a client when the server's address, password or pin change),
// else the client cache's. It saves unsealing the agent password at every start.
func (p *placer) poolClient(pp *poolPlacement, i int) (*agentclient.Client, error) {
	pp.mu.Lock()
	c := pp.clients[i]
	pp.mu.Unlock()
	if c != nil {
		if p.clients.current(pp.servers[i].ID, c) {
			return c, nil
		}
	}
	c, err := p.clients.get(pp.servers[i])
	if err != nil {
		return nil, err
	}
	pp.mu.Lock()
	pp.clients[i] = c
	pp.mu.Unlock()
	return c, nil
}
