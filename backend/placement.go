package backend

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"xenmanager/backend/agentclient"
	"xenmanager/store"
)

// candidate is a server a VM could start on, with what it had free when asked.
type candidate struct {
	server  store.Server
	client  *agentclient.Client
	freeMiB int64
	threads int64
	placed  int
}

// place returns, best first, the running servers of the VM's pool that have
// room for it now (BEST_SERVER: most free memory, ties to fewest VMs). Free
// memory is asked of every server at once, since it changes outside the
// manager's view (Domain-0, other managers' leftovers).
func (m *Manager) place(ctx context.Context, v store.VM) ([]candidate, error) {
	servers, err := m.st.Read().ServersInPool(ctx, v.PoolID)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read servers", Cause: err}
	}
	pool, _ := m.st.Read().ServerPool(ctx, v.PoolID)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex // guards all and problems
		all      []candidate
		problems []string
	)
	for _, s := range servers {
		if s.Status != ServerRunning {
			continue
		}
		c, err := m.client(s)
		if err != nil {
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			hw, err := c.DiscoverHardware(ctx)
			n, cerr := m.st.Read().Count(ctx, "vms", "server_id", s.ID)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				problems = append(problems, agentError("ask free memory", s.Name, err).Msg)
				return
			}
			if cerr != nil {
				problems = append(problems, "count VMs on "+s.Name+": "+cerr.Error())
				return
			}
			all = append(all, candidate{server: s, client: c, freeMiB: hw.FreeMemoryMiB, threads: hw.Threads(), placed: n})
		}()
	}
	wg.Wait()
	if len(all) == 0 {
		if len(problems) > 0 {
			return nil, errorf(KindAgentUnreachable, "no server of ServerPool %s answered: %s", pool.Name, strings.Join(problems, "; "))
		}
		return nil, errorf(KindInvalidState, "ServerPool %s has no running server to start Vm %s on", pool.Name, v.Name)
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
			pool.Name, v.Name, v.MemoryMiB, v.CPUCount, best.freeMiB, best.server.Name)
		if best.freeMiB >= v.MemoryMiB {
			msg = fmt.Sprintf("no server of ServerPool %s can run Vm %s (%d MiB, %d vCPUs): servers with enough memory have too few CPUs",
				pool.Name, v.Name, v.MemoryMiB, v.CPUCount)
		}
		if len(problems) > 0 {
			msg += "; not answering: " + strings.Join(problems, "; ")
		}
		return nil, errorf(KindInsufficientResources, "%s", msg)
	}
	return fits, nil
}
