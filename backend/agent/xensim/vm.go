package xensim

import (
	"bytes"
	"cmp"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentapi/vmcfg"
)

// cpuLoad is the fraction of each vCPU a simulated guest keeps busy, which
// makes cpu_time_s grow with wall time.
const cpuLoad = 0.25

// vmConfigFile is the name of a VM's configuration in its directory.
const vmConfigFile = "vm.cfg"

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
func (d *domain) holdsMemory() bool {
	switch d.state {
	case agentapi.StateRunning, agentapi.StateBlocked, agentapi.StatePaused:
		return true
	}
	return false
}

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

// vmDirLocked checks the ids and returns the VM's directory as this host
// sees it. h.mu must be held.
func (h *Host) vmDirLocked(repoID, vmID string) (string, error) {
	r, err := h.repoLocked(repoID)
	if err != nil {
		return "", err
	}
	if err := checkID("VM id", vmID); err != nil {
		return "", err
	}
	return filepath.Join(h.mountPath(r), DirVMs, vmID), nil
}

// CreateVM writes the VM's vm.cfg in the repository. params must hold
// integer memory (MiB) and vcpus; an existing VM is InvalidState.
func (h *Host) CreateVM(repoID, vmID string, params agentapi.VMParams) error {
	if err := checkID("VM id", vmID); err != nil {
		return err
	}
	if err := checkVMParams(vmID, params); err != nil {
		return err
	}
	params = normalizeInts(params)
	var cfg bytes.Buffer
	if err := vmcfg.Write(&cfg, params); err != nil {
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "VM %s: %v", vmID, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	dir, err := h.vmDirLocked(repoID, vmID)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, vmConfigFile)
	if _, err := os.Stat(path); err == nil {
		return agentapi.Errorf(agentapi.FaultInvalidState,
			"VM %s already exists in repository %s; delete it first or use another id", vmID, repoID)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return agentapi.Errorf(agentapi.FaultInternalError, "create VM directory %s: %v", dir, err)
	}
	if err := writeFileAtomic(path, cfg.Bytes(), 0o644); err != nil {
		return agentapi.Errorf(agentapi.FaultInternalError, "write %s: %v", path, err)
	}
	return nil
}

func checkVMParams(vmID string, params agentapi.VMParams) error {
	for _, key := range []string{agentapi.KeyMemory, agentapi.KeyVCPUs} {
		n, ok := params.Int(key)
		if !ok || n <= 0 {
			return agentapi.Errorf(agentapi.FaultInvalidArgument,
				"VM %s: params.%s must be a positive integer, got %#v", vmID, key, params[key])
		}
	}
	return nil
}

// intKeys are the vm.cfg keys Xen reads as integers.
var intKeys = []string{agentapi.KeyMemory, agentapi.KeyMaxMem, agentapi.KeyVCPUs, agentapi.KeyMaxVCPUs}

// normalizeInts returns a copy of params whose integer keys, which the
// protocol lets travel as decimal strings, are int64, so that vm.cfg says
// `memory = 2048` as Xen expects, not `memory = '2048'`.
func normalizeInts(params agentapi.VMParams) agentapi.VMParams {
	out := make(agentapi.VMParams, len(params))
	for k, v := range params {
		out[k] = v
	}
	for _, k := range intKeys {
		if n, ok := params.Int(k); ok {
			out[k] = n
		}
	}
	return out
}

// GetVMConfig reads the VM's vm.cfg back.
func (h *Host) GetVMConfig(repoID, vmID string) (agentapi.VMParams, error) {
	h.mu.Lock()
	dir, err := h.vmDirLocked(repoID, vmID)
	h.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return readVMConfig(repoID, vmID, dir)
}

// bootConfig reads the VM's vm.cfg for a domain to be built from it (a
// start, a reboot, an incoming migration): checked, with its memory and
// vCPUs. A vm.cfg that does not pass the checks is InvalidState.
func (h *Host) bootConfig(repoID, vmID string) (params agentapi.VMParams, memory, vcpus int64, err error) {
	params, err = h.GetVMConfig(repoID, vmID)
	if err != nil {
		return nil, 0, 0, err
	}
	if err := checkVMParams(vmID, params); err != nil {
		return nil, 0, 0, agentapi.Errorf(agentapi.FaultInvalidState, "vm.cfg of %s", err.(*agentapi.Fault).Message)
	}
	memory, _ = params.Int(agentapi.KeyMemory)
	vcpus, _ = params.Int(agentapi.KeyVCPUs)
	return params, memory, vcpus, nil
}

func readVMConfig(repoID, vmID, dir string) (agentapi.VMParams, error) {
	data, err := os.ReadFile(filepath.Join(dir, vmConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, agentapi.Errorf(agentapi.FaultNotFound, "VM %s not found in repository %s", vmID, repoID)
	}
	if err != nil {
		return nil, agentapi.Errorf(agentapi.FaultInternalError, "read vm.cfg of VM %s: %v", vmID, err)
	}
	params, err := vmcfg.Parse(data)
	if err != nil {
		return nil, agentapi.Errorf(agentapi.FaultInternalError,
			"vm.cfg of VM %s in repository %s is unreadable (%v); fix the file", vmID, repoID, err)
	}
	return params, nil
}

// StartVM starts a domain from the VM's vm.cfg, read from the repository so
// that any server sharing it can start the VM. InvalidState when it already
// runs here; InsufficientResources when its memory or vCPUs do not fit.
func (h *Host) StartVM(repoID, vmID string) error {
	params, memory, vcpus, err := h.bootConfig(repoID, vmID)
	if err != nil {
		return err
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	key := domainKey(repoID, vmID)
	if d, ok := h.domains[key]; ok {
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
	h.domains[key] = h.newDomainLocked(repoID, vmID, params, agentapi.StateRunning)
	return nil
}

// newDomainLocked builds a domain of the VM from its vm.cfg params, with the
// next domid; the caller has checked that memory and vCPUs fit. h.mu must
// be held.
func (h *Host) newDomainLocked(repoID, vmID string, params agentapi.VMParams, state string) *domain {
	memory, _ := params.Int(agentapi.KeyMemory)
	vcpus, _ := params.Int(agentapi.KeyVCPUs)
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
		diskMiB:   h.diskImagesMiB(params),
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
func (h *Host) removeDomainLocked(key string) {
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

// StopVM ends the domain: a clean shutdown, or a destroy when force; the
// simulated guest complies at once either way.
func (h *Host) StopVM(repoID, vmID string, force bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.checkVMIDsLocked(repoID, vmID); err != nil {
		return err
	}
	key := domainKey(repoID, vmID)
	d, ok := h.domains[key]
	if !ok {
		return errNotRunning(repoID, vmID)
	}
	if d.busy != "" {
		return errBusy(d)
	}
	h.removeDomainLocked(key)
	return nil
}

// checkVMIDsLocked validates the ids; the repository need not be known, so
// that a domain can be stopped after its repository went away.
func (h *Host) checkVMIDsLocked(repoID, vmID string) error {
	if err := checkID("repository id", repoID); err != nil {
		return err
	}
	return checkID("VM id", vmID)
}

func errNotRunning(repoID, vmID string) error {
	return agentapi.Errorf(agentapi.FaultNotFound, "VM %s of repository %s is not running on this server", vmID, repoID)
}

// DeleteVM removes the VM's directory; InvalidState while it runs here.
func (h *Host) DeleteVM(repoID, vmID string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	dir, err := h.vmDirLocked(repoID, vmID)
	if err != nil {
		return err
	}
	if d, ok := h.domains[domainKey(repoID, vmID)]; ok {
		return agentapi.Errorf(agentapi.FaultInvalidState,
			"VM %s is %s on this server (domid %d); stop it first", vmID, d.state, d.domID)
	}
	if err := h.checkNoTargetLocked(repoID, vmID); err != nil {
		return err
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return agentapi.Errorf(agentapi.FaultNotFound, "VM %s not found in repository %s", vmID, repoID)
	}
	if err := os.RemoveAll(dir); err != nil {
		return agentapi.Errorf(agentapi.FaultInternalError, "remove VM directory %s: %v", dir, err)
	}
	return nil
}

// ListVMs describes the live domains, by domid.
func (h *Host) ListVMs() []agentapi.Domain {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	out := make([]agentapi.Domain, 0, len(h.domains))
	for _, d := range h.domains {
		out = append(out, d.info(now))
	}
	slices.SortFunc(out, func(a, b agentapi.Domain) int { return cmp.Compare(a.DomID, b.DomID) })
	return out
}

// ListVM describes one live domain; NotFound when the VM is not a domain
// here.
func (h *Host) ListVM(repoID, vmID string) (agentapi.Domain, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.checkVMIDsLocked(repoID, vmID); err != nil {
		return agentapi.Domain{}, err
	}
	d, ok := h.domains[domainKey(repoID, vmID)]
	if !ok {
		return agentapi.Domain{}, errNotRunning(repoID, vmID)
	}
	return d.info(h.now()), nil
}
