package host

import (
	"bytes"
	"context"
	"maps"
	"net"
	"path/filepath"

	"xenmanager/backend/agent/halease"
	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agent/internal/atomicfile"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentapi/vmcfg"
)

// ConfigureVM merges params into the VM's vm.cfg; keys not given stay, and
// a direct-boot key given empty (agentapi.DirectBootKeys) is removed. For
// a domain that holds memory here (running, blocked, paused), memory and
// vcpus given in params change live, as the driver allows (see
// hypervisor.Driver.Configure); vm.cfg is written only when it does.
func (h *Host) ConfigureVM(repoID, vmID string, params agentapi.VMParams) error {
	for _, key := range intKeys {
		if v, present := params[key]; present {
			if n, err := agentapi.ToInt(v); err != nil || n <= 0 {
				return agentapi.Errorf(agentapi.FaultInvalidArgument,
					"VM %s: params.%s must be a positive integer, got %#v", vmID, key, v)
			}
		}
	}
	if err := checkDirectBoot("VM "+vmID, params); err != nil {
		return err
	}
	defer h.vms.lock(repoID, vmID)()
	dir, err := h.vmDir(repoID, vmID)
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
	dropEmptyDirectBoot(merged)
	if err := checkVMParams("VM "+vmID, merged); err != nil {
		return err
	}
	change := hypervisor.Change{}
	change.MemoryMiB, _ = merged.Int(agentapi.KeyMemory)
	change.VCPUs, _ = merged.Int(agentapi.KeyVCPUs)
	_, change.SetMemory = params[agentapi.KeyMemory]
	_, change.SetVCPUs = params[agentapi.KeyVCPUs]
	change.UUID, change.SetUUID = params[agentapi.KeyUUID]
	return h.drv.Configure(repoID, vmID, change, func() error {
		memory, vcpus := change.MemoryMiB, change.VCPUs
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
		if err := atomicfile.Write(path, cfg.Bytes(), 0o644); err != nil {
			return agentapi.Errorf(agentapi.FaultInternalError, "write %s: %v", path, err)
		}
		return nil
	})
}

// ConfigureVMHA sets OVM_high_availability in the VM's vm.cfg.
func (h *Host) ConfigureVMHA(repoID, vmID string, enable bool) error {
	return h.ConfigureVM(repoID, vmID, agentapi.VMParams{agentapi.KeyHA: enable})
}

// RebootVM reboots the domain: a new domain boots from the current vm.cfg.
// wait, the seconds the guest is given to shut down, must not be negative.
func (h *Host) RebootVM(repoID, vmID string, wait int64) error {
	if wait < 0 {
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "reboot_vm: wait must not be negative, got %d", wait)
	}
	defer h.vms.lock(repoID, vmID)()
	spec, err := h.bootSpec(repoID, vmID)
	if err != nil {
		return err
	}
	return h.drv.Reboot(spec, wait)
}

// PauseVM pauses a running or blocked domain.
func (h *Host) PauseVM(repoID, vmID string) error {
	if err := checkVMIDs(repoID, vmID); err != nil {
		return err
	}
	return h.drv.Pause(repoID, vmID)
}

// UnpauseVM lets a paused domain run again.
func (h *Host) UnpauseVM(repoID, vmID string) error {
	if err := checkVMIDs(repoID, vmID); err != nil {
		return err
	}
	return h.drv.Unpause(repoID, vmID)
}

// SaveVM suspends the domain to a save file beside its vm.cfg, or saves a
// checkpoint of it; get_operation_progress "save:<vm_id>" tells how far it
// is.
func (h *Host) SaveVM(repoID, vmID string, checkpoint bool) error {
	dir, err := h.vmDir(repoID, vmID)
	if err != nil {
		return err
	}
	return h.drv.Save(hypervisor.Spec{RepoID: repoID, VMID: vmID, Dir: dir}, checkpoint)
}

// RestoreVM resumes the VM from its save file, running or paused. In an HA
// pool it takes the VM's lease first, as StartVM does.
func (h *Host) RestoreVM(repoID, vmID string, paused bool) error {
	defer h.vms.lock(repoID, vmID)()
	dir, err := h.vmDir(repoID, vmID)
	if err != nil {
		return err
	}
	var lease *halease.Start
	if h.ha.Enabled() {
		if lease, err = h.ha.BeginStart(h.leaseUUID(repoID, vmID), repoID, vmID); err != nil {
			return err
		}
	}
	return lease.End(h.drv.Restore(hypervisor.Spec{RepoID: repoID, VMID: vmID, Dir: dir}, paused))
}

// SetupMigrationTarget prepares this host to receive the VM, whose vm.cfg
// must be readable here (the repository is shared); listenHost is the
// address the call came in on. The result is the opaque dest of
// migrate_vm.
func (h *Host) SetupMigrationTarget(repoID, vmID, listenHost string) (string, error) {
	defer h.vms.lock(repoID, vmID)()
	spec, err := h.bootSpec(repoID, vmID)
	if err != nil {
		return "", err
	}
	if err := h.ha.ExpectIncoming(specUUID(spec), repoID, vmID); err != nil {
		return "", err
	}
	return h.drv.SetupMigrationTarget(spec, listenHost)
}

// MigrateVM migrates the VM's domain to dest, from SetupMigrationTarget on
// the destination; ctx ending before the commit abandons it.
func (h *Host) MigrateVM(ctx context.Context, repoID, vmID, dest string, live, ssl bool) (agentapi.MigrationResult, error) {
	if err := h.drv.CheckDest(dest); err != nil {
		return agentapi.MigrationResult{}, err
	}
	if err := checkVMIDs(repoID, vmID); err != nil {
		return agentapi.MigrationResult{}, err
	}
	if !h.ha.Enabled() {
		return h.drv.MigrateVM(ctx, repoID, vmID, dest, live, ssl)
	}
	// In an HA pool the lease stays renewed while the domain migrates,
	// a fence cuts the migration, and a domain that left releases it.
	ctx, end := h.ha.BeginOutgoing(ctx, h.leaseUUID(repoID, vmID), repoID, vmID)
	res, err := h.drv.MigrateVM(ctx, repoID, vmID, dest, live, ssl)
	end(err == nil)
	return res, err
}

// CleanupMigrationTarget releases the VM's incoming migration, if any.
func (h *Host) CleanupMigrationTarget(repoID, vmID string) error {
	if err := checkVMIDs(repoID, vmID); err != nil {
		return err
	}
	h.ha.CancelIncoming(repoID, vmID)
	return h.drv.CleanupMigrationTarget(repoID, vmID)
}

// OpenConsole issues a single-use token for the serial console of the VM's
// domain; the agent tells the client where to connect and passes the
// connections to ServeConsole.
func (h *Host) OpenConsole(repoID, vmID string) (string, error) {
	if err := checkVMIDs(repoID, vmID); err != nil {
		return "", err
	}
	return h.drv.OpenConsole(repoID, vmID)
}

// ServeConsole runs one console connection and closes it.
func (h *Host) ServeConsole(conn net.Conn) { h.drv.ServeConsole(conn) }

// GetStatistics answers get_statistics.
func (h *Host) GetStatistics() (agentapi.Statistics, error) { return h.drv.Stats() }

// DiscoverHardware answers discover_hardware.
func (h *Host) DiscoverHardware() (agentapi.Hardware, error) { return h.drv.Hardware() }
