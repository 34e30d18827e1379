package host

import (
	"slices"
	"strings"

	"xenmanager/backend/agentapi"
)

// APIVersion answers get_api_version, with the extensions a manager asks
// about before it relies on them.
func (h *Host) APIVersion() agentapi.VersionInfo {
	return agentapi.VersionInfo{APIVersion: agentapi.APIVersion, AgentVersion: AgentVersion,
		Extensions: []string{agentapi.ExtImportAllowedNetworks, agentapi.ExtHALeases, agentapi.ExtTemplates,
			agentapi.ExtEventsWait}}
}

// DiscoverServer answers discover_server; address is the address the caller
// reached this server at, which the host itself cannot know. The
// hypervisor's type and version are the driver's, so that a manager can
// tell a simulated host from a real one and keep pools of one kind.
func (h *Host) DiscoverServer(address string) agentapi.ServerInfo {
	kind, version := h.drv.Hypervisor()
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.state
	master := h.isMasterLocked()
	roles := slices.Clone(h.rolesLocked())
	if master {
		roles = append(roles, agentapi.RoleMaster)
	}
	membership := agentapi.MembershipUnowned
	switch {
	case st.PoolUUID != "":
		membership = agentapi.MembershipPooled
	case st.ManagerUUID != "":
		membership = agentapi.MembershipOwned
	}
	return agentapi.ServerInfo{
		Hostname:          h.hostname,
		UniqueID:          st.UniqueID,
		Address:           address,
		OVMVersion:        OVMVersion,
		AgentVersion:      AgentVersion,
		ServerRoles:       roles,
		IsCurrentMaster:   master,
		PoolUniqueID:      st.PoolUUID,
		ManagerUniqueID:   st.ManagerUUID,
		MembershipState:   membership,
		HypervisorType:    kind,
		HypervisorVersion: version,
	}
}

// TakeOwnership records managerUUID as the owner; NotOwner when another
// manager owns the server. Taking it again by the same owner updates the
// name.
func (h *Host) TakeOwnership(managerUUID, managerName string) error {
	if managerUUID == "" {
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "manager_uuid is empty")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if owner := h.state.ManagerUUID; owner != "" && owner != managerUUID {
		return agentapi.Errorf(agentapi.FaultNotOwner,
			"server %s is owned by manager %q (%s); release it from that manager first", h.hostname, h.state.ManagerName, owner)
	}
	old := h.state
	h.state.ManagerUUID, h.state.ManagerName = managerUUID, managerName
	if err := h.saveLocked(); err != nil {
		h.state = old
		return agentapi.Errorf(agentapi.FaultInternalError, "%v", err)
	}
	return nil
}

// ReleaseOwnership clears the owner; NotOwner when another manager owns the
// server. Releasing an unowned server succeeds, so that a retried release
// does not fail.
func (h *Host) ReleaseOwnership(managerUUID string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	owner := h.state.ManagerUUID
	if owner == "" {
		return nil
	}
	if owner != managerUUID {
		return agentapi.Errorf(agentapi.FaultNotOwner,
			"server %s is owned by manager %q (%s), not by %s", h.hostname, h.state.ManagerName, owner, managerUUID)
	}
	old := h.state
	h.state.ManagerUUID, h.state.ManagerName = "", ""
	if err := h.saveLocked(); err != nil {
		h.state = old
		return agentapi.Errorf(agentapi.FaultInternalError, "%v", err)
	}
	return nil
}

// Owner returns the owning manager's uuid and name ("" when unowned).
func (h *Host) Owner() (uuid, name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state.ManagerUUID, h.state.ManagerName
}

// Repositories returns the known repositories, sorted by uuid.
func (h *Host) Repositories() []RepoState {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]RepoState, 0, len(h.state.Repositories))
	for _, r := range h.state.Repositories {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b RepoState) int { return strings.Compare(a.UUID, b.UUID) })
	return out
}
