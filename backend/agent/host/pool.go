package host

import (
	"cmp"
	"net"
	"slices"
	"strings"

	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agentapi"
)

// defaultRoles are the roles of a server nobody has set roles on.
var defaultRoles = []string{agentapi.RoleXen, agentapi.RoleUtility}

// CreateServerPool makes this server the first server, and master, of a
// pool. Creating the pool it already masters again succeeds (a retried
// call); a server in another pool, or a member of this one, is InvalidState.
func (h *Host) CreateServerPool(req agentapi.PoolParams) error {
	return h.enterPool(req, true)
}

// JoinServerPool makes this server a member of a pool. Joining the pool it
// is already a member of succeeds; a server in another pool, or the master
// of this one, is InvalidState.
func (h *Host) JoinServerPool(req agentapi.PoolParams) error {
	return h.enterPool(req, false)
}

func (h *Host) enterPool(req agentapi.PoolParams, master bool) error {
	if err := checkID("pool uuid", req.PoolUUID); err != nil {
		return err
	}
	if strings.ContainsAny(req.Alias, "\n\r\x00") || len(req.Alias) > 256 {
		return agentapi.Errorf(agentapi.FaultInvalidArgument,
			"pool alias %q is not valid: use at most 256 characters and no line breaks", req.Alias)
	}
	if req.VIP != "" && net.ParseIP(req.VIP) == nil {
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "pool virtual IP %q is not an IP address", req.VIP)
	}
	if req.Num < 0 {
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "num must not be negative, got %d", req.Num)
	}
	var roles []string
	if req.Roles != "" {
		var err error
		if roles, err = parseRoles(req.Roles); err != nil {
			return err
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.state
	if st.PoolUUID != "" {
		if st.PoolUUID != req.PoolUUID {
			return agentapi.Errorf(agentapi.FaultInvalidState,
				"server %s is already in pool %s (%q); leave_server_pool it first", h.hostname, st.PoolUUID, st.PoolAlias)
		}
		if was := h.isMasterLocked(); was != master {
			what := "a member"
			if was {
				what = "the master"
			}
			return agentapi.Errorf(agentapi.FaultInvalidState,
				"server %s is already %s of pool %s; leave_server_pool it first to change its part", h.hostname, what, st.PoolUUID)
		}
	}
	old := h.state
	h.state.PoolUUID, h.state.PoolAlias, h.state.PoolVIP, h.state.PoolNum = req.PoolUUID, req.Alias, req.VIP, req.Num
	h.state.PoolMaster = ""
	if master {
		h.state.PoolMaster = h.hostname
	}
	if len(h.state.PoolMembers) == 0 {
		self := cmp.Or(req.Host, req.Name, h.hostname)
		h.state.PoolMembers = []string{self}
	}
	if roles != nil {
		h.state.Roles = roles
	}
	return h.commitLocked(old)
}

// commitLocked saves the state, or puts old back when that fails. h.mu must
// be held.
func (h *Host) commitLocked(old persistentState) error {
	if err := h.saveLocked(); err != nil {
		h.state = old
		return agentapi.Errorf(agentapi.FaultInternalError, "%v", err)
	}
	return nil
}

// LeaveServerPool takes this server out of poolUUID. NotFound when it is in
// no pool, InvalidState when it is in another one or while domains run
// (running, blocked or paused: their memory would be lost to the pool).
// The HA leases kept for that pool, if any, are given up (ha_disable).
func (h *Host) LeaveServerPool(poolUUID string) error {
	if err := h.leaveServerPool(poolUUID); err != nil {
		return err
	}
	h.haLeftPool(poolUUID)
	return nil
}

func (h *Host) leaveServerPool(poolUUID string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.state
	switch {
	case st.PoolUUID == "":
		return agentapi.Errorf(agentapi.FaultNotFound, "server %s is in no pool", h.hostname)
	case st.PoolUUID != poolUUID:
		return agentapi.Errorf(agentapi.FaultInvalidState,
			"server %s is in pool %s (%q), not in %s", h.hostname, st.PoolUUID, st.PoolAlias, poolUUID)
	}
	var running []string
	doms, err := h.drv.DomainVMs()
	if err != nil {
		return err
	}
	for _, d := range doms {
		if hypervisor.HoldsMemory(d.State) {
			running = append(running, d.VMID)
		}
	}
	if len(running) > 0 {
		slices.Sort(running)
		return agentapi.Errorf(agentapi.FaultInvalidState,
			"%d domains run on server %s (%s); stop or migrate them before leaving pool %s",
			len(running), h.hostname, strings.Join(running, ", "), poolUUID)
	}
	old := h.state
	h.state.PoolUUID, h.state.PoolAlias, h.state.PoolMaster, h.state.PoolVIP, h.state.PoolNum = "", "", "", "", 0
	h.state.PoolMembers = nil
	return h.commitLocked(old)
}

// DiscoverServerPool answers discover_server_pool: the pool this server is
// in, the master's hostname when this server is the master (a member is not
// told who the master is, so it says ""), and the members the pool calls
// named; the protocol's empty shape when in no pool.
func (h *Host) DiscoverServerPool() agentapi.PoolInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.state
	if st.PoolUUID == "" {
		return agentapi.PoolInfo{Members: []string{}}
	}
	members := slices.Clone(st.PoolMembers)
	if members == nil {
		members = []string{}
	}
	return agentapi.PoolInfo{PoolUUID: st.PoolUUID, Alias: st.PoolAlias, Master: st.PoolMaster, Members: members}
}

// SetPoolMemberIPList replaces the pool's member list (host names or
// addresses), the servers allowed to send migrations here. Duplicates are
// dropped, order kept.
func (h *Host) SetPoolMemberIPList(ips []string) error {
	var members []string
	for _, ip := range ips {
		ip = strings.TrimSpace(ip)
		if !validHostOrIP(ip) {
			return agentapi.Errorf(agentapi.FaultInvalidArgument,
				"pool member %q is not an IP address or host name", ip)
		}
		if !slices.Contains(members, ip) {
			members = append(members, ip)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.state
	h.state.PoolMembers = members
	return h.commitLocked(old)
}

// PoolMembers returns the member list set by the pool calls.
func (h *Host) PoolMembers() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.state.PoolMembers)
}

// validHostOrIP accepts an IP address or a DNS name of letters, digits, '-'
// and '.'.
func validHostOrIP(s string) bool {
	if net.ParseIP(s) != nil {
		return true
	}
	if s == "" || len(s) > 253 || s[0] == '-' || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// UpdateServerRoles sets the server's roles from "xen,utility" or a part of
// it.
func (h *Host) UpdateServerRoles(roles string) error {
	parsed, err := parseRoles(roles)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.state
	h.state.Roles = parsed
	return h.commitLocked(old)
}

// parseRoles checks a comma-separated role list and returns it in the
// canonical order (xen, utility), without duplicates.
func parseRoles(s string) ([]string, error) {
	seen := map[string]bool{}
	for _, r := range strings.Split(s, ",") {
		r = strings.ToLower(strings.TrimSpace(r))
		switch r {
		case "":
		case agentapi.RoleXen, agentapi.RoleUtility:
			seen[r] = true
		case agentapi.RoleMaster:
			return nil, agentapi.Errorf(agentapi.FaultInvalidArgument,
				"roles %q: master is not set but follows from create_server_pool; use xen and/or utility", s)
		default:
			return nil, agentapi.Errorf(agentapi.FaultInvalidArgument,
				"roles %q: unknown role %q; use xen and/or utility, comma-separated, e.g. \"xen,utility\"", s, r)
		}
	}
	var out []string
	for _, r := range defaultRoles {
		if seen[r] {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, agentapi.Errorf(agentapi.FaultInvalidArgument,
			"roles %q names no role; use xen and/or utility, e.g. \"xen,utility\"", s)
	}
	return out, nil
}

// rolesLocked returns the server's roles, without master. h.mu must be held.
func (h *Host) rolesLocked() []string {
	if h.state.Roles == nil {
		return defaultRoles
	}
	return h.state.Roles
}

// isMasterLocked reports whether this server is the master of its pool.
// h.mu must be held.
func (h *Host) isMasterLocked() bool {
	return h.state.PoolUUID != "" && h.state.PoolMaster == h.hostname
}
