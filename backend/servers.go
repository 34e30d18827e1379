package backend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
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
// takes ownership of the server and records its hardware. Discovering a
// server that is already known (same unique id) updates its address,
// password, pin and hardware and keeps its id, name and pool: that is also
// how an operator accepts an agent's new certificate.
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
	return jobValue[Server](m.job(ctx, actorFrom(ctx), "", "discoverServer "+where, []string{"discover:" + where},
		func(ctx context.Context, j *jobRun) (any, error) { return m.discoverServer(ctx, req, where) }))
}

func (m *Manager) discoverServer(ctx context.Context, req DiscoverRequest, where string) (Server, error) {
	what := "discover server " + where
	c, err := agentclient.New(agentclient.Config{Address: req.Address, Port: req.Port, Password: req.Password, Timeout: m.timeout})
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
	name := info.Hostname
	if name == "" {
		name = req.Address
	}
	var saved store.Server
	err = m.st.Write(ctx, func(q *store.Queries) error {
		saved, err = q.UpsertServer(ctx, store.Server{
			ID: NewID(TypeServer), Name: name, UniqueID: info.UniqueID, Hostname: info.Hostname,
			Address: req.Address, Port: req.Port, AgentPassword: m.sealer.Seal(req.Password), CertSPKISHA256: pin,
			OVMVersion: info.OVMVersion, AgentVersion: info.AgentVersion, Manufacturer: hw.Manufacturer,
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
	m.log.Info("server discovered", "server", saved.Name, "id", saved.ID, "address", where, "pin", pin)
	return m.Server(ctx, Ref{ID: saved.ID})
}

// Servers lists the servers that pass f (name, status, pool).
func (m *Manager) Servers(ctx context.Context, f Filter) ([]Server, error) {
	c, err := m.compile(ctx, f)
	if err != nil {
		return nil, err
	}
	inv, err := m.inventory(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Server, 0, len(inv.servers))
	for _, s := range inv.serverList {
		if c.match(s.ID, s.Name, s.Status, s.ID, s.PoolID, "") {
			out = append(out, inv.serverView(s))
		}
	}
	return out, nil
}

// Server returns the server ref names.
func (m *Manager) Server(ctx context.Context, ref Ref) (Server, error) {
	s, err := m.findServer(ctx, ref)
	if err != nil {
		return Server{}, err
	}
	inv, err := m.inventory(ctx)
	if err != nil {
		return Server{}, err
	}
	return inv.serverView(s), nil
}

func (m *Manager) findServer(ctx context.Context, ref Ref) (store.Server, error) {
	return resolve(ctx, m, m.serverKind(), ref)
}

// AddServerToPool makes server a member of pool: the first server of a
// pool becomes its master (create_server_pool), the others join
// (join_server_pool); every member learns the members' addresses
// (set_pool_member_ip_list) and the new one the pool's repositories
// (add_repository). Then the store records it.
func (m *Manager) AddServerToPool(ctx context.Context, server, pool Ref) (Server, error) {
	s, err := m.findServer(ctx, server)
	if err != nil {
		return Server{}, err
	}
	p, err := m.findPool(ctx, pool)
	if err != nil {
		return Server{}, err
	}
	if err := m.authorize(ctx, PermManage); err != nil {
		return Server{}, err
	}
	// The pool lock keeps a concurrent create Repository from missing this
	// server (it lists the pool's servers under the same lock).
	return jobValue[Server](m.job(ctx, actorFrom(ctx), p.ID, fmt.Sprintf("add Server %s to ServerPool %s", s.Name, p.Name),
		[]string{"pool:" + p.ID, s.ID}, func(ctx context.Context, j *jobRun) (any, error) {
			return m.addServerToPool(ctx, s.ID, p)
		}))
}

func (m *Manager) addServerToPool(ctx context.Context, serverID string, p store.ServerPool) (Server, error) {
	s, err := m.st.Read().Server(ctx, serverID)
	if err != nil {
		return Server{}, &Error{Kind: KindInternal, Msg: "read server", Cause: err}
	}
	if s.PoolID == p.ID {
		return Server{}, errorf(KindConflict, "Server %s is already in ServerPool %s", s.Name, p.Name)
	}
	if s.PoolID != "" {
		other, _ := m.st.Read().ServerPool(ctx, s.PoolID)
		return Server{}, errorf(KindConflict, "Server %s is in ServerPool %s; remove it from there first", s.Name, other.Name)
	}
	members, err := m.st.Read().ServersInPool(ctx, p.ID)
	if err != nil {
		return Server{}, &Error{Kind: KindInternal, Msg: "read servers", Cause: err}
	}
	repos, err := m.st.Read().RepositoriesInPool(ctx, p.ID)
	if err != nil {
		return Server{}, &Error{Kind: KindInternal, Msg: "read repositories", Cause: err}
	}
	c, err := m.clients.get(s)
	if err != nil {
		return Server{}, err
	}
	what := fmt.Sprintf("add Server %s to ServerPool %s", s.Name, p.Name)
	params := agentapi.PoolParams{Alias: p.Name, PoolUUID: p.ID, Num: int64(len(members) + 1), Name: s.Name,
		Host: s.Address, Roles: s.Roles}
	master := len(members) == 0
	if master {
		err = c.CreateServerPool(ctx, params)
	} else {
		err = c.JoinServerPool(ctx, params)
	}
	if err != nil {
		return Server{}, agentError(what, s.Name, err)
	}
	for _, r := range repos {
		if err := c.AddRepository(ctx, r.FSLocation, r.MountPoint); err != nil {
			if lerr := c.LeaveServerPool(context.WithoutCancel(ctx), p.ID); lerr != nil {
				m.log.Error("could not undo the pool join", "server", s.Name, "err", lerr)
			}
			return Server{}, agentError(fmt.Sprintf("%s (repository %s)", what, r.Name), s.Name, err)
		}
	}
	s.PoolID, s.IsMaster = p.ID, master
	err = m.st.Write(ctx, func(q *store.Queries) error {
		if err := q.SetServerPool(ctx, s.ID, p.ID); err != nil {
			return err
		}
		return q.UpdateServerSettings(ctx, s)
	})
	if err != nil {
		return Server{}, &Error{Kind: KindInternal, Msg: "record pool membership", Cause: err}
	}
	m.updateMemberIPs(ctx, p.ID)
	return m.Server(ctx, Ref{ID: s.ID})
}

// updateMemberIPs tells every member of the pool the members' addresses
// (only these may send migrations); a member that does not answer is logged
// and told at the next change.
func (m *Manager) updateMemberIPs(ctx context.Context, poolID string) {
	members, err := m.st.Read().ServersInPool(ctx, poolID)
	if err != nil {
		m.log.Error("read pool members", "pool", poolID, "err", err)
		return
	}
	ips := make([]string, 0, len(members))
	for _, s := range members {
		ips = append(ips, s.Address)
	}
	for _, s := range members {
		c, err := m.clients.get(s)
		if err == nil {
			err = c.SetPoolMemberIPList(ctx, ips)
		}
		if err != nil {
			m.log.Warn("set_pool_member_ip_list failed", "server", s.Name, "err", err)
		}
	}
}

// jobValue unpacks a job's result as T.
func jobValue[T any](v any, err error) (T, error) {
	var zero T
	if err != nil {
		return zero, err
	}
	return v.(T), nil
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
