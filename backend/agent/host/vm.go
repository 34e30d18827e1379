package host

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agent/internal/atomicfile"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentapi/vmcfg"
)

// vmConfigFile is the name of a VM's configuration in its directory.
const vmConfigFile = "vm.cfg"

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

// lockVMDir takes the VM's lock and h.mu, for a call that checks the VM's
// directory and domain and then changes the directory, and returns the
// directory and the unlock of both.
func (h *Host) lockVMDir(repoID, vmID string) (dir string, unlock func(), err error) {
	unlockVM := h.vms.lock(repoID, vmID)
	h.mu.Lock()
	unlock = func() {
		h.mu.Unlock()
		unlockVM()
	}
	if dir, err = h.vmDirLocked(repoID, vmID); err != nil {
		unlock()
		return "", nil, err
	}
	return dir, unlock, nil
}

// vmDir is vmDirLocked for a caller that does not hold h.mu.
func (h *Host) vmDir(repoID, vmID string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.vmDirLocked(repoID, vmID)
}

// CreateVM writes the VM's vm.cfg in the repository. params must hold
// integer memory (MiB) and vcpus; an existing VM is InvalidState.
func (h *Host) CreateVM(repoID, vmID string, params agentapi.VMParams) error {
	if err := checkID("VM id", vmID); err != nil {
		return err
	}
	if err := checkVMParams("VM "+vmID, params); err != nil {
		return err
	}
	if err := checkDirectBoot("VM "+vmID, params); err != nil {
		return err
	}
	params = normalizeInts(params)
	dropEmptyDirectBoot(params)
	var cfg bytes.Buffer
	if err := vmcfg.Write(&cfg, params); err != nil {
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "VM %s: %v", vmID, err)
	}
	dir, unlock, err := h.lockVMDir(repoID, vmID)
	if err != nil {
		return err
	}
	defer unlock()
	path := filepath.Join(dir, vmConfigFile)
	if _, err := os.Stat(path); err == nil {
		return agentapi.Errorf(agentapi.FaultInvalidState,
			"VM %s already exists in repository %s; delete it first or use another id", vmID, repoID)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return agentapi.Errorf(agentapi.FaultInternalError, "create VM directory %s: %v", dir, err)
	}
	if err := atomicfile.Write(path, cfg.Bytes(), 0o644); err != nil {
		return agentapi.Errorf(agentapi.FaultInternalError, "write %s: %v", path, err)
	}
	return nil
}

// checkVMParams checks the keys every vm.cfg must give; what names the VM
// or template for faults ("VM web1").
func checkVMParams(what string, params agentapi.VMParams) error {
	for _, key := range []string{agentapi.KeyMemory, agentapi.KeyVCPUs} {
		n, ok := params.Int(key)
		if !ok || n <= 0 {
			return agentapi.Errorf(agentapi.FaultInvalidArgument,
				"%s: params.%s must be a positive integer, got %#v", what, key, params[key])
		}
	}
	return nil
}

// checkDirectBoot checks the direct-boot keys params gives: each a string,
// kernel and ramdisk absolute paths without '..' (the driver boots the
// file it names), except empty, which stands for no value.
func checkDirectBoot(what string, params agentapi.VMParams) error {
	for _, key := range agentapi.DirectBootKeys {
		v, present := params[key]
		if !present {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return agentapi.Errorf(agentapi.FaultInvalidArgument, "%s: params.%s must be a string, got %#v", what, key, v)
		}
		if key == agentapi.KeyExtra || s == "" {
			continue
		}
		if _, err := checkAbsPath(fmt.Sprintf("%s: params.%s", what, key), s); err != nil {
			return err
		}
	}
	return nil
}

// dropEmptyDirectBoot removes the direct-boot keys params holds as empty
// strings: no kernel is no key at all, never a kernel of an empty name,
// which xl would try to boot.
func dropEmptyDirectBoot(params agentapi.VMParams) {
	for _, key := range agentapi.DirectBootKeys {
		if params[key] == "" {
			delete(params, key)
		}
	}
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
	dir, err := h.vmDir(repoID, vmID)
	if err != nil {
		return nil, err
	}
	return readVMConfig(repoID, vmID, dir)
}

// bootSpec reads the VM's vm.cfg for a domain to be built from it (a
// start, a reboot, an incoming migration): checked, with its memory and
// vCPUs. A vm.cfg that does not pass the checks is InvalidState.
func (h *Host) bootSpec(repoID, vmID string) (hypervisor.Spec, error) {
	dir, err := h.vmDir(repoID, vmID)
	if err != nil {
		return hypervisor.Spec{}, err
	}
	params, err := readVMConfig(repoID, vmID, dir)
	if err != nil {
		return hypervisor.Spec{}, err
	}
	if err := checkVMParams("VM "+vmID, params); err != nil {
		return hypervisor.Spec{}, agentapi.Errorf(agentapi.FaultInvalidState, "vm.cfg of %s", err.(*agentapi.Fault).Message)
	}
	return hypervisor.Spec{RepoID: repoID, VMID: vmID, Dir: dir, Params: params, DiskMiB: h.diskImagesMiB(params)}, nil
}

func readVMConfig(repoID, vmID, dir string) (agentapi.VMParams, error) {
	return readConfig("VM", repoID, vmID, dir)
}

// readConfig reads the vm.cfg in dir of a VM or a template (what names
// it for faults).
func readConfig(what, repoID, id, dir string) (agentapi.VMParams, error) {
	data, err := os.ReadFile(filepath.Join(dir, vmConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, agentapi.Errorf(agentapi.FaultNotFound, "%s %s not found in repository %s", what, id, repoID)
	}
	if err != nil {
		return nil, agentapi.Errorf(agentapi.FaultInternalError, "read vm.cfg of %s %s: %v", what, id, err)
	}
	params, err := vmcfg.Parse(data)
	if err != nil {
		return nil, agentapi.Errorf(agentapi.FaultInternalError,
			"vm.cfg of %s %s in repository %s is unreadable (%v); fix the file", what, id, repoID, err)
	}
	return params, nil
}

// StartVM starts a domain from the VM's vm.cfg, read from the repository so
// that any server sharing it can start the VM. InvalidState when it already
// runs here; InsufficientResources when its memory or vCPUs do not fit. In
// an HA pool it takes the VM's lease first (InvalidState while another
// server holds it live; see halease.Keeper.BeginStart).
func (h *Host) StartVM(repoID, vmID string) error {
	defer h.vms.lock(repoID, vmID)()
	spec, err := h.bootSpec(repoID, vmID)
	if err != nil {
		return err
	}
	lease, err := h.ha.BeginStart(specUUID(spec), repoID, vmID)
	if err != nil {
		return err
	}
	return lease.End(h.drv.Start(spec))
}

// StopVM ends the domain: a clean shutdown, or a destroy when force. In an
// HA pool the VM's lease is released.
func (h *Host) StopVM(repoID, vmID string, force bool) error {
	if err := checkVMIDs(repoID, vmID); err != nil {
		return err
	}
	if !h.ha.Enabled() {
		return h.drv.Stop(repoID, vmID, force)
	}
	uuid := h.leaseUUID(repoID, vmID)
	if err := h.drv.Stop(repoID, vmID, force); err != nil {
		return err
	}
	h.ha.Release(uuid, repoID, vmID)
	return nil
}

// checkVMIDs validates the ids; the repository need not be known, so
// that a domain can be stopped after its repository went away.
func checkVMIDs(repoID, vmID string) error {
	if err := checkID("repository id", repoID); err != nil {
		return err
	}
	return checkID("VM id", vmID)
}

// DeleteVM removes the VM's directory; InvalidState while it runs here.
func (h *Host) DeleteVM(repoID, vmID string) error {
	dir, unlock, err := h.lockVMDir(repoID, vmID)
	if err != nil {
		return err
	}
	defer unlock()
	// An incoming migration first: its commit (which takes no lock of the
	// host's) turns the target into a domain at once, so checked the other
	// way round a migration landing between the two checks would pass both
	// and lose its VM's files. Once no target is set up, none can be while
	// the VM's lock is held, and a VM never has a target and a domain at
	// once, so the faults are the same either way.
	if err := h.drv.CheckNoIncoming(repoID, vmID); err != nil {
		return err
	}
	if d, ok, err := h.drv.Domain(repoID, vmID); err != nil {
		return err
	} else if ok {
		return agentapi.Errorf(agentapi.FaultInvalidState,
			"VM %s is %s on this server (domid %d); stop it first", vmID, d.State, d.DomID)
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
func (h *Host) ListVMs() ([]agentapi.Domain, error) { return h.drv.Domains() }

// ListVM describes one live domain; NotFound when the VM is not a domain
// here.
func (h *Host) ListVM(repoID, vmID string) (agentapi.Domain, error) {
	if err := checkVMIDs(repoID, vmID); err != nil {
		return agentapi.Domain{}, err
	}
	d, ok, err := h.drv.Domain(repoID, vmID)
	if err != nil {
		return agentapi.Domain{}, err
	}
	if !ok {
		return agentapi.Domain{}, hypervisor.ErrNotRunning(repoID, vmID)
	}
	return d.Domain, nil
}
