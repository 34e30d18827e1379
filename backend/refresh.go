package backend

import (
	"context"
	"errors"
	"strings"
	"sync"

	"xenmanager/store"
)

// Refreshed is what a refresh of a server found.
type Refreshed struct {
	Server     Server
	VMsChanged int // VMs whose recorded state was brought in line with the agent
}

// RefreshServer re-reads a server's identity and hardware from its agent
// (discover_server, discover_hardware), records them, forgets the free
// memory placement had cached for it, and brings the state of the VMs
// recorded there in line with the domains it runs (list_vms).
func (m *Manager) RefreshServer(ctx context.Context, ref Ref) (Refreshed, error) {
	s, err := m.findServer(ctx, ref)
	if err != nil {
		return Refreshed{}, err
	}
	if err := m.authorize(ctx, PermVMLifecycle); err != nil {
		return Refreshed{}, err
	}
	return jobValue[Refreshed](m.job(ctx, actorFrom(ctx), s.PoolID, "refresh Server "+s.Name, []string{s.ID},
		func(ctx context.Context, j *jobRun) (any, error) { return m.refreshServer(ctx, s.ID) }))
}

func (m *Manager) refreshServer(ctx context.Context, serverID string) (Refreshed, error) {
	s, err := m.st.Read().Server(ctx, serverID)
	if err != nil {
		return Refreshed{}, errorf(KindNotFound, "the server was deleted meanwhile")
	}
	c, err := m.clients.get(s)
	if err != nil {
		return Refreshed{}, err
	}
	what := "refresh Server " + s.Name
	info, err := c.DiscoverServer(ctx)
	if err != nil {
		return Refreshed{}, agentError(what, s.Name, err)
	}
	if info.UniqueID != s.UniqueID {
		return Refreshed{}, errorf(KindConflict, "%s: the agent at %s:%d now answers as another server (unique id %s); discover it again to record it",
			what, s.Address, s.Port, info.UniqueID)
	}
	hw, err := c.DiscoverHardware(ctx)
	if err != nil {
		return Refreshed{}, agentError(what, s.Name, err)
	}
	s.Hostname, s.OVMVersion, s.AgentVersion = info.Hostname, info.OVMVersion, info.AgentVersion
	s.Manufacturer, s.Product, s.CPUModel = hw.Manufacturer, hw.Product, hw.CPUModel
	s.CPUSockets, s.CoresPerSocket, s.ThreadsPerCore, s.CPUKHz = hw.CPUSockets, hw.CoresPerSocket, hw.ThreadsPerCore, hw.CPUKHz
	s.TotalMemoryMiB, s.Dom0MemoryMiB = hw.TotalMemoryMiB, hw.Dom0MemoryMiB
	if err := m.st.Write(ctx, func(q *store.Queries) error { _, err := q.UpsertServer(ctx, s); return err }); err != nil {
		return Refreshed{}, &Error{Kind: KindInternal, Msg: "record server " + s.Name, Cause: err}
	}
	m.place.capacity.forget(s.ID)
	changed, err := m.reconcileServer(ctx, s, c)
	if errors.Is(err, errServerSilent) {
		return Refreshed{}, agentError(what+": list its domains", s.Name, errors.Unwrap(err))
	}
	if err != nil {
		return Refreshed{}, err
	}
	view, err := m.Server(ctx, Ref{ID: s.ID})
	return Refreshed{Server: view, VMsChanged: changed}, err
}

// PoolRefresh is the outcome of refreshing one server of a pool.
type PoolRefresh struct {
	Server NamedRef
	Result Refreshed
	Err    error
}

// RefreshServerPool refreshes every server of a pool at once (see
// RefreshServer), one job per server; it fails when any did, after all
// have been tried.
func (m *Manager) RefreshServerPool(ctx context.Context, ref Ref) ([]PoolRefresh, error) {
	p, err := m.findPool(ctx, ref)
	if err != nil {
		return nil, err
	}
	if err := m.authorize(ctx, PermVMLifecycle); err != nil {
		return nil, err
	}
	servers, err := m.st.Read().ServersInPool(ctx, p.ID)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read servers", Cause: err}
	}
	if len(servers) == 0 {
		return nil, errorf(KindInvalidState, "ServerPool %s has no servers to refresh", p.Name)
	}
	out := make([]PoolRefresh, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		out[i].Server = NamedRef{s.ID, s.Name}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].Result, out[i].Err = m.RefreshServer(ctx, Ref{ID: s.ID})
		}()
	}
	wg.Wait()
	var failed []string
	for _, r := range out {
		if r.Err != nil {
			failed = append(failed, r.Server.Name)
		}
	}
	if len(failed) > 0 {
		return out, errorf(KindAgentFault, "refresh ServerPool %s: %d of %d servers failed (%s)", p.Name, len(failed), len(out), strings.Join(failed, ", "))
	}
	return out, nil
}

// RepositoryState is a repository as a server of its pool sees it, beside
// what the manager records of it.
type RepositoryState struct {
	Repository                              Repository
	Server                                  NamedRef // the server asked
	TotalMiB, FreeMiB                       int64
	VMFiles, DiskFiles, ISOFiles, Templates int64 // as the server counts them
	RecordedDisks, RecordedISOs             int   // as the manager records them (VMs: Repository.VMs)
}

// RefreshRepository asks a server of the repository's pool how it sees the
// repository (discover_repositories): its size, free space and the files
// in it, beside the manager's own counts, so that an operator sees whether
// the two agree.
func (m *Manager) RefreshRepository(ctx context.Context, ref Ref) (RepositoryState, error) {
	r, err := m.findRepository(ctx, ref)
	if err != nil {
		return RepositoryState{}, err
	}
	srv, c, err := m.poolServer(ctx, r.PoolID)
	if errors.Is(err, errNoServer) {
		return RepositoryState{}, errorf(KindInvalidState, "the pool of Repository %s has no running server to ask", r.Name)
	}
	if err != nil {
		return RepositoryState{}, err
	}
	seen, err := c.DiscoverRepositories(ctx, r.ID)
	if err != nil {
		return RepositoryState{}, agentError("refresh Repository "+r.Name, srv.Name, err)
	}
	if len(seen) == 0 {
		return RepositoryState{}, errorf(KindNotFound, "server %s does not know Repository %s (%s); present it again with a server of the pool", srv.Name, r.Name, r.ID)
	}
	view, err := m.Repository(ctx, Ref{ID: r.ID})
	if err != nil {
		return RepositoryState{}, err
	}
	q := m.st.Read()
	disks, _ := q.CountWhere(ctx, "virtual_disks.repo_id", r.ID)
	isos, _ := q.CountWhere(ctx, "virtual_cdroms.repo_id", r.ID)
	a := seen[0]
	return RepositoryState{Repository: view, Server: NamedRef{srv.ID, srv.Name}, TotalMiB: a.TotalMiB, FreeMiB: a.FreeMiB,
		VMFiles: a.VMs, DiskFiles: a.Disks, ISOFiles: a.ISOs, Templates: a.Templates, RecordedDisks: disks, RecordedISOs: isos}, nil
}
