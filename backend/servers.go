package backend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
	"xenmanager/store"
)

// DiscoverRequest names an agent to take under management.
type DiscoverRequest struct {
	Address  string
	Port     int // agentapi.DefaultPort when zero
	Password string
}

var hostRx = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$`)

// DiscoverServer contacts the agent at req.Address, pins its certificate,
// takes ownership of the server and records its hypervisor and hardware.
// Discovering a server that is already known (same unique id) updates its
// address, password, pin, hypervisor and hardware and keeps its id, name
// and pool: that is also how an operator accepts an agent's new
// certificate.
func (m *Manager) DiscoverServer(ctx context.Context, req DiscoverRequest) (Server, error) {
	if req.Port == 0 {
		req.Port = agentapi.DefaultPort
	}
	if req.Port < 1 || req.Port > 65535 {
		return Server{}, errorf(KindInvalidArgument, "port %d is out of range: use 1 to 65535", req.Port)
	}
	if net.ParseIP(req.Address) == nil && !hostRx.MatchString(req.Address) {
		return Server{}, errorf(KindInvalidArgument, "ipAddress %q is neither an IP address nor a host name", req.Address)
	}
	if req.Password == "" {
		return Server{}, errorf(KindInvalidArgument, "the agent password is empty")
	}
	if err := m.authorize(ctx, PermManage); err != nil {
		return Server{}, err
	}
	where := net.JoinHostPort(req.Address, strconv.Itoa(req.Port))
	return jobValue[Server](m.job(ctx, actorFrom(ctx), "", "discoverServer", "discoverServer "+where, []string{"discover:" + where},
		func(ctx context.Context, j *jobRun) (any, error) { return m.discoverServer(ctx, req, where) }))
}

func (m *Manager) discoverServer(ctx context.Context, req DiscoverRequest, where string) (Server, error) {
	what := "discover server " + where
	c, err := agentclient.New(agentclient.Config{Address: req.Address, Port: req.Port, Password: req.Password, Timeout: m.timeout,
		Observe: m.metrics.AgentCallObserver()})
	if err != nil {
		return Server{}, errorf(KindInvalidArgument, "%s: %v", what, err)
	}
	defer c.Close()

	ver, err := c.GetAPIVersion(ctx)
	if err != nil {
		return Server{}, agentError(what, where, err)
	}
	if ver.APIVersion != agentapi.APIVersion {
		return Server{}, errorf(KindAgentFault, "%s: the agent speaks API version %q; this manager speaks %q", what, ver.APIVersion, agentapi.APIVersion)
	}
	info, err := c.DiscoverServer(ctx)
	if err != nil {
		return Server{}, agentError(what, where, err)
	}
	if info.UniqueID == "" {
		return Server{}, errorf(KindAgentFault, "%s: the agent reported no unique_id", what)
	}
	if err := c.TakeOwnership(ctx, m.uuid, m.name); err != nil {
		if f, ok := agentapi.AsFault(err); ok && f.Code == agentapi.FaultNotOwner {
			return Server{}, &Error{Kind: KindConflict, Msg: fmt.Sprintf("%s: the server is owned by another manager (%s); release it there first", what, f.Message), Cause: err}
		}
		return Server{}, agentError(what, where, err)
	}
	hw, err := c.DiscoverHardware(ctx)
	if err != nil {
		return Server{}, agentError(what, where, err)
	}
	pin := c.SeenPin()
	if pin == "" {
		return Server{}, errorf(KindInternal, "%s: no certificate was seen", what)
	}
	// The server is named after the host name its agent reports when that
	// is a valid name (the agent's word is not trusted to be one), else
	// after the address it was discovered at.
	name, err := ValidateName("Server", info.Hostname)
	if err != nil {
		name = req.Address
	}
	hvType, hvVersion := info.Hypervisor()
	var saved store.Server
	err = m.st.Write(ctx, func(q *store.Queries) error {
		saved, err = q.UpsertServer(ctx, store.Server{
			ID: NewID(TypeServer), Name: name, UniqueID: info.UniqueID, Hostname: info.Hostname,
			Address: req.Address, Port: req.Port, AgentPassword: m.sealer.Seal(req.Password), CertSPKISHA256: pin,
			OVMVersion: info.OVMVersion, AgentVersion: info.AgentVersion, HypervisorType: hvType,
			HypervisorVersion: hvVersion, Manufacturer: hw.Manufacturer,
			Product: hw.Product, CPUModel: hw.CPUModel, CPUSockets: hw.CPUSockets, CoresPerSocket: hw.CoresPerSocket,
			ThreadsPerCore: hw.ThreadsPerCore, CPUKHz: hw.CPUKHz, TotalMemoryMiB: hw.TotalMemoryMiB,
			Dom0MemoryMiB: hw.Dom0MemoryMiB, Status: ServerRunning, CreatedAt: time.Now(),
		})
		return err
	})
	if err != nil {
		return Server{}, &Error{Kind: KindInternal, Msg: "record server " + name, Cause: err}
	}
	m.clients.forget(saved.ID)
	m.log.Info("server discovered", "server", saved.Name, "id", saved.ID, "address", where, "pin", pin,
		"hypervisor", saved.HypervisorType)
	m.warnIfPoolMixed(ctx, saved)
	return m.Server(ctx, Ref{ID: saved.ID})
}

// Servers lists the servers that pass f (name, status, pool).
func (m *Manager) Servers(ctx context.Context, f Filter) ([]Server, error) {
	l, err := m.StreamServers(ctx, f)
	return collected(ctx, l, err)
}

// Server returns the server ref names.
func (m *Manager) Server(ctx context.Context, ref Ref) (Server, error) {
	return show(ctx, m, m.serverKind(), ref, func(inv *inventory, s store.Server) (Server, error) {
		vms, err := m.vmsPerServer(ctx)
		if err != nil {
			return Server{}, err
		}
		return inv.serverView(s, vms), nil
	})
}

func (m *Manager) findServer(ctx context.Context, ref Ref) (store.Server, error) {
	return resolve(ctx, m, m.serverKind(), ref)
}

// errNoServer is returned by poolServer when a pool has no server to act through.
var errNoServer = errors.New("no server")

// poolServer returns a running server of pool through which to act on the
// pool's shared storage.
func (m *Manager) poolServer(ctx context.Context, poolID string) (store.Server, *agentclient.Client, error) {
	servers, err := m.st.Read().ServersInPool(ctx, poolID)
	if err != nil {
		return store.Server{}, nil, &Error{Kind: KindInternal, Msg: "read servers", Cause: err}
	}
	for _, s := range servers {
		if s.Status != ServerRunning {
			continue
		}
		c, err := m.clients.get(s)
		if err != nil {
			return store.Server{}, nil, err
		}
		return s, c, nil
	}
	return store.Server{}, nil, errNoServer
}

// utilityServer returns a running server of pool with the utility role,
// through which to do the pool's repository work (downloads, disk and ISO
// files, a repository's refresh). With no running server it returns
// errNoServer; when the running ones all lack the role, an error that names
// them and how to give the role.
func (m *Manager) utilityServer(ctx context.Context, poolID string) (store.Server, *agentclient.Client, error) {
	servers, err := m.st.Read().ServersInPool(ctx, poolID)
	if err != nil {
		return store.Server{}, nil, &Error{Kind: KindInternal, Msg: "read servers", Cause: err}
	}
	var without []string
	for _, s := range servers {
		if s.Status != ServerRunning {
			continue
		}
		if !hasRole(s.Roles, RoleUtility) {
			without = append(without, lacksRole(s.Name, s.Roles, RoleUtility))
			continue
		}
		c, err := m.clients.get(s)
		if err != nil {
			return store.Server{}, nil, err
		}
		return s, c, nil
	}
	if len(without) == 0 {
		return store.Server{}, nil, errNoServer
	}
	pool, err := optional(m.st.Read().ServerPool(ctx, poolID))
	if err != nil {
		return store.Server{}, nil, err
	}
	return store.Server{}, nil, errorf(KindInvalidState, "ServerPool %s has no running server with the utility role for repository work: %s",
		pool.Name, strings.Join(without, "; "))
}

// EditServerRequest holds the settings to change; nil fields stay.
type EditServerRequest struct {
	Name        *string
	Maintenance *bool
	Roles       *string // "xen,utility", "xen", "utility"
}

// ServerEdit is what edit Server did: the server as it is now and, when
// maintenance mode was asked for, what became of the VMs that ran there.
type ServerEdit struct {
	Server Server
	// Evacuation is nil unless the edit asked for maintenance mode.
	Evacuation *Evacuation
}

// String is the edit job's result: the server, and the evacuation's
// outcome when there was one.
func (e ServerEdit) String() string {
	if e.Evacuation == nil {
		return e.Server.String()
	}
	return e.Server.String() + ": in maintenance mode; " + e.Evacuation.String()
}

// EditServer renames a server, puts it in or out of maintenance mode, or
// changes its roles (update_server_roles on the agent, then the record
// placement reads). The VM server role is not taken from a server that runs
// VMs: they would run where no VM may go.
//
// Maintenance mode keeps new VMs off the server, and entering it (asking
// for it, even when it is on already: that retries) evacuates the server:
// its running VMs are live-migrated to other servers of the pool, one
// migrate job each, within this job (evacuate). The server is in
// maintenance mode whatever becomes of them: when a VM stays, the edit
// fails naming each VM that stayed and why, and the result still holds the
// evacuation. Leaving maintenance mode does nothing else.
func (m *Manager) EditServer(ctx context.Context, ref Ref, req EditServerRequest) (ServerEdit, error) {
	if req.Roles != nil {
		roles, err := parseServerRoles(*req.Roles)
		if err != nil {
			return ServerEdit{}, err
		}
		req.Roles = &roles
	}
	s, err := findFor(ctx, m, m.serverKind(), ref, PermManage)
	if err != nil {
		return ServerEdit{}, err
	}
	v, err := m.job(ctx, actorFrom(ctx), s.PoolID, "edit Server", "edit Server "+s.Name, []string{s.ID}, func(ctx context.Context, j *jobRun) (any, error) {
		cur, err := m.st.Read().Server(ctx, s.ID)
		if err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "read server", Cause: err}
		}
		if req.Name != nil {
			name, err := ValidateName("Server", *req.Name)
			if err != nil {
				return nil, err
			}
			cur.Name = name
		}
		if req.Maintenance != nil {
			cur.Maintenance = *req.Maintenance
		}
		if req.Roles != nil && *req.Roles != cur.Roles {
			if hasRole(cur.Roles, RoleXen) && !hasRole(*req.Roles, RoleXen) {
				n, err := m.st.Read().Count(ctx, "vms", "server_id", cur.ID)
				if err != nil {
					return nil, &Error{Kind: KindInternal, Msg: "count the server's VMs", Cause: err}
				}
				if n > 0 {
					return nil, errorf(KindConflict, "Server %s runs %d VMs; migrate or stop them before taking its VM server role (xen) away", cur.Name, n)
				}
			}
			c, err := m.clients.get(cur)
			if err != nil {
				return nil, err
			}
			if err := c.UpdateServerRoles(ctx, *req.Roles); err != nil {
				return nil, agentError("edit Server "+cur.Name, cur.Name, err)
			}
			cur.Roles = *req.Roles
		}
		if err := m.st.Write(ctx, func(q *store.Queries) error { return q.UpdateServerSettings(ctx, cur) }); err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "record server settings", Cause: err}
		}
		var edit ServerEdit
		var evacErr error
		if req.Maintenance != nil && *req.Maintenance {
			ev, err := m.evacuate(ctx, j, cur)
			edit.Evacuation, evacErr = &ev, err
		}
		if edit.Server, err = m.Server(ctx, Ref{ID: s.ID}); err != nil {
			return nil, err
		}
		return edit, evacErr
	})
	edit, _ := v.(ServerEdit)
	return edit, err
}

// DeleteServer forgets a server that is in no pool, releasing its ownership.
// An agent that does not answer is forgotten all the same (a dead server
// must be removable), and the log says so. With force, a server the manager
// records as not answering (isSilent) is forgotten without calling its
// agent at all (a hung agent would hold the job for its timeout), once no
// VM is recorded on it; its agent still believes it is owned by this
// manager, which lets a later discoverServer take it again. force on a
// server that answers is the ordinary delete.
func (m *Manager) DeleteServer(ctx context.Context, ref Ref, force bool) (Server, error) {
	s, err := findFor(ctx, m, m.serverKind(), ref, PermManage)
	if err != nil {
		return Server{}, err
	}
	view, err := m.Server(ctx, Ref{ID: s.ID})
	if err != nil {
		return Server{}, err
	}
	return jobValue[Server](m.job(ctx, actorFrom(ctx), "", "delete Server", "delete Server "+s.Name, []string{s.ID}, func(ctx context.Context, j *jobRun) (any, error) {
		cur, err := m.st.Read().Server(ctx, s.ID)
		if err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "read server", Cause: err}
		}
		if cur.PoolID != "" {
			p, err := optional(m.st.Read().ServerPool(ctx, cur.PoolID))
			if err != nil {
				return nil, err
			}
			how := "remove it from the pool first"
			if force && isSilent(cur) {
				how = fmt.Sprintf("remove it from the pool first (remove Server id=%s from ServerPool id=%s force=Yes)", cur.ID, p.ID)
			}
			return nil, errorf(KindConflict, "Server %s is in use by ServerPool %s; %s", cur.Name, p.Name, how)
		}
		silent := force && isSilent(cur)
		if silent {
			names, err := m.vmsOn(ctx, cur.ID)
			if err != nil {
				return nil, err
			}
			if err := refuseWhileRecorded(cur, "delete Server force=Yes", names); err != nil {
				return nil, err
			}
		} else if c, err := m.clients.get(cur); err == nil {
			if err := c.ReleaseOwnership(ctx, m.uuid); err != nil {
				m.log.Warn("release_ownership failed; forgetting the server anyway", "server", cur.Name, "err", err)
			}
		}
		if err := m.st.Write(ctx, func(q *store.Queries) error { return q.DeleteServer(ctx, cur.ID) }); err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "delete server record", Cause: err}
		}
		m.clients.forget(cur.ID)
		if silent {
			user := actorFrom(ctx).User
			desc := fmt.Sprintf("Server %s (%s) was deleted by user %s without reaching its agent (delete Server force=Yes): "+
				"should the machine come back, it still believes this manager owns it; discoverServer takes it again", cur.Name, cur.Status, user)
			m.log.Warn(desc, "server", cur.ID, "user", user)
			m.event(ctx, "Warning", "ServerDeletedWithoutAgent", "Server", cur.ID, cur.Name, "", desc)
		}
		return view, nil
	}))
}

// Refreshed is what a refresh of a server found.
type Refreshed struct {
	Server     Server
	VMsChanged int // VMs whose recorded state was brought in line with the agent
}

// RefreshServer re-reads a server's identity, hypervisor and hardware from
// its agent (discover_server, discover_hardware), records them, forgets the free
// memory placement had cached for it, and brings the state of the VMs
// recorded there in line with the domains it runs (list_vms).
func (m *Manager) RefreshServer(ctx context.Context, ref Ref) (Refreshed, error) {
	s, err := findFor(ctx, m, m.serverKind(), ref, PermVMLifecycle)
	if err != nil {
		return Refreshed{}, err
	}
	return jobValue[Refreshed](m.job(ctx, actorFrom(ctx), s.PoolID, "refresh Server", "refresh Server "+s.Name, []string{s.ID},
		func(ctx context.Context, j *jobRun) (any, error) { return m.refreshServer(ctx, s.ID) }))
}

func (m *Manager) refreshServer(ctx context.Context, serverID string) (Refreshed, error) {
	s, err := optional(m.st.Read().Server(ctx, serverID))
	if err != nil {
		return Refreshed{}, err
	}
	if s.ID == "" {
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
	s.HypervisorType, s.HypervisorVersion = info.Hypervisor()
	s.Manufacturer, s.Product, s.CPUModel = hw.Manufacturer, hw.Product, hw.CPUModel
	s.CPUSockets, s.CoresPerSocket, s.ThreadsPerCore, s.CPUKHz = hw.CPUSockets, hw.CoresPerSocket, hw.ThreadsPerCore, hw.CPUKHz
	s.TotalMemoryMiB, s.Dom0MemoryMiB = hw.TotalMemoryMiB, hw.Dom0MemoryMiB
	if err := m.st.Write(ctx, func(q *store.Queries) error { _, err := q.UpsertServer(ctx, s); return err }); err != nil {
		return Refreshed{}, &Error{Kind: KindInternal, Msg: "record server " + s.Name, Cause: err}
	}
	m.place.capacity.forget(s.ID)
	m.warnIfPoolMixed(ctx, s)
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

// warnIfPoolMixed raises a Warning event when s, just rediscovered or
// refreshed, now reports another hypervisor type than the rest of its pool
// (its agent changed drivers while it was a member): add Server refuses
// such a pool, but a server already in one is recorded as it is, so that
// the manager does not hide what runs there. Failing to read the pool is
// logged, never returned: the discovery itself succeeded.
func (m *Manager) warnIfPoolMixed(ctx context.Context, s store.Server) {
	if s.PoolID == "" {
		return
	}
	members, err := m.st.Read().ServersInPool(ctx, s.PoolID)
	if err != nil {
		m.log.Error("read pool members", "pool", s.PoolID, "err", err)
		return
	}
	for _, o := range members {
		if o.ID != s.ID && o.HypervisorType != s.HypervisorType {
			m.event(ctx, "Warning", "ServerPoolMixedHypervisors", "Server", s.ID, s.Name, s.PoolID,
				fmt.Sprintf("server %s now runs hypervisor %s but %s of its pool runs %s; VMs cannot move between them: remove %s from the pool",
					s.Name, s.HypervisorType, o.Name, o.HypervisorType, s.Name))
			return
		}
	}
}
