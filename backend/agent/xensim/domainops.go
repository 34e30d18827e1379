package xensim

import (
	"bytes"
	"maps"
	"path/filepath"
	"strings"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentapi/vmcfg"
)

// ConfigureVM merges params into the VM's vm.cfg; keys not given stay. For
// a domain that holds memory here (running, blocked, paused), memory and
// vcpus given in params change live: within the maxmem and maxvcpus the
// domain started with (else InvalidState, nothing changed), and growing
// memory must fit the free memory (else InsufficientResources).
func (h *Host) ConfigureVM(repoID, vmID string, params agentapi.VMParams) error {
	for _, key := range intKeys {
		if v, present := params[key]; present {
			if n, err := agentapi.ToInt(v); err != nil || n <= 0 {
				return agentapi.Errorf(agentapi.FaultInvalidArgument,
					"VM %s: params.%s must be a positive integer, got %#v", vmID, key, v)
			}
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	dir, err := h.vmDirLocked(repoID, vmID)
	if err != nil {
		return err
	}
	cur, err := readVMConfig(repoID, vmID, dir)
	if err != nil {
		return err
	}
	merged := maps.Clone(cur)
	maps.Copy(merged, params)
	merged = normalizeInts(merged)
	if err := checkVMParams(vmID, merged); err != nil {
		return err
	}
	memory, _ := merged.Int(agentapi.KeyMemory)
	vcpus, _ := merged.Int(agentapi.KeyVCPUs)

	d := h.domains[domainKey(repoID, vmID)]
	live := d != nil && d.holdsMemory()
	if d != nil && d.busy != "" {
		return errBusy(d)
	}
	if err := h.checkNoTargetLocked(repoID, vmID); err != nil {
		return err
	}
	_, setMem := params[agentapi.KeyMemory]
	_, setVCPUs := params[agentapi.KeyVCPUs]
	if live {
		if newUUID, ok := params[agentapi.KeyUUID]; ok && newUUID != d.uuid {
			return agentapi.Errorf(agentapi.FaultInvalidState,
				"VM %s runs as uuid %s; stop it before changing its uuid", vmID, d.uuid)
		}
		if setMem && memory > d.maxMemMiB {
			return agentapi.Errorf(agentapi.FaultInvalidState,
				"VM %s runs with maxmem %d MiB, so its memory cannot grow to %d MiB live; raise maxmem and restart it", vmID, d.maxMemMiB, memory)
		}
		if setVCPUs && vcpus > d.maxVCPUs {
			return agentapi.Errorf(agentapi.FaultInvalidState,
				"VM %s runs with maxvcpus %d, so it cannot get %d vCPUs live; raise maxvcpus and restart it", vmID, d.maxVCPUs, vcpus)
		}
		if setVCPUs && vcpus > h.cpus {
			return agentapi.Errorf(agentapi.FaultInsufficientResources,
				"VM %s cannot get %d vCPUs: server %s has %d CPUs", vmID, vcpus, h.hostname, h.cpus)
		}
		if grow := memory - d.memoryMiB; setMem && grow > 0 {
			if free := h.freeLocked(); grow > free {
				return agentapi.Errorf(agentapi.FaultInsufficientResources,
					"VM %s cannot grow by %d MiB to %d MiB: %d MiB free on server %s", vmID, grow, memory, free, h.hostname)
			}
		}
	}
	if maxMem, ok := merged.Int(agentapi.KeyMaxMem); ok && maxMem < memory {
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "VM %s: maxmem %d MiB is below memory %d MiB", vmID, maxMem, memory)
	}
	if maxVCPUs, ok := merged.Int(agentapi.KeyMaxVCPUs); ok && maxVCPUs < vcpus {
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "VM %s: maxvcpus %d is below vcpus %d", vmID, maxVCPUs, vcpus)
	}
	var cfg bytes.Buffer
	if err := vmcfg.Write(&cfg, merged); err != nil {
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "VM %s: %v", vmID, err)
	}
	path := filepath.Join(dir, vmConfigFile)
	if err := writeFileAtomic(path, cfg.Bytes(), 0o644); err != nil {
		return agentapi.Errorf(agentapi.FaultInternalError, "write %s: %v", path, err)
	}
	if live {
		now := h.now()
		d.settle(now)
		if setMem {
			d.memoryMiB = memory
		}
		if setVCPUs {
			d.vcpus = vcpus
		}
	}
	return nil
}

// ConfigureVMHA sets OVM_high_availability in the VM's vm.cfg.
func (h *Host) ConfigureVMHA(repoID, vmID string, enable bool) error {
	return h.ConfigureVM(repoID, vmID, agentapi.VMParams{agentapi.KeyHA: enable})
}

// RebootVM reboots the domain: the simulated guest shuts down at once (so
// wait, the seconds a real agent would give the guest, only has to be
// non-negative) and a new domain with a new domid boots from the current
// vm.cfg, which must fit in the memory the old one leaves. The domain must
// be running or blocked.
func (h *Host) RebootVM(repoID, vmID string, wait int64) error {
	if wait < 0 {
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "reboot_vm: wait must not be negative, got %d", wait)
	}
	params, memory, vcpus, err := h.bootConfig(repoID, vmID)
	if err != nil {
		return err
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	key := domainKey(repoID, vmID)
	d, err := h.liveDomainLocked(repoID, vmID, "rebooted", agentapi.StateRunning, agentapi.StateBlocked)
	if err != nil {
		return err
	}
	if vcpus > h.cpus {
		return agentapi.Errorf(agentapi.FaultInsufficientResources,
			"VM %s needs %d vCPUs, server %s has %d CPUs", vmID, vcpus, h.hostname, h.cpus)
	}
	if free := h.freeLocked() + d.memoryMiB; memory > free {
		return agentapi.Errorf(agentapi.FaultInsufficientResources,
			"VM %s needs %d MiB to boot again, %d MiB free on server %s", vmID, memory, free, h.hostname)
	}
	h.removeDomainLocked(key)
	h.domains[key] = h.newDomainLocked(repoID, vmID, params, agentapi.StateRunning)
	return nil
}

// PauseVM pauses a running or blocked domain; its CPU clock stops, its
// memory stays held.
func (h *Host) PauseVM(repoID, vmID string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, err := h.liveDomainLocked(repoID, vmID, "paused", agentapi.StateRunning, agentapi.StateBlocked)
	if err != nil {
		return err
	}
	d.setState(agentapi.StatePaused, h.now())
	return nil
}

// UnpauseVM lets a paused domain run again.
func (h *Host) UnpauseVM(repoID, vmID string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, err := h.liveDomainLocked(repoID, vmID, "unpaused", agentapi.StatePaused)
	if err != nil {
		return err
	}
	d.setState(agentapi.StateRunning, h.now())
	return nil
}

// liveDomainLocked returns the domain of the VM when it is in one of
// states and no long operation holds it: NotFound when there is no domain,
// Busy while held, InvalidState in another state (the message says what
// cannot be done: verb). h.mu must be held.
func (h *Host) liveDomainLocked(repoID, vmID, verb string, states ...string) (*domain, error) {
	if err := h.checkVMIDsLocked(repoID, vmID); err != nil {
		return nil, err
	}
	d, ok := h.domains[domainKey(repoID, vmID)]
	if !ok {
		return nil, errNotRunning(repoID, vmID)
	}
	if d.busy != "" {
		return nil, errBusy(d)
	}
	for _, s := range states {
		if d.state == s {
			return d, nil
		}
	}
	return nil, agentapi.Errorf(agentapi.FaultInvalidState,
		"VM %s is %s (domid %d) and cannot be %s; only a %s domain can", vmID, d.state, d.domID, verb, strings.Join(states, " or "))
}
