package backend

import (
	"context"
	"fmt"
	"sort"
	"strings"
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

// place returns, best first, the servers where the VM may start now, and a
// release func for the memory reserved on the first of them. The policy is
// the VM's start policy, or the pool's for USE_POOL_POLICY: BEST_SERVER picks
// the most free memory that fits memory and vCPUs among the running servers
// not in maintenance (the VM's preferred servers when it has any), ties to
// the fewest VMs; CURRENT_SERVER insists on the server it ran on last.
func (m *Manager) place(ctx context.Context, v store.VM) ([]candidate, func(), error) {
	return m.placeExcept(ctx, v, "")
}

// placeExcept is place without the server except (a migration's source).
func (m *Manager) placeExcept(ctx context.Context, v store.VM, except string) ([]candidate, func(), error) {
	servers, err := m.poolServers(ctx, v.PoolID)
	if err != nil {
		return nil, nil, &Error{Kind: KindInternal, Msg: "read servers", Cause: err}
	}
	pool, _ := m.st.Read().ServerPool(ctx, v.PoolID)
	policy := v.StartPolicy
	if policy == "" || policy == PolicyUsePool {
		policy = pool.StartPolicy
	}
	preferred := map[string]bool{}
	for _, id := range strings.Fields(v.PreferredServers) {
		preferred[id] = true
	}
	var eligible []store.Server
	var skipped []string
	for _, s := range servers {
		switch {
		case s.ID == except:
		case s.Status != ServerRunning:
			skipped = append(skipped, s.Name+" is "+s.Status)
		case s.Maintenance:
			skipped = append(skipped, s.Name+" is in maintenance mode")
		case policy == PolicyCurrentServer && v.LastServerID != "" && s.ID != v.LastServerID:
		case len(preferred) > 0 && !preferred[s.ID]:
		default:
			eligible = append(eligible, s)
		}
	}
	if len(eligible) == 0 {
		why := ""
		if len(skipped) > 0 {
			why = ": " + strings.Join(skipped, "; ")
		}
		switch {
		case policy == PolicyCurrentServer && v.LastServerID != "":
			return nil, nil, errorf(KindInvalidState, "Vm %s has startPolicy CURRENT_SERVER and its server cannot take it%s", v.Name, why)
		case len(preferred) > 0:
			return nil, nil, errorf(KindInvalidState, "none of the preferred servers of Vm %s can take it%s", v.Name, why)
		}
		return nil, nil, errorf(KindInvalidState, "ServerPool %s has no server that can take Vm %s%s", pool.Name, v.Name, why)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex // guards all and problems
		all      []candidate
		problems []string
	)
	for _, s := range eligible {
		c, err := m.client(s)
		if err != nil {
			return nil, nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			free, threads, placed, err := m.capacity.get(ctx, s.ID, c, func() (int, error) {
				return m.st.Read().Count(ctx, "vms", "server_id", s.ID)
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				problems = append(problems, agentError("ask free memory", s.Name, err).Msg)
				return
			}
			all = append(all, candidate{server: s, client: c, freeMiB: free, threads: threads, placed: placed})
		}()
	}
	wg.Wait()
	if len(all) == 0 {
		return nil, nil, errorf(KindAgentUnreachable, "no server of ServerPool %s answered: %s", pool.Name, strings.Join(problems, "; "))
	}
	// Choose and reserve under one lock, so that concurrent starts see each
	// other's choices.
	m.placeMu.Lock()
	defer m.placeMu.Unlock()
	for i := range all {
		all[i].freeMiB -= m.reserved.get(all[i].server.ID)
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].freeMiB != all[j].freeMiB {
			return all[i].freeMiB > all[j].freeMiB
		}
		if all[i].placed != all[j].placed {
			return all[i].placed < all[j].placed
		}
		return all[i].server.Name < all[j].server.Name
	})
	var fits []candidate
	for _, c := range all {
		if c.freeMiB >= v.MemoryMiB && c.threads >= v.CPUCount {
			fits = append(fits, c)
		}
	}
	if len(fits) == 0 {
		best := all[0]
		msg := fmt.Sprintf("no server of ServerPool %s can run Vm %s (%d MiB, %d vCPUs): the most free memory is %d MiB on %s",
			pool.Name, v.Name, v.MemoryMiB, v.CPUCount, max(best.freeMiB, 0), best.server.Name)
		if best.freeMiB >= v.MemoryMiB {
			msg = fmt.Sprintf("no server of ServerPool %s can run Vm %s (%d MiB, %d vCPUs): servers with enough memory have too few CPUs",
				pool.Name, v.Name, v.MemoryMiB, v.CPUCount)
		}
		if len(problems) > 0 {
			msg += "; not answering: " + strings.Join(problems, "; ")
		}
		return nil, nil, errorf(KindInsufficientResources, "%s", msg)
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

// serverLists caches each pool's servers while the servers table does not
// change (store.ServersGeneration): a batch of starts then reads them once.
type serverLists struct {
	mu     sync.Mutex // guards gen and byPool
	gen    int64
	byPool map[string][]store.Server
}

// poolServers returns the servers of a pool, from the cache when current.
func (m *Manager) poolServers(ctx context.Context, poolID string) ([]store.Server, error) {
	gen := m.st.ServersGeneration()
	m.serverLists.mu.Lock()
	if m.serverLists.gen == gen && m.serverLists.byPool != nil {
		if l, ok := m.serverLists.byPool[poolID]; ok {
			m.serverLists.mu.Unlock()
			return l, nil
		}
	}
	m.serverLists.mu.Unlock()
	l, err := m.st.Read().ServersInPool(ctx, poolID)
	if err != nil {
		return nil, err
	}
	m.serverLists.mu.Lock()
	defer m.serverLists.mu.Unlock()
	if m.serverLists.gen != gen || m.serverLists.byPool == nil {
		m.serverLists.gen, m.serverLists.byPool = gen, map[string][]store.Server{}
	}
	if m.st.ServersGeneration() == gen {
		m.serverLists.byPool[poolID] = l
	}
	return l, nil
}
