package xensim

import (
	"strings"

	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agentapi"
)

// Configure applies a configure_vm change to the VM's domain, if any,
// around write (see hypervisor.Driver.Configure). For a domain that holds
// memory here (running, blocked, paused), memory and vcpus change live:
// within the maxmem and maxvcpus the domain started with (else
// InvalidState, nothing changed), and growing memory must fit the free
// memory (else InsufficientResources); its uuid cannot change.
func (h *Sim) Configure(repoID, vmID string, change hypervisor.Change, write func() error) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	d := h.domains[domainKey(repoID, vmID)]
	live := d != nil && d.holdsMemory()
	if d != nil && d.busy != "" {
		return errBusy(d)
	}
	if err := h.checkNoTargetLocked(repoID, vmID); err != nil {
		return err
	}
	memory, vcpus := change.MemoryMiB, change.VCPUs
	setMem, setVCPUs := change.SetMemory, change.SetVCPUs
	if live {
		if change.SetUUID && change.UUID != d.uuid {
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
	if err := write(); err != nil {
		return err
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

// Reboot reboots the domain: the simulated guest shuts down at once (so
// wait, the seconds a real agent would give the guest, only has to be
// non-negative) and a new domain with a new domid boots from the current
// vm.cfg, which must fit in the memory the old one leaves. The domain must
// be running or blocked.
func (h *Sim) Reboot(spec hypervisor.Spec, wait int64) error {
	repoID, vmID := spec.RepoID, spec.VMID
	memory, vcpus := specSize(spec)
	if err := checkCrashAction(spec.Params); err != nil {
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
	h.domains[key] = h.newDomainLocked(spec, agentapi.StateRunning)
	return nil
}

// Pause pauses a running or blocked domain; its CPU clock stops, its
// memory stays held.
func (h *Sim) Pause(repoID, vmID string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, err := h.liveDomainLocked(repoID, vmID, "paused", agentapi.StateRunning, agentapi.StateBlocked)
	if err != nil {
		return err
	}
	d.setState(agentapi.StatePaused, h.now())
	return nil
}

// Unpause lets a paused domain run again.
func (h *Sim) Unpause(repoID, vmID string) error {
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
func (h *Sim) liveDomainLocked(repoID, vmID, verb string, states ...string) (*domain, error) {
	d, ok := h.domains[domainKey(repoID, vmID)]
	if !ok {
		return nil, hypervisor.ErrNotRunning(repoID, vmID)
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
