package backend

import (
	"context"
	"strings"
	"sync/atomic"

	"xenmanager/store"
)

// inventory is one read of pools, servers and repositories, used to turn ids
// into names when building views, and of the users' roles, which a
// session checks before each command. These tables are small (tens to
// hundreds of rows) next to VMs, which are never loaded here. An inventory
// is shared by every reader of the cache (inventoryCache): it is never
// changed once read.
type inventory struct {
	// gen is the store's inventory generation its read began at (0 for
	// one read inside a snapshot): a write since makes it stale.
	gen        int64
	pools      map[string]store.ServerPool
	poolList   []store.ServerPool
	servers    map[string]store.Server
	serverList []store.Server
	// poolServers are each pool's servers, by name as serverList.
	poolServers map[string][]store.Server
	repos       map[string]store.Repository
	repoList    []store.Repository
	roles       map[string]string // user name -> role
	// grouped are the VMs that are members of an anti-affinity group
	// (placement reads the peers of those alone); nil in an inventory read
	// by inventoryOf alone (a listing's), which placement never uses.
	grouped map[string]bool
}

// inventoryCache keeps the last inventory read with the store's inventory
// generation at the time, so that a show command reads the three tables
// only after one of them changed: on PostgreSQL they were four round trips
// of the ten a show Vm made, the user's role one of them.
type inventoryCache struct {
	last atomic.Pointer[cachedInventory]
}

// cachedInventory is an inventory and the generation it was read at.
type cachedInventory struct {
	gen int64
	inv *inventory
}

// inventory returns the inventory: the cached one while the store's
// inventory generation is that of its read, else a new read, kept when no
// write changed the tables while it was made. It holds the VMs in an
// anti-affinity group too (inventory.grouped), which the generation also
// follows.
func (m *Manager) inventory(ctx context.Context) (*inventory, error) {
	gen := m.st.InventoryGeneration()
	if c := m.invCache.last.Load(); c != nil && c.gen == gen {
		return c.inv, nil
	}
	q := m.st.Read()
	inv, err := inventoryOf(ctx, q)
	if err != nil {
		return nil, err
	}
	ids, err := q.AntiAffinityGroupedVMs(ctx)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read anti-affinity groups", Cause: err}
	}
	inv.grouped = make(map[string]bool, len(ids))
	for _, id := range ids {
		inv.grouped[id] = true
	}
	inv.gen = gen
	if m.st.InventoryGeneration() == gen {
		m.invCache.last.Store(&cachedInventory{gen: gen, inv: inv})
	}
	return inv, nil
}

// inventoryOf reads the inventory with q: inside a store.Snapshot, that of
// the snapshot's moment, so that a listing's names are those of its rows.
func inventoryOf(ctx context.Context, q *store.Queries) (*inventory, error) {
	inv := &inventory{pools: map[string]store.ServerPool{}, servers: map[string]store.Server{},
		repos: map[string]store.Repository{}}
	var err error
	if inv.poolList, err = q.ServerPools(ctx); err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read server pools", Cause: err}
	}
	if inv.serverList, err = q.Servers(ctx); err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read servers", Cause: err}
	}
	if inv.repoList, err = q.Repositories(ctx); err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read repositories", Cause: err}
	}
	if inv.roles, err = q.UserRoles(ctx); err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read users", Cause: err}
	}
	for _, p := range inv.poolList {
		inv.pools[p.ID] = p
	}
	inv.poolServers = map[string][]store.Server{}
	for _, s := range inv.serverList {
		inv.servers[s.ID] = s
		if s.PoolID != "" {
			inv.poolServers[s.PoolID] = append(inv.poolServers[s.PoolID], s)
		}
	}
	for _, r := range inv.repoList {
		inv.repos[r.ID] = r
	}
	return inv, nil
}

// vmsPerServer counts the VMs placed on each server (RunningVMs of a
// server's view): read at each view, since VMs move without changing the
// inventory.
func (m *Manager) vmsPerServer(ctx context.Context) (map[string]int, error) {
	counts, err := m.st.Read().CountVMsPerServer(ctx)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "count VMs", Cause: err}
	}
	return counts, nil
}

func (inv *inventory) poolRef(id string) NamedRef {
	if id == "" {
		return NamedRef{}
	}
	return NamedRef{ID: id, Name: inv.pools[id].Name}
}

func (inv *inventory) serverRef(id string) NamedRef {
	if id == "" {
		return NamedRef{}
	}
	return NamedRef{ID: id, Name: inv.servers[id].Name}
}

func (inv *inventory) repoRef(id string) NamedRef {
	if id == "" {
		return NamedRef{}
	}
	return NamedRef{ID: id, Name: inv.repos[id].Name}
}

func (inv *inventory) serverView(s store.Server, vms map[string]int) Server {
	return Server{ID: s.ID, Name: s.Name, Hostname: s.Hostname, UniqueID: s.UniqueID, Address: s.Address,
		Port: s.Port, Status: s.Status, Pool: inv.poolRef(s.PoolID), OVMVersion: s.OVMVersion,
		AgentVersion: s.AgentVersion, HypervisorType: s.HypervisorType, HypervisorVersion: s.HypervisorVersion,
		Manufacturer: s.Manufacturer, Product: s.Product, CPUModel: s.CPUModel,
		CPUSockets: s.CPUSockets, CoresPerSocket: s.CoresPerSocket, ThreadsPerCore: s.ThreadsPerCore,
		CPUKHz: s.CPUKHz, TotalMemoryMiB: s.TotalMemoryMiB, Dom0MemoryMiB: s.Dom0MemoryMiB,
		CertSPKISHA256: s.CertSPKISHA256, RunningVMs: vms[s.ID], Roles: s.Roles, IsMaster: s.IsMaster,
		Maintenance: s.Maintenance, CreatedAt: s.CreatedAt}
}

func (inv *inventory) vmView(v store.VM) VM {
	return VM{ID: v.ID, Name: v.Name, Status: inv.vmStatus(v.Status, v.ServerID), Pool: inv.poolRef(v.PoolID), Repository: inv.repoRef(v.RepoID),
		Server: inv.serverRef(v.ServerID), MemoryMiB: v.MemoryMiB, CPUCount: v.CPUCount, DomainType: v.DomainType,
		Description: v.Description, CPUCountLimit: v.CPUCountLimit, MemoryLimitMiB: v.MemoryLimitMiB, CPUPinning: v.CPUPinning, HA: v.HA,
		OSType: v.OSType, BootOrder: v.BootOrder, StartPolicy: v.StartPolicy, RestartActionOnCrash: v.OnCrash, CreatedAt: v.CreatedAt,
		DirectBoot:       DirectBoot{Kernel: v.Kernel, Ramdisk: v.Ramdisk, Extra: v.Extra},
		PreferredServers: inv.serverRefs(v.PreferredServers)}
}

// vmStatus is the status a VM recorded as status on server serverID shows
// (shownVMStatus).
func (inv *inventory) vmStatus(status, serverID string) string {
	if serverID == "" {
		return status
	}
	return shownVMStatus(status, inv.servers[serverID].Status)
}

func (inv *inventory) serverRefs(ids string) []NamedRef {
	var out []NamedRef
	for _, id := range strings.Fields(ids) {
		out = append(out, inv.serverRef(id))
	}
	return out
}

// Names completion asks ObjectNames for that are no object type's: the
// values of the attributes that name a part of a clone customizer's
// source, a VM or a template (vmDiskMapping=, vnic=).
const (
	NamesCloneSourceDisks = "VmDiskMapping of a Vm or VmTemplate"
	NamesCloneSourceVnics = "Vnic of a Vm or VmTemplate"
)

// ObjectNames returns up to limit names of objects of type typ (or of the
// names NamesCloneSourceDisks or NamesCloneSourceVnics) starting with
// prefix, for completion; for VMs, only those in states when given.
// Unknown types and errors give no names.
func (m *Manager) ObjectNames(ctx context.Context, typ, prefix string, limit int, states []string) []string {
	var table string
	switch typ {
	case "VmDiskMapping": // mappings have no table of their own, nor a name column that holds them all
		table = store.NamesDiskMappings
	case NamesCloneSourceDisks:
		table = store.NamesCloneSourceDisks
	case NamesCloneSourceVnics:
		table = store.NamesCloneSourceVnics
	default:
		k := objectKindNamed(typ)
		if k == nil || k.table == "" {
			return nil
		}
		table = k.table
	}
	if typ != "Vm" {
		states = nil
	}
	sc, err := m.scope(ctx)
	if err != nil {
		return nil
	}
	var pools []string // nil: every pool
	if !sc.all {
		pools = []string{}
		for id := range sc.pools {
			pools = append(pools, id)
		}
	}
	names, err := m.st.Read().NamesWithPrefix(ctx, table, prefix, limit, states, pools)
	if err != nil {
		m.log.Warn("completion: read names", "type", typ, "err", err)
		return nil
	}
	return names
}
