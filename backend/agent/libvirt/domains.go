package libvirt

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agentapi"
)

// Files the driver keeps beside a VM's vm.cfg.
const (
	// saveFile holds a suspended VM's state, as the simulated host names
	// it, so a VM saved on one server of a pool resumes on another.
	saveFile = "save.img"
	// consoleLogFile holds what the VM's serial console printed (QEMU), so
	// that a console attached late shows what came before.
	consoleLogFile = "console.log"
)

// stateOf maps libvirt's domain state to the protocol's.
func stateOf(s golibvirt.DomainState) string {
	switch s {
	case golibvirt.DomainBlocked:
		return agentapi.StateBlocked
	case golibvirt.DomainPaused, golibvirt.DomainPmsuspended:
		return agentapi.StatePaused
	case golibvirt.DomainCrashed:
		return agentapi.StateCrashed
	case golibvirt.DomainShutoff:
		return agentapi.StateShutdown
	}
	// Running, and a guest shutting down (still holding its memory).
	return agentapi.StateRunning
}

// lookup finds the domain of a VM: NotFound when there is none, or when
// the domain of that name runs another repository's VM.
func (d *Driver) lookup(l *golibvirt.Libvirt, repoID, vmID string) (golibvirt.Domain, vmMeta, error) {
	dom, err := l.DomainLookupByName(domainName(vmID))
	if err != nil {
		if isNoDomain(err) {
			return dom, vmMeta{}, hypervisor.ErrNotRunning(repoID, vmID)
		}
		return dom, vmMeta{}, err
	}
	meta, ok := d.metaFor(l, dom)
	if !ok || meta.Repo != repoID || meta.VM != vmID {
		return dom, vmMeta{}, hypervisor.ErrNotRunning(repoID, vmID)
	}
	return dom, meta, nil
}

// metaFor is the VM a domain runs, from the driver's memory or else from
// the domain's metadata; ok is false for a domain this driver did not
// make (reported once in the log, never touched).
func (d *Driver) metaFor(l *golibvirt.Libvirt, dom golibvirt.Domain) (vmMeta, bool) {
	d.mu.Lock()
	meta, ok := d.known[dom.Name]
	foreign := d.foreign[dom.Name]
	d.mu.Unlock()
	if ok {
		return meta, true
	}
	if foreign || dom.ID == 0 && d.kind == hypervisor.TypeXen {
		return vmMeta{}, false // Domain-0 is the host, not a VM
	}
	x, err := l.DomainGetXMLDesc(dom, 0)
	if err != nil {
		return vmMeta{}, false
	}
	meta, ok = metaOf(x)
	d.mu.Lock()
	defer d.mu.Unlock()
	if !ok {
		if !d.foreign[dom.Name] {
			d.foreign[dom.Name] = true
			d.log.Warn("a domain not made by this agent runs on this host; it is not listed and never touched", "domain", dom.Name)
		}
		return vmMeta{}, false
	}
	d.known[dom.Name] = meta
	return meta, true
}

// remember records the VM a domain the driver just made runs.
func (d *Driver) remember(name string, meta vmMeta) {
	d.mu.Lock()
	d.known[name] = meta
	delete(d.foreign, name)
	d.ends.newRun(name)
	d.mu.Unlock()
}

// expectEnd marks the stop of a domain's current run as the driver's own
// doing, with the reason its event would give; false when it already was.
func (d *Driver) expectEnd(name, why string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ends.expect(name, why)
}

// forgetEnd withdraws expectEnd after the call that would have ended the
// domain failed.
func (d *Driver) forgetEnd(name string) {
	d.mu.Lock()
	d.ends.withdraw(name)
	d.mu.Unlock()
}

// Hardware answers discover_hardware from the node's description.
func (d *Driver) Hardware() (agentapi.Hardware, error) {
	hw := agentapi.Hardware{Manufacturer: "libvirt", Product: d.kind + " host"}
	err := d.do("read the node's hardware", func(l *golibvirt.Libvirt) error {
		model, memKiB, cpus, mhz, nodes, sockets, cores, threads, err := l.NodeGetInfo()
		if err != nil {
			return err
		}
		hw.CPUModel = cString(model[:])
		hw.CPUSockets = int64(max(nodes, 1) * max(sockets, 1))
		hw.CoresPerSocket = int64(max(cores, 1))
		hw.ThreadsPerCore = int64(max(threads, 1))
		if got := hw.CPUSockets * hw.CoresPerSocket * hw.ThreadsPerCore; got != int64(cpus) && cpus > 0 {
			// The topology does not add up (offline CPUs): trust the count.
			hw.CPUSockets, hw.CoresPerSocket, hw.ThreadsPerCore = 1, int64(cpus), 1
		}
		hw.CPUKHz = int64(mhz) * 1000
		hw.TotalMemoryMiB = int64(memKiB >> 10)
		if d.kind == hypervisor.TypeXen {
			if dom0, err := l.DomainLookupByID(0); err == nil {
				if _, _, mem, _, _, err := l.DomainGetInfo(dom0); err == nil {
					hw.Dom0MemoryMiB = int64(mem >> 10)
				}
			}
		}
		return nil
	})
	if err != nil {
		return agentapi.Hardware{}, err
	}
	hw.FreeMemoryMiB = d.FreeMemoryMiB()
	return hw, nil
}

// cString is a NUL-terminated C string of libvirt's fixed-size fields.
func cString(b []int8) string {
	var s strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		s.WriteByte(byte(c))
	}
	return s.String()
}

// FreeMemoryMiB is the node's free memory as the hypervisor reports it, 0
// while libvirt is unreachable.
func (d *Driver) FreeMemoryMiB() int64 {
	var free int64
	if d.do("read the node's free memory", func(l *golibvirt.Libvirt) (err error) {
		free, err = d.freeMiB(l)
		return err
	}) != nil {
		return 0
	}
	return free
}

// freeMiB is the node's free memory. libvirt's test driver has no real
// figure (it answers its total, in the wrong unit), so there it is the
// total less the memory of the live domains.
func (d *Driver) freeMiB(l *golibvirt.Libvirt) (int64, error) {
	if d.kind != hypervisor.TypeTest {
		free, err := l.NodeGetFreeMemory()
		return int64(free >> 20), err
	}
	_, totalKiB, _, _, _, _, _, _, err := l.NodeGetInfo()
	if err != nil {
		return 0, err
	}
	doms, _, err := l.ConnectListAllDomains(1, golibvirt.ConnectListDomainsActive)
	if err != nil {
		return 0, err
	}
	used := uint64(0)
	for _, dom := range doms {
		if _, _, curKiB, _, _, err := l.DomainGetInfo(dom); err == nil {
			used += curKiB
		}
	}
	return int64((totalKiB - min(used, totalKiB)) >> 10), nil
}

// cpuCount is the node's CPU count.
func cpuCount(l *golibvirt.Libvirt) (int64, error) {
	_, _, cpus, _, _, _, _, _, err := l.NodeGetInfo()
	return int64(cpus), err
}

// Start defines and boots a transient domain from the VM's vm.cfg, in
// place of a crashed domain of the VM, which it destroys first:
// InvalidState when another domain of it is here, Busy while it migrates here,
// InsufficientResources when its memory or vCPUs do not fit.
func (d *Driver) Start(spec hypervisor.Spec) error {
	return d.boot(spec, "start")
}

// boot is Start, with the verb of the call for its faults.
func (d *Driver) boot(spec hypervisor.Spec, verb string) error {
	if err := d.CheckNoIncoming(spec.RepoID, spec.VMID); err != nil {
		return err
	}
	dom, err := d.domainXML(spec)
	if err != nil {
		return err
	}
	x, err := dom.Marshal()
	if err != nil {
		return agentapi.Errorf(agentapi.FaultInternalError, "VM %s: build its domain: %v", spec.VMID, err)
	}
	memory, vcpus := specSize(spec)
	what := fmt.Sprintf("%s VM %s", verb, spec.VMID)
	return d.do(what, func(l *golibvirt.Libvirt) error {
		if old, err := l.DomainLookupByName(domainName(spec.VMID)); err == nil {
			state, _, err := l.DomainGetState(old, 0)
			if err != nil {
				return err
			}
			if _, ours := d.metaFor(l, old); !ours || golibvirt.DomainState(state) != golibvirt.DomainCrashed {
				return agentapi.Errorf(agentapi.FaultInvalidState, "VM %s already has a domain on this server", spec.VMID)
			}
			// A crashed domain kept for inspection (on_crash preserve)
			// is destroyed first, and the new one takes its place.
			if err := d.destroy(l, old); err != nil {
				return err
			}
		}
		if err := d.checkFits(l, spec.VMID, memory, 0, vcpus); err != nil {
			return err
		}
		d.remember(dom.Name, metaOfVM(spec.RepoID, spec.VMID, spec.Params))
		if _, err := l.DomainCreateXML(x, 0); err != nil {
			return d.lockRefusal(what, err)
		}
		return nil
	})
}

// domainXML builds the domain of spec, its console logged beside vm.cfg.
func (d *Driver) domainXML(spec hypervisor.Spec) (*libvirtxml.Domain, error) {
	in := buildInput{kind: d.kind, repoID: spec.RepoID, vmID: spec.VMID, params: spec.Params, resolve: d.env.ResolvePath}
	if d.kind == hypervisor.TypeQEMU {
		dir, err := filepath.EvalSymlinks(spec.Dir)
		if err != nil {
			return nil, agentapi.Errorf(agentapi.FaultNotFound, "VM %s: its directory is not reachable on this server", spec.VMID)
		}
		in.consoleLog = filepath.Join(dir, consoleLogFile)
	}
	return buildDomain(in)
}

// specSize is the memory (MiB) and vCPUs of spec's checked vm.cfg.
func specSize(spec hypervisor.Spec) (memory, vcpus int64) {
	memory, _ = spec.Params.Int(agentapi.KeyMemory)
	vcpus, _ = spec.Params.Int(agentapi.KeyVCPUs)
	return memory, vcpus
}

// checkFits refuses, as InsufficientResources, a domain of memory MiB
// (of which held MiB are already held by the VM here) and vcpus that the
// node cannot hold.
func (d *Driver) checkFits(l *golibvirt.Libvirt, vmID string, memory, held, vcpus int64) error {
	cpus, err := cpuCount(l)
	if err != nil {
		return err
	}
	if vcpus > cpus {
		return agentapi.Errorf(agentapi.FaultInsufficientResources,
			"VM %s needs %d vCPUs, server %s has %d CPUs", vmID, vcpus, d.env.Hostname, cpus)
	}
	free, err := d.freeMiB(l)
	if err != nil {
		return err
	}
	if free += held; memory > free {
		return agentapi.Errorf(agentapi.FaultInsufficientResources,
			"VM %s needs %d MiB, %d MiB free on server %s", vmID, memory, free, d.env.Hostname)
	}
	return nil
}

// Stop ends the VM's domain: when force, at once (destroy); else the
// guest is asked to power off (ACPI) and given ShutdownTimeout, after
// which the domain is destroyed, as a stop on Xen does.
func (d *Driver) Stop(repoID, vmID string, force bool) error {
	if force {
		return d.do("kill VM "+vmID, func(l *golibvirt.Libvirt) error {
			dom, _, err := d.lookup(l, repoID, vmID)
			if err != nil {
				return err
			}
			return d.destroy(l, dom)
		})
	}
	return d.shutdown(repoID, vmID, d.cfg.ShutdownTimeout)
}

// destroy ends a domain at once, as the driver's own doing.
func (d *Driver) destroy(l *golibvirt.Libvirt, dom golibvirt.Domain) error {
	added := d.expectEnd(dom.Name, "destroyed")
	err := l.DomainDestroy(dom)
	if isNoDomain(err) {
		if added {
			d.forgetEnd(dom.Name) // it ended meanwhile, on its own
		}
		return nil
	}
	if err != nil {
		d.forgetEnd(dom.Name)
	}
	return err
}

// shutdown asks the guest to power off and waits up to wait for the
// domain to go, then destroys it.
func (d *Driver) shutdown(repoID, vmID string, wait time.Duration) error {
	var dom golibvirt.Domain
	err := d.do("stop VM "+vmID, func(l *golibvirt.Libvirt) (err error) {
		if dom, _, err = d.lookup(l, repoID, vmID); err != nil {
			return err
		}
		d.expectEnd(dom.Name, "shut down")
		state, _, err := l.DomainGetState(dom, 0)
		if err != nil {
			d.forgetEnd(dom.Name)
			return err
		}
		if golibvirt.DomainState(state) == golibvirt.DomainPaused || golibvirt.DomainState(state) == golibvirt.DomainCrashed {
			return d.destroy(l, dom) // a paused or crashed guest cannot answer ACPI
		}
		if err := l.DomainShutdownFlags(dom, d.shutdownMode()); err != nil {
			d.forgetEnd(dom.Name) // the guest was not asked: its own power-off is news
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		gone := false
		err := d.do("stop VM "+vmID, func(l *golibvirt.Libvirt) error {
			state, _, err := l.DomainGetState(dom, 0)
			if isNoDomain(err) {
				gone = true
				return nil
			}
			gone = err == nil && golibvirt.DomainState(state) == golibvirt.DomainShutoff
			return err
		})
		if err != nil || gone {
			return err
		}
		time.Sleep(pollInterval)
	}
	d.log.Info("the guest did not power off in time; destroying its domain", "vm", vmID, "waited", wait)
	return d.do("stop VM "+vmID, func(l *golibvirt.Libvirt) error { return d.destroy(l, dom) })
}

// shutdownMode is how a guest is asked to power off: the ACPI power
// button where the hypervisor has one (QEMU), the default (Xen's PV
// control) elsewhere.
func (d *Driver) shutdownMode() golibvirt.DomainShutdownFlagValues {
	if d.kind == hypervisor.TypeQEMU {
		return golibvirt.DomainShutdownAcpiPowerBtn
	}
	return 0
}

// Reboot replaces a running or blocked domain with a new one booted from
// spec (so that a changed vm.cfg takes effect): the guest is asked to
// power off and given wait seconds, or ShutdownTimeout when wait is 0
// (the manager's restart Vm), then destroyed.
func (d *Driver) Reboot(spec hypervisor.Spec, wait int64) error {
	if _, err := d.liveState(spec.RepoID, spec.VMID, "rebooted", agentapi.StateRunning, agentapi.StateBlocked); err != nil {
		return err
	}
	timeout := time.Duration(wait) * time.Second
	if wait == 0 {
		timeout = d.cfg.ShutdownTimeout
	}
	if err := d.shutdown(spec.RepoID, spec.VMID, timeout); err != nil {
		return err
	}
	return d.boot(spec, "reboot")
}

// liveState returns the state of the VM's domain when it is one of
// states: NotFound without a domain, InvalidState in another state (verb
// says what cannot be done).
func (d *Driver) liveState(repoID, vmID, verb string, states ...string) (string, error) {
	dom, ok, err := d.Domain(repoID, vmID)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", hypervisor.ErrNotRunning(repoID, vmID)
	}
	if !slices.Contains(states, dom.State) {
		return "", agentapi.Errorf(agentapi.FaultInvalidState,
			"VM %s is %s (domid %d) and cannot be %s; only a %s domain can", vmID, dom.State, dom.DomID, verb, strings.Join(states, " or "))
	}
	return dom.State, nil
}

// Pause pauses a running or blocked domain.
func (d *Driver) Pause(repoID, vmID string) error {
	return d.changeState(repoID, vmID, "pause", "paused", []golibvirt.DomainState{golibvirt.DomainRunning, golibvirt.DomainBlocked},
		(*golibvirt.Libvirt).DomainSuspend)
}

// Unpause lets a paused domain run again.
func (d *Driver) Unpause(repoID, vmID string) error {
	return d.changeState(repoID, vmID, "unpause", "unpaused", []golibvirt.DomainState{golibvirt.DomainPaused},
		(*golibvirt.Libvirt).DomainResume)
}

// changeState applies change to the VM's domain when it is in one of
// states (InvalidState otherwise, saying it cannot be verbed), in one
// round of calls: look it up, read its state, change it.
func (d *Driver) changeState(repoID, vmID, verb, verbed string, states []golibvirt.DomainState,
	change func(*golibvirt.Libvirt, golibvirt.Domain) error) error {
	return d.do(verb+" VM "+vmID, func(l *golibvirt.Libvirt) error {
		dom, _, err := d.lookup(l, repoID, vmID)
		if err != nil {
			return err
		}
		state, _, err := l.DomainGetState(dom, 0)
		if err != nil {
			return err
		}
		if !slices.Contains(states, golibvirt.DomainState(state)) {
			names := make([]string, len(states))
			for i, s := range states {
				names[i] = stateOf(s)
			}
			return agentapi.Errorf(agentapi.FaultInvalidState, "VM %s is %s (domid %d) and cannot be %s; only a %s domain can",
				vmID, stateOf(golibvirt.DomainState(state)), dom.ID, verbed, strings.Join(names, " or "))
		}
		return change(l, dom)
	})
}

// Configure checks change against the VM's domain, if any, calls write
// (which writes vm.cfg), then applies memory and vCPUs to the domain
// live. Live changes must stay within the maxmem and maxvcpus the domain
// started with (InvalidState otherwise, nothing changed), and growing
// memory must fit the node's free memory; the uuid of a running VM
// cannot change.
func (d *Driver) Configure(repoID, vmID string, change hypervisor.Change, write func() error) error {
	if err := d.CheckNoIncoming(repoID, vmID); err != nil {
		return err
	}
	var live bool
	var dom golibvirt.Domain
	err := d.do("reconfigure VM "+vmID, func(l *golibvirt.Libvirt) error {
		var meta vmMeta
		var err error
		dom, meta, err = d.lookup(l, repoID, vmID)
		if isNoDomain(err) {
			return nil
		}
		if err != nil {
			return err
		}
		state, maxKiB, curKiB, _, _, err := l.DomainGetInfo(dom)
		if err != nil {
			return err
		}
		if !hypervisor.HoldsMemory(stateOf(golibvirt.DomainState(state))) {
			return nil
		}
		live = true
		if change.SetUUID && fmt.Sprint(change.UUID) != meta.UUID {
			return agentapi.Errorf(agentapi.FaultInvalidState, "VM %s runs as uuid %s; stop it before changing its uuid", vmID, meta.UUID)
		}
		if maxMiB := int64(maxKiB >> 10); change.SetMemory && change.MemoryMiB > maxMiB {
			return agentapi.Errorf(agentapi.FaultInvalidState,
				"VM %s runs with maxmem %d MiB, so its memory cannot grow to %d MiB live; raise maxmem and restart it", vmID, maxMiB, change.MemoryMiB)
		}
		if change.SetVCPUs {
			maxV, err := l.DomainGetVcpusFlags(dom, uint32(golibvirt.DomainVCPULive|golibvirt.DomainVCPUMaximum))
			if err != nil {
				return err
			}
			if change.VCPUs > int64(maxV) {
				return agentapi.Errorf(agentapi.FaultInvalidState,
					"VM %s runs with maxvcpus %d, so it cannot get %d vCPUs live; raise maxvcpus and restart it", vmID, maxV, change.VCPUs)
			}
		}
		if change.SetMemory {
			if err := d.checkFits(l, vmID, change.MemoryMiB, int64(curKiB>>10), 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := write(); err != nil {
		return err
	}
	if !live {
		return nil
	}
	return d.do("change VM "+vmID+" live", func(l *golibvirt.Libvirt) error {
		if change.SetMemory {
			if err := l.DomainSetMemoryFlags(dom, uint64(change.MemoryMiB)<<10, uint32(golibvirt.DomainAffectLive)); err != nil {
				return err
			}
		}
		if change.SetVCPUs {
			if err := l.DomainSetVcpusFlags(dom, uint32(change.VCPUs), uint32(golibvirt.DomainVCPULive)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Domain is the VM's live domain, in any state; an error when libvirt
// cannot tell. A domain that ends between the lookup and the read of its
// state is none, not an error: the HA lease renewal asks for domains it
// has just listed, and one that ended meanwhile (a start that failed on a
// locked disk) must not count as a renewal that failed.
func (d *Driver) Domain(repoID, vmID string) (hypervisor.Domain, bool, error) {
	var out hypervisor.Domain
	found := false
	err := d.do("read VM "+vmID, func(l *golibvirt.Libvirt) error {
		dom, meta, err := d.lookup(l, repoID, vmID)
		if isNoDomain(err) {
			return nil
		}
		if err != nil {
			return err
		}
		state, _, curKiB, vcpus, cpuNS, err := l.DomainGetInfo(dom)
		if isNoDomain(err) {
			return nil // it ended since the lookup: a start that failed, a destroy
		}
		if err != nil {
			return err
		}
		out = hypervisor.Domain{VMID: vmID, Domain: agentapi.Domain{
			UUID: meta.UUID, Name: meta.Name, DomID: int64(dom.ID), State: stateOf(golibvirt.DomainState(state)),
			MemoryMiB: int64(curKiB >> 10), VCPUs: int64(vcpus), CPUTimeS: float64(cpuNS) / 1e9, RepoID: repoID,
		}}
		found = true
		return nil
	})
	if err != nil {
		return hypervisor.Domain{}, false, err
	}
	return out, found, nil
}

// Domains answers list_vms: the live domains of this driver's VMs, by
// domid (Domain-0 and domains made outside the agent are left out).
func (d *Driver) Domains() ([]agentapi.Domain, error) {
	vms, err := d.DomainVMs()
	if err != nil {
		return nil, err
	}
	out := make([]agentapi.Domain, len(vms))
	for i, v := range vms {
		out[i] = v.Domain
	}
	return out, nil
}

// DomainVMs are the live domains with the VM each runs, by domid, read in
// one call of libvirt's bulk statistics.
func (d *Driver) DomainVMs() ([]hypervisor.Domain, error) {
	recs, err := d.allStats(golibvirt.DomainStatsState | golibvirt.DomainStatsCPUTotal | golibvirt.DomainStatsBalloon | golibvirt.DomainStatsVCPU)
	if err != nil {
		return nil, err
	}
	out := make([]hypervisor.Domain, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.domain())
	}
	slices.SortFunc(out, func(a, b hypervisor.Domain) int { return cmp.Compare(a.DomID, b.DomID) })
	return out, nil
}

// CheckNoIncoming is Busy while a migration of the VM here is set up and
// its domain has not arrived running.
func (d *Driver) CheckNoIncoming(repoID, vmID string) error {
	name := domainName(vmID)
	d.mu.Lock()
	until, ok := d.targets[name]
	if ok && !d.env.Now().Before(until) {
		delete(d.targets, name)
		ok = false
	}
	d.mu.Unlock()
	if !ok {
		return nil
	}
	if dom, found, err := d.Domain(repoID, vmID); err == nil && found && dom.State != agentapi.StatePaused {
		d.mu.Lock()
		delete(d.targets, name) // it arrived
		d.mu.Unlock()
		return nil
	}
	return agentapi.Errorf(agentapi.FaultBusy,
		"VM %s is being migrated to this server; wait for the migration to end", vmID)
}

// Save suspends the domain to the save file beside its vm.cfg (a
// checkpoint restores it at once, running); get_operation_progress
// "save:<vm_id>" tells how far it is.
func (d *Driver) Save(spec hypervisor.Spec, checkpoint bool) error {
	repoID, vmID := spec.RepoID, spec.VMID
	if _, err := d.liveState(repoID, vmID, "saved", agentapi.StateRunning, agentapi.StateBlocked, agentapi.StatePaused); err != nil {
		return err
	}
	dir, err := filepath.EvalSymlinks(spec.Dir)
	if err != nil {
		return agentapi.Errorf(agentapi.FaultNotFound, "VM %s: its directory is not reachable on this server", vmID)
	}
	path := filepath.Join(dir, saveFile)
	op := d.env.Progress.Start(agentapi.ProgressSave+vmID, "saving memory", 0)
	var dom golibvirt.Domain
	stop := make(chan struct{})
	err = d.doWithin(0, "save VM "+vmID, func(l *golibvirt.Libvirt) (err error) {
		if dom, _, err = d.lookup(l, repoID, vmID); err != nil {
			return err
		}
		var job jobWatch
		go job.follow(l, dom, op, "saving memory", stop)
		d.expectEnd(dom.Name, "saved")
		if err := l.DomainSave(dom, path); err != nil {
			d.forgetEnd(dom.Name)
			return err
		}
		return nil
	})
	close(stop)
	if err == nil && checkpoint {
		err = d.restoreFile(spec, path, false, "resume VM "+vmID+" after its checkpoint")
	}
	op.Finish(err)
	return err
}

// Restore resumes the VM from its save file, running or paused, then
// removes the file. The VM must have no domain here.
func (d *Driver) Restore(spec hypervisor.Spec, paused bool) error {
	if err := d.CheckNoIncoming(spec.RepoID, spec.VMID); err != nil {
		return err
	}
	if dom, ok, err := d.Domain(spec.RepoID, spec.VMID); err != nil {
		return err
	} else if ok {
		return agentapi.Errorf(agentapi.FaultInvalidState,
			"VM %s is %s on this server (domid %d); restore_vm needs it suspended or stopped", spec.VMID, dom.State, dom.DomID)
	}
	dir, err := filepath.EvalSymlinks(spec.Dir)
	if err != nil {
		return agentapi.Errorf(agentapi.FaultNotFound, "VM %s: its directory is not reachable on this server", spec.VMID)
	}
	path := filepath.Join(dir, saveFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return agentapi.Errorf(agentapi.FaultNotFound,
			"VM %s has no saved state (no %s beside its vm.cfg); save_vm it first, or start_vm it", spec.VMID, saveFile)
	}
	if err := d.restoreFile(spec, path, paused, "restore VM "+spec.VMID); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		d.log.Warn("remove a restored save file", "vm", spec.VMID, "err", err)
	}
	return nil
}

// restoreFile restores a domain from path, running or paused.
func (d *Driver) restoreFile(spec hypervisor.Spec, path string, paused bool, what string) error {
	flags := uint32(golibvirt.DomainSaveRunning)
	if paused {
		flags = uint32(golibvirt.DomainSavePaused)
	}
	return d.doWithin(0, what, func(l *golibvirt.Libvirt) error {
		x, err := l.DomainSaveImageGetXMLDesc(path, 0)
		if err != nil {
			return agentapi.Errorf(agentapi.FaultInvalidState,
				"the save file %s of VM %s cannot be restored (libvirt cannot read it); stop_vm and start_vm the VM instead", path, spec.VMID)
		}
		meta, ok := metaOf(x)
		if !ok || meta.Repo != spec.RepoID || meta.VM != spec.VMID {
			return agentapi.Errorf(agentapi.FaultInvalidState,
				"the save file %s is not of VM %s of repository %s; stop_vm and start_vm the VM instead", path, spec.VMID, spec.RepoID)
		}
		d.remember(domainName(spec.VMID), meta)
		err = l.DomainRestoreFlags(path, golibvirt.OptString{}, flags)
		var lerr golibvirt.Error
		if err == nil || !errors.As(err, &lerr) || golibvirt.ErrorNumber(lerr.Code) != golibvirt.ErrInvalidArg {
			return d.lockRefusal(what, err)
		}
		// A driver that takes no flags here (libvirt's test driver):
		// restore as saved, then pause or resume as asked.
		if err := l.DomainRestoreFlags(path, golibvirt.OptString{}, 0); err != nil {
			return d.lockRefusal(what, err)
		}
		dom, err := l.DomainLookupByName(domainName(spec.VMID))
		if err != nil {
			return err
		}
		state, _, err := l.DomainGetState(dom, 0)
		if err != nil {
			return err
		}
		switch isPaused := golibvirt.DomainState(state) == golibvirt.DomainPaused; {
		case paused && !isPaused:
			return l.DomainSuspend(dom)
		case !paused && isPaused:
			return l.DomainResume(dom)
		}
		return nil
	})
}
