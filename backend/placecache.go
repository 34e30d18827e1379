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

// capacityStale is how long values older than capacityTTL may still place
// a VM while the server is asked again in the background: a batch started
// after a pause does not wait a round of calls to every server first. What
// the manager changed itself is in the values (adjust); a change made
// outside it that leaves a server fuller than they say makes its agent
// refuse the start (InsufficientResources), and the next server is tried
// with the values forgotten.
const capacityStale = 30 * time.Second

// capacity caches each server's free memory and threads.
type capacity struct {
	mu       sync.Mutex // guards byServer and the fields of every entry
	byServer map[string]*capEntry
}

// capEntry is what is known of one server's capacity: the values last read
// from its agent, adjusted since for the manager's own starts and stops.
type capEntry struct {
	free, threads int64
	placed        int // VMs the manager has placed there
	at            time.Time
	known         bool          // the values were read at least once
	err           error         // the last read failed: the values are not current
	reading       chan struct{} // closed when the read in flight ends; nil when none is
	// changed: while the read in flight was under way, a start on the
	// server was decided or in flight, or a start or stop was made. The
	// agent may have answered before or after the change, so the read's
	// values are not taken over the adjusted ones: counting a start both in
	// the read and by adjust (or its reservation) made a full pool look
	// fuller than it is.
	changed bool
}

// capacityReading is a read of a server's capacity from its agent (free
// memory, threads) and the store (VMs placed there).
type capacityReading func(ctx context.Context) (free, threads int64, placed int, err error)

// get returns the server's free memory, threads and placed VMs, reading
// them when the cached ones are older than capacityTTL; concurrent callers
// share one read. busy reports whether starts on the server are in flight
// (memory is reserved there), which the read may or may not show.
func (cp *capacity) get(ctx context.Context, serverID string, read capacityReading, busy func() bool) (free, threads int64, placed int, err error) {
	cp.mu.Lock()
	if cp.byServer == nil {
		cp.byServer = map[string]*capEntry{}
	}
	e := cp.byServer[serverID]
	for e != nil && e.reading != nil {
		reading := e.reading
		cp.mu.Unlock()
		select {
		case <-reading:
		case <-ctx.Done():
			return 0, 0, 0, ctx.Err()
		}
		cp.mu.Lock()
		e = cp.byServer[serverID]
	}
	if e != nil && e.usable(time.Now()) {
		free, threads, placed = e.free, e.threads, e.placed
		cp.mu.Unlock()
		return free, threads, placed, nil
	}
	if e == nil {
		e = &capEntry{}
		cp.byServer[serverID] = e
	}
	e.reading, e.changed = make(chan struct{}), busy()
	cp.mu.Unlock()

	rfree, rthreads, rplaced, err := read(ctx)
	cp.mu.Lock()
	defer cp.mu.Unlock()
	e.settle(rfree, rthreads, rplaced, err)
	return e.free, e.threads, e.placed, err
}

// settle takes a read's values into the entry (under cp.mu) and ends the
// read.
func (e *capEntry) settle(free, threads int64, placed int, err error) {
	switch {
	case err != nil:
		e.err = err
	case e.changed && e.known && e.err == nil:
		// Keep the adjusted values, current for another while: the server
		// is read again once no start of the manager's is under way.
		e.at = time.Now()
	default:
		e.free, e.threads, e.placed, e.known, e.err, e.at = free, threads, placed, true, nil, time.Now()
	}
	close(e.reading)
	e.reading, e.changed = nil, false
}

// current reports whether the entry's values are young enough to use
// without asking the server again.
func (e *capEntry) current(now time.Time) bool {
	return e.known && e.reading == nil && e.err == nil && now.Sub(e.at) < capacityTTL
}

// usable reports whether the entry's values may place a VM at now: current,
// or younger than capacityStale (the server then asked again in the
// background, or being asked).
func (e *capEntry) usable(now time.Time) bool {
	return e.current(now) || (e.known && e.err == nil && now.Sub(e.at) < capacityStale)
}

// cached fills in the capacity of each choice whose server's is cached and
// usable, marking it in ok, under one lock; it returns how many are not,
// and which of cs it filled with values no longer current, whose servers
// are being read again: it starts a read in the background of each that
// none is under way for (read makes the read of cs[i]'s server, busy
// says whether starts are in flight there, as for get).
func (cp *capacity) cached(cs []choice, ok []bool, read func(i int) capacityReading, busy func(i int) bool) (stale int, old []int) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	now := time.Now()
	for i := range cs {
		e := cp.byServer[cs[i].server.ID]
		if e == nil || !e.usable(now) {
			stale++
			continue
		}
		cs[i].freeMiB, cs[i].threads, cs[i].placed, ok[i] = e.free, e.threads, e.placed, true
		if !e.current(now) {
			old = append(old, i)
			if e.reading == nil {
				cp.readBehind(e, read(i), busy(i))
			}
		}
	}
	return stale, old
}

// await waits until the reads under way of the servers of cs[i], i in
// which, have ended, or ctx has.
func (cp *capacity) await(ctx context.Context, cs []choice, which []int) error {
	for _, i := range which {
		cp.mu.Lock()
		var reading chan struct{}
		if e := cp.byServer[cs[i].server.ID]; e != nil {
			reading = e.reading
		}
		cp.mu.Unlock()
		if reading == nil {
			continue
		}
		select {
		case <-reading:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// readBehind reads e's server again in the background (under cp.mu; the
// read itself runs without it), bounded by capacityStale.
func (cp *capacity) readBehind(e *capEntry, read capacityReading, busy bool) {
	e.reading, e.changed = make(chan struct{}), busy
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), capacityStale)
		defer cancel()
		free, threads, placed, err := read(ctx)
		cp.mu.Lock()
		defer cp.mu.Unlock()
		e.settle(free, threads, placed, err)
	}()
}

// decided notes that a start on the server has been decided (its memory
// reserved): a read under way may or may not show it.
func (cp *capacity) decided(serverID string) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if e := cp.byServer[serverID]; e != nil && e.reading != nil {
		e.changed = true
	}
}

// adjust applies a change the manager made itself (a start takes memory and
// adds a VM, a stop gives them back) to what is cached.
func (cp *capacity) adjust(serverID string, deltaMiB int64) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	e := cp.byServer[serverID]
	if e == nil {
		return
	}
	if e.reading != nil {
		e.changed = true
	}
	if !e.known {
		return
	}
	e.free += deltaMiB
	switch {
	case deltaMiB < 0:
		e.placed++
	case deltaMiB > 0 && e.placed > 0:
		e.placed--
	}
}

// forget drops what is cached for a server (its agent refused a start for
// lack of room: the cache was wrong); a read under way is taken as it comes.
func (cp *capacity) forget(serverID string) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	e := cp.byServer[serverID]
	switch {
	case e == nil:
	case e.reading != nil:
		e.known = false
	default:
		delete(cp.byServer, serverID)
	}
}

// serverLists keeps each pool's placement (poolPlacement) for one
// inventory: a batch of starts then builds the servers' list and clients
// once, and a new inventory (the servers, pools, repositories or users
// changed: Manager.inventory) starts afresh.
type serverLists struct {
	mu     sync.Mutex // guards inv and byPool
	inv    *inventory // the inventory byPool was built from
	byPool map[string]*poolPlacement
}

// poolPlacement is one pool and its servers as the inventory holds them,
// and the servers' clients, made on first use.
type poolPlacement struct {
	gen     int64            // the inventory's generation
	pool    store.ServerPool // its start policy and name; none when the pool is gone
	servers []store.Server   // the inventory's, by name: never changed
	grouped map[string]bool  // the inventory's VMs in an anti-affinity group: never changed
	mu      sync.Mutex       // guards clients
	clients []*agentclient.Client
}

// poolPlacement returns the pool and its servers, from the manager's
// inventory.
func (p *placer) poolPlacement(ctx context.Context, poolID string) (*poolPlacement, error) {
	inv, err := p.inventory(ctx)
	if err != nil {
		return nil, err
	}
	p.serverLists.mu.Lock()
	defer p.serverLists.mu.Unlock()
	if p.serverLists.inv != inv {
		p.serverLists.inv, p.serverLists.byPool = inv, map[string]*poolPlacement{}
	}
	pp, ok := p.serverLists.byPool[poolID]
	if !ok {
		servers := inv.poolServers[poolID]
		pp = &poolPlacement{gen: inv.gen, pool: inv.pools[poolID], servers: servers, grouped: inv.grouped,
			clients: make([]*agentclient.Client, len(servers))}
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
