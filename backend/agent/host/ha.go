package host

import (
	"strings"

	"xenmanager/backend/agent/halease"
	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agentapi"
)

// HAState is the HA configuration of ha_configure, kept in state.json so
// that a restarted agent goes on keeping its leases (and fences first when
// its lease lapsed while it was down).
type HAState struct {
	PoolUUID        string `json:"pool_uuid"`
	RepoUUID        string `json:"repo_uuid"`
	ServerID        string `json:"server_id"`
	RenewIntervalMS int64  `json:"renew_interval_ms"`
	FenceTimeoutMS  int64  `json:"fence_timeout_ms"`
}

func (s HAState) params() agentapi.HAParams {
	return agentapi.HAParams{RenewIntervalMS: s.RenewIntervalMS, FenceTimeoutMS: s.FenceTimeoutMS}
}

// haConfigLocked is the keeper's configuration of s, in the repository as
// this host sees it. h.mu must be held.
func (h *Host) haConfigLocked(s HAState) (halease.Config, error) {
	r, err := h.repoLocked(s.RepoUUID)
	if err != nil {
		return halease.Config{}, err
	}
	return halease.Config{PoolUUID: s.PoolUUID, RepoUUID: s.RepoUUID, ServerID: s.ServerID,
		Root: h.mountPath(r), Params: s.params()}, nil
}

// newHAKeeper makes the host's keeper and, when state.json holds an HA
// configuration, resumes it: this fences before the agent serves when the
// lease lapsed while the agent was down.
func (h *Host) newHAKeeper() {
	var fault func() bool
	if f, ok := h.drv.(hypervisor.LeaseStorageFault); ok {
		fault = f.LeaseStorageFailing
	}
	h.ha = halease.New(halease.Options{Hostname: h.hostname, Host: haHost{h}, Logger: h.log, Fault: fault})
	h.mu.Lock()
	saved := h.state.HA
	var cfg halease.Config
	var err error
	if saved != nil {
		cfg, err = h.haConfigLocked(*saved)
	}
	h.mu.Unlock()
	switch {
	case saved == nil:
	case err != nil:
		h.log.Error("HA configuration saved, but its repository is not known here: no leases are kept", "repository", saved.RepoUUID, "err", err)
	default:
		h.ha.Resume(cfg)
	}
}

// HAConfigure answers ha_configure: this server keeps leases for pool
// poolUUID, as serverID, in repository repoUUID, with params. The
// repository must be known here (NotFound) and writable (the server lease
// is written before the answer; InvalidState otherwise), the server in
// that pool (InvalidState). A new call replaces the settings. The
// configuration is saved in state.json.
func (h *Host) HAConfigure(poolUUID, repoUUID, serverID string, params map[string]any) error {
	p, err := agentapi.ParseHAParams(params)
	if err != nil {
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "%s: %v", agentapi.MethodHAConfigure, err)
	}
	for _, id := range []struct{ kind, v string }{{"pool uuid", poolUUID}, {"repository id", repoUUID}, {"server id", serverID}} {
		if err := checkID(id.kind, id.v); err != nil {
			return err
		}
	}
	h.haMu.Lock()
	defer h.haMu.Unlock()
	want := HAState{PoolUUID: poolUUID, RepoUUID: repoUUID, ServerID: serverID, RenewIntervalMS: p.RenewIntervalMS, FenceTimeoutMS: p.FenceTimeoutMS}
	h.mu.Lock()
	cfg, err := h.haConfigLocked(want)
	inPool := h.state.PoolUUID
	h.mu.Unlock()
	switch {
	case err != nil:
		return err
	case inPool == "":
		return agentapi.Errorf(agentapi.FaultInvalidState, "server %s is in no pool; it keeps HA leases only for the pool it is in", h.hostname)
	case inPool != poolUUID:
		return agentapi.Errorf(agentapi.FaultInvalidState, "server %s is in pool %s, not in pool %s", h.hostname, inPool, poolUUID)
	}
	prev, hadPrev := h.ha.Configured()
	if err := h.ha.Configure(cfg); err != nil {
		return err
	}
	h.mu.Lock()
	old := h.state
	h.state.HA = &want
	err = h.commitLocked(old)
	h.mu.Unlock()
	if err != nil {
		// Not saved: the keeper goes back to what state.json says.
		if !hadPrev || h.ha.Configure(prev) != nil {
			h.ha.Disable()
		}
		return err
	}
	return nil
}

// HADisable answers ha_disable: the keeper stops, this server's lease is
// removed and the VM leases it holds released; true when HA was not
// configured too.
func (h *Host) HADisable() error {
	h.haMu.Lock()
	defer h.haMu.Unlock()
	h.ha.Disable()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state.HA == nil {
		return nil
	}
	old := h.state
	h.state.HA = nil
	return h.commitLocked(old)
}

// haLeftPool disables HA after the server left poolUUID, whose leases it
// kept.
func (h *Host) haLeftPool(poolUUID string) {
	if cfg, ok := h.ha.Configured(); ok && cfg.PoolUUID == poolUUID {
		if err := h.HADisable(); err != nil {
			h.log.Error("HA disabled after leaving the pool, but not saved", "err", err)
		}
	}
}

// HAStatus answers ha_status.
func (h *Host) HAStatus() agentapi.HAStatus { return h.ha.Status() }

// HAReadLeases answers ha_read_leases.
func (h *Host) HAReadLeases(serverIDs []string) ([]agentapi.ServerLease, error) {
	return h.ha.ReadServers(serverIDs)
}

// HAReadVMLeases answers ha_read_vm_leases.
func (h *Host) HAReadVMLeases(vmUUIDs []string) ([]agentapi.VMLease, error) {
	return h.ha.ReadVMs(vmUUIDs)
}

// HAGate runs before every call but get_api_version, echo and ha_status:
// a server whose HA lease lapsed fences before it answers anything else.
func (h *Host) HAGate() { h.ha.Gate() }

// leaseUUID is the uuid a VM's lease is named by: its domain's here, else
// vm.cfg's uuid, else the VM id (as a domain's uuid is).
func (h *Host) leaseUUID(repoID, vmID string) string {
	if d, ok, err := h.drv.Domain(repoID, vmID); err == nil && ok {
		return d.UUID
	}
	if params, err := h.GetVMConfig(repoID, vmID); err == nil {
		if u := params.String(agentapi.KeyUUID); u != "" {
			return u
		}
	}
	return vmID
}

// specUUID is the uuid of the domain spec builds.
func specUUID(spec hypervisor.Spec) string {
	if u := spec.Params.String(agentapi.KeyUUID); u != "" {
		return u
	}
	return spec.VMID
}

// haHost shows the keeper this host's domains, through the driver.
type haHost struct{ h *Host }

func toLeaseDomain(d hypervisor.Domain) halease.Domain {
	return halease.Domain{UUID: d.UUID, RepoID: d.RepoID, VMID: d.VMID, State: d.State}
}

func (x haHost) Domains() ([]halease.Domain, error) {
	doms, err := x.h.drv.DomainVMs()
	if err != nil {
		return nil, err
	}
	out := make([]halease.Domain, len(doms))
	for i, d := range doms {
		out[i] = toLeaseDomain(d)
	}
	return out, nil
}

func (x haHost) Domain(repoID, vmID string) (halease.Domain, bool, error) {
	d, ok, err := x.h.drv.Domain(repoID, vmID)
	if err != nil || !ok {
		return halease.Domain{}, false, err
	}
	return toLeaseDomain(d), true, nil
}

func (x haHost) Destroy(repoID, vmID string) error { return x.h.drv.Stop(repoID, vmID, true) }

func (x haHost) CancelIncoming(repoID, vmID string) {
	if err := x.h.drv.CleanupMigrationTarget(repoID, vmID); err != nil {
		x.h.log.Warn("HA fence: cannot cut an incoming migration", "vm", vmID, "err", err)
	}
}

// IsHA reads vm.cfg's OVM_high_availability (bool True, or a string such
// as "True" or "Yes"); a vm.cfg it cannot read counts as HA, so that a
// fence stops it among the first.
func (x haHost) IsHA(repoID, vmID string) bool {
	params, err := x.h.GetVMConfig(repoID, vmID)
	if err != nil {
		return true
	}
	switch v := params[agentapi.KeyHA].(type) {
	case bool:
		return v
	case string:
		switch strings.ToLower(v) {
		case "true", "yes", "1":
			return true
		}
	}
	return false
}

func (x haHost) Emit(e agentapi.Event) { x.h.events.Emit(e) }
