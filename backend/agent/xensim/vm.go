package xensim

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agentapi"
)

// cpuLoad is the fraction of each vCPU a simulated guest keeps busy, which
// makes cpu_time_s grow with wall time.
const cpuLoad = 0.25

// domain is a live domain on this host. Its fields are guarded by h.mu.
type domain struct {
	repoID, vmID string
	uuid, name   string
	domID        int64
	state        string
	memoryMiB    int64
	vcpus        int64
	maxMemMiB    int64     // the ceiling of live memory changes, fixed at start
	maxVCPUs     int64     // the ceiling of live vCPU changes, fixed at start
	cpuTime      float64   // CPU seconds used before since
	runTime      float64   // seconds spent running before since
	since        time.Time // when the domain last began running
	booted       time.Time // when the guest last booted (start, reboot), for its uptime
	diskMiB      int64     // total size of its disk images at start, for guest statistics
	osType       string    // vm.cfg's OVM_os_type when it booted, for its console's banner
	// onCrash is vm.cfg's on_crash when it booted (an agentapi.Crash*
	// action, "" for Xen's default, destroy): what a crash does to it.
	onCrash string
	// pages is the simulated memory, one version counter per 4 KiB page
	// (see migrate.go); nil until the domain first migrates, which means
	// every page is at version 0.
	pages []uint64
	// busy is the progress key of the long operation (save, migrate) that holds the
	// domain; other changes are Busy meanwhile.
	busy string
	// gone is closed when the domain ends (stop, reboot, shutdown, host
	// reboot), so that console sessions attached to it end too.
	gone chan struct{}
}

// holdsMemory reports whether the domain counts against the host's free
// memory.
func (d *domain) holdsMemory() bool { return hypervisor.HoldsMemory(d.state) }

func (d *domain) cpuTimeAt(now time.Time) float64 {
	if d.state != agentapi.StateRunning {
		return d.cpuTime
	}
	return d.cpuTime + now.Sub(d.since).Seconds()*float64(d.vcpus)*cpuLoad
}

// runTimeAt is the seconds the domain has spent running since it booted;
// the simulated I/O counters grow with it.
func (d *domain) runTimeAt(now time.Time) float64 {
	if d.state != agentapi.StateRunning {
		return d.runTime
	}
	return d.runTime + now.Sub(d.since).Seconds()
}

// settle folds the time since the last change into the clocks, before a
// change of state or of vCPUs.
func (d *domain) settle(now time.Time) {
	d.cpuTime = d.cpuTimeAt(now)
	d.runTime = d.runTimeAt(now)
	d.since = now
}

// setState changes the state, freezing or resuming the CPU clock.
func (d *domain) setState(state string, now time.Time) {
	d.settle(now)
	d.state = state
}

func (d *domain) info(now time.Time) agentapi.Domain {
	return agentapi.Domain{
		UUID:      d.uuid,
		Name:      d.name,
		DomID:     d.domID,
		State:     d.state,
		MemoryMiB: d.memoryMiB,
		VCPUs:     d.vcpus,
		CPUTimeS:  d.cpuTimeAt(now),
		RepoID:    d.repoID,
	}
}

func domainKey(repoID, vmID string) string { return repoID + "/" + vmID }

// Start starts a domain from the VM's vm.cfg. A crashed domain of the VM
// (on_crash preserve) is destroyed first, as xl would be asked to; another
// domain of it is InvalidState. InsufficientResources when its memory or
// vCPUs do not fit; InvalidArgument for an on_crash that is no action.
func (h *Sim) Start(spec hypervisor.Spec) error {
	repoID, vmID := spec.RepoID, spec.VMID
	memory, vcpus := specSize(spec)
	if err := checkCrashAction(spec.Params); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	key := domainKey(repoID, vmID)
	if d, ok := h.domains[key]; ok && (d.state != agentapi.StateCrashed || d.busy != "") {
		return agentapi.Errorf(agentapi.FaultInvalidState,
			"VM %s is already %s on this server (domid %d)", vmID, d.state, d.domID)
	}
	if err := h.checkNoTargetLocked(repoID, vmID); err != nil {
		return err
	}
	if vcpus > h.cpus {
		return agentapi.Errorf(agentapi.FaultInsufficientResources,
			"VM %s needs %d vCPUs, server %s has %d CPUs", vmID, vcpus, h.hostname, h.cpus)
	}
	if free := h.freeLocked(); memory > free {
		return agentapi.Errorf(agentapi.FaultInsufficientResources,
			"VM %s needs %d MiB, %d MiB free on server %s", vmID, memory, free, h.hostname)
	}
	h.removeDomainLocked(key) // a crashed domain, which held no memory
	h.domains[key] = h.newDomainLocked(spec, agentapi.StateRunning)
	return nil
}

// checkCrashAction refuses a vm.cfg whose on_crash is not one of xl's
// actions, as xl refuses to create such a domain.
func checkCrashAction(p agentapi.VMParams) error {
	v, ok := p[agentapi.KeyOnCrash]
	if !ok {
		return nil
	}
	if s, _ := v.(string); slices.Contains(agentapi.CrashActions, s) {
		return nil
	}
	return agentapi.Errorf(agentapi.FaultInvalidArgument, "%s %#v is not an action (accepted: %s)",
		agentapi.KeyOnCrash, v, strings.Join(agentapi.CrashActions, ", "))
}

// specSize is the memory (MiB) and vCPUs of the checked vm.cfg of spec.
func specSize(spec hypervisor.Spec) (memory, vcpus int64) {
	memory, _ = spec.Params.Int(agentapi.KeyMemory)
	vcpus, _ = spec.Params.Int(agentapi.KeyVCPUs)
	return memory, vcpus
}

// newDomainLocked builds a domain of the VM from its vm.cfg, with the next
// domid; the caller has checked that memory and vCPUs fit. h.mu must be
// held.
func (h *Sim) newDomainLocked(spec hypervisor.Spec, state string) *domain {
	repoID, vmID, params := spec.RepoID, spec.VMID, spec.Params
	memory, vcpus := specSize(spec)
	now := h.now()
	d := &domain{
		repoID:    repoID,
		vmID:      vmID,
		uuid:      params.String(agentapi.KeyUUID),
		name:      params.String(agentapi.KeyName),
		domID:     h.nextDomID,
		state:     state,
		memoryMiB: memory,
		vcpus:     vcpus,
		maxMemMiB: max(memory, intOr(params, agentapi.KeyMaxMem, 0)),
		maxVCPUs:  max(vcpus, intOr(params, agentapi.KeyMaxVCPUs, 0)),
		since:     now,
		booted:    now,
		diskMiB:   spec.DiskMiB,
		osType:    bannerText(params.String(agentapi.KeyOSType)),
		onCrash:   params.String(agentapi.KeyOnCrash),
		gone:      make(chan struct{}),
	}
	if d.uuid == "" {
		d.uuid = vmID
	}
	if d.name == "" {
		d.name = vmID
	}
	h.nextDomID++
	return d
}

// intOr returns the integer value of key, or def when it is absent or not
// an integer.
func intOr(p agentapi.VMParams, key string, def int64) int64 {
	if n, ok := p.Int(key); ok {
		return n
	}
	return def
}

// removeDomainLocked ends the domain at key, if any. h.mu must be held.
func (h *Sim) removeDomainLocked(key string) {
	if d, ok := h.domains[key]; ok {
		close(d.gone)
		delete(h.domains, key)
	}
}

// errBusy is the fault for a change of a domain that a long operation holds.
func errBusy(d *domain) error {
	return agentapi.Errorf(agentapi.FaultBusy,
		"VM %s is busy with operation %s; wait for it to end (get_operation_progress %q tells how far it is)", d.vmID, d.busy, d.busy)
}

// Stop ends the domain: a clean shutdown, or a destroy when force; the
// simulated guest complies at once either way.
func (h *Sim) Stop(repoID, vmID string, force bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := domainKey(repoID, vmID)
	d, ok := h.domains[key]
	if !ok {
		return hypervisor.ErrNotRunning(repoID, vmID)
	}
	if d.busy != "" {
		return errBusy(d)
	}
	h.removeDomainLocked(key)
	return nil
}

// Domains describes the live domains, by domid.
func (h *Sim) Domains() ([]agentapi.Domain, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	// The domains are put in order first and described after: sorting
	// the descriptions themselves moved 96-byte structs of four strings
	// around, a third of list_vms's CPU in the agent with 20 domains.
	live := make([]*domain, 0, len(h.domains))
	for _, d := range h.domains {
		live = append(live, d)
	}
	slices.SortFunc(live, func(a, b *domain) int { return cmp.Compare(a.domID, b.domID) })
	out := make([]agentapi.Domain, len(live))
	for i, d := range live {
		out[i] = d.info(now)
	}
	return out, nil
}

// DomainVMs describes the live domains with their VMs, in no order.
func (h *Sim) DomainVMs() ([]hypervisor.Domain, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	out := make([]hypervisor.Domain, 0, len(h.domains))
	for _, d := range h.domains {
		out = append(out, hypervisor.Domain{Domain: d.info(now), VMID: d.vmID})
	}
	return out, nil
}

// Domain describes the VM's live domain.
func (h *Sim) Domain(repoID, vmID string) (hypervisor.Domain, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, ok := h.domains[domainKey(repoID, vmID)]
	if !ok {
		return hypervisor.Domain{}, false, nil
	}
	return hypervisor.Domain{Domain: d.info(h.now()), VMID: d.vmID}, true, nil
}
