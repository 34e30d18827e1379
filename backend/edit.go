package backend

import (
	"context"
	"strings"

	"xenmanager/backend/agentapi"
	"xenmanager/store"
)

// EditVMRequest holds the settings to change; nil fields stay as they are.
type EditVMRequest struct {
	Name             *string
	Description      *string
	MemoryMiB        *int64
	MemoryLimitMiB   *int64 // maxmem; stopped VMs only
	CPUCount         *int64
	CPUCountLimit    *int64
	CPUPinning       *string // "0-1,4"; "" removes pinning
	PreferredServers *[]Ref  // empty removes the preference
	HA               *bool
	DomainType       *string
	OSType           *string
	BootOrder        *string
	StartPolicy      *string
	// OnCrash is the restartActionOnCrash (one of RestartActionsOnCrash);
	// a running domain keeps the action it started with until it boots
	// again.
	OnCrash *string
	// Kernel, Ramdisk and Extra change the direct kernel boot (stopped
	// VMs only); "" removes the setting.
	Kernel, Ramdisk, Extra *string
}

// BootOrders are the boot orders a VM may have; EditVM checks against them
// and the command language declares its enumeration from them.
var BootOrders = []string{"DISK", "CDROM", "PXE", "DISK,CDROM", "CDROM,DISK", "PXE,DISK"}

// EditVM changes a VM's settings. Memory and vCPUs of a running VM change
// live, within the maxima it started with (memoryLimit is its maxmem,
// cpuCountLimit its maxvcpus);
// the domain type and the direct kernel boot only while it is stopped. The
// vm.cfg in the repository is updated through the agent (configure_vm)
// before the store.
func (m *Manager) EditVM(ctx context.Context, ref Ref, req EditVMRequest) (VM, error) {
	if err := checkVMSizes(req.MemoryMiB, req.MemoryLimitMiB, req.CPUCount, req.CPUCountLimit); err != nil {
		return VM{}, err
	}
	if req.BootOrder != nil {
		if err := validBootOrder(*req.BootOrder); err != nil {
			return VM{}, err
		}
	}
	if err := req.checkDirectBoot(); err != nil {
		return VM{}, err
	}
	if req.OnCrash != nil {
		if _, err := onCrashWire(*req.OnCrash); err != nil {
			return VM{}, err
		}
	}
	v0, err := m.findVM(ctx, ref)
	if err != nil {
		return VM{}, err
	}
	// Resolve preferred servers before the job: a typo fails at once.
	var preferred []string
	if req.PreferredServers != nil {
		for _, r := range *req.PreferredServers {
			s, err := m.findServer(ctx, r)
			if err != nil {
				return VM{}, err
			}
			if s.PoolID != v0.PoolID {
				return VM{}, errorf(KindInvalidArgument, "preferred server %s is not in the VM's server pool", s.Name)
			}
			preferred = append(preferred, s.ID)
		}
	}
	return m.vmJob(ctx, ref, "edit", PermVMLifecycle, func(ctx context.Context, j *jobRun, v store.VM) error {
		next := v
		params := agentapi.VMParams{}
		running := v.Status == VMRunning
		if req.Name != nil {
			name, err := ValidateName("Vm", *req.Name)
			if err != nil {
				return err
			}
			next.Name = name
			params[agentapi.KeySimpleName] = next.Name
		}
		if req.Description != nil {
			next.Description = *req.Description
			params[agentapi.KeyDescription] = next.Description
		}
		if req.DomainType != nil && *req.DomainType != v.DomainType {
			if running {
				return errorf(KindInvalidState, "Vm %s is Running; changing domainType needs Stopped", v.Name)
			}
			next.DomainType = *req.DomainType
			params[agentapi.KeyDomainType] = next.DomainType
		}
		if req.CPUCountLimit != nil {
			if running && *req.CPUCountLimit != v.CPUCountLimit {
				return errorf(KindInvalidState, "Vm %s is Running; changing cpuCountLimit (maxvcpus) needs Stopped", v.Name)
			}
			next.CPUCountLimit = *req.CPUCountLimit
		}
		if req.CPUCount != nil {
			next.CPUCount = *req.CPUCount
		}
		limit := next.CPUCountLimit
		if limit == 0 {
			limit = next.CPUCount
			if running {
				limit = v.CPUCount // maxvcpus as it started
			}
		}
		if next.CPUCount > limit {
			return aboveLimit("cpuCount", next.CPUCount, "cpuCountLimit", limit, "")
		}
		if req.CPUCount != nil || req.CPUCountLimit != nil {
			params[agentapi.KeyVCPUs] = next.CPUCount
			if !running {
				params[agentapi.KeyMaxVCPUs] = limit
			} else {
				// A live change leaves maxvcpus in vm.cfg as the domain
				// started with it: record it, so that a limit that
				// followed cpuCount (0) does not fall with a decrease
				// and refuse raising the count back.
				next.CPUCountLimit = limit
			}
		}
		if err := editMemory(req, v, &next, params); err != nil {
			return err
		}
		if req.CPUPinning != nil {
			if err := m.checkPinningOfVM(ctx, *req.CPUPinning, v); err != nil {
				return err
			}
			next.CPUPinning = *req.CPUPinning
			params[agentapi.KeyCPUs] = next.CPUPinning
		}
		if req.PreferredServers != nil {
			next.PreferredServers = strings.Join(preferred, " ")
		}
		if req.HA != nil {
			next.HA = *req.HA
			params[agentapi.KeyHA] = yesNoWire(next.HA)
		}
		if req.OSType != nil {
			next.OSType = *req.OSType
			params[agentapi.KeyOSType] = next.OSType
		}
		if req.BootOrder != nil {
			next.BootOrder = *req.BootOrder
			params[agentapi.KeyBoot] = bootLetters(next.BootOrder)
		}
		if req.StartPolicy != nil {
			next.StartPolicy = *req.StartPolicy
		}
		if req.OnCrash != nil && *req.OnCrash != v.OnCrash {
			next.OnCrash = *req.OnCrash
			params[agentapi.KeyOnCrash] = crashActionWire[next.OnCrash]
		}
		if err := m.editDirectBoot(ctx, req, v, &next, params); err != nil {
			return err
		}
		if len(params) > 0 {
			if err := m.configureVM(ctx, v, params); err != nil {
				return err
			}
		}
		if err := m.st.Write(ctx, func(q *store.Queries) error { return q.UpdateVM(ctx, next) }); err != nil {
			return &Error{Kind: KindInternal, Msg: "record Vm settings", Cause: err}
		}
		return nil
	})
}

// editMemory applies the memory and memoryLimit req changes to next and
// params. A running VM's memory changes live up to the maxmem it started
// with: its memoryLimit, or, when it has none, its memory (a decrease then
// lowers what it may grow back to, as it always has). Its memoryLimit
// changes only while it is stopped, and memory stays within it.
func editMemory(req EditVMRequest, v store.VM, next *store.VM, params agentapi.VMParams) error {
	if req.MemoryMiB == nil && req.MemoryLimitMiB == nil {
		return nil
	}
	running := v.Status == VMRunning
	if req.MemoryLimitMiB != nil {
		if running && *req.MemoryLimitMiB != v.MemoryLimitMiB {
			return errorf(KindInvalidState, "Vm %s is Running; changing memoryLimit (maxmem) needs Stopped", v.Name)
		}
		next.MemoryLimitMiB = *req.MemoryLimitMiB
	}
	if req.MemoryMiB != nil {
		next.MemoryMiB = *req.MemoryMiB
	}
	limit := next.MemoryLimitMiB
	if limit == 0 {
		limit = next.MemoryMiB
		if running {
			limit = v.MemoryMiB
		}
	}
	if next.MemoryMiB > limit {
		if running {
			return errorf(KindInvalidState, "Vm %s is Running with maxmem %d MiB; more memory needs Stopped (or a higher memoryLimit set while it is)", v.Name, limit)
		}
		return aboveLimit("memory", next.MemoryMiB, "memoryLimit", limit, " MiB")
	}
	params[agentapi.KeyMemory] = next.MemoryMiB
	if !running {
		params[agentapi.KeyMaxMem] = limit
	}
	return nil
}

// checkPinningOfVM checks a cpuPinning for VM v: its form, and, when v is
// on a server, that the server has the CPUs it names. A VM that is not on
// a server is checked where it starts or migrates to (placement).
func (m *Manager) checkPinningOfVM(ctx context.Context, pinning string, v store.VM) error {
	if v.ServerID == "" {
		_, err := highestPinnedCPU(pinning)
		return err
	}
	s, err := m.st.Read().Server(ctx, v.ServerID)
	if err != nil {
		return &Error{Kind: KindInternal, Msg: "read the VM's server", Cause: err}
	}
	return checkPinningOn(pinning, s)
}

// checkDirectBoot checks the direct-boot settings req changes, before any
// job: "" (a removal) always passes.
func (req EditVMRequest) checkDirectBoot() error {
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	return DirectBoot{Kernel: deref(req.Kernel), Ramdisk: deref(req.Ramdisk), Extra: deref(req.Extra)}.check()
}

// editDirectBoot applies the direct-boot settings req changes to next and
// the vm.cfg keys of params: kernel and ramdisk as paths under the mount
// point of the VM's repository, "" removing the key. Changing them needs
// the VM Stopped, as its domain type does: they decide what boots, and a
// running domain keeps what it booted.
func (m *Manager) editDirectBoot(ctx context.Context, req EditVMRequest, v store.VM, next *store.VM, params agentapi.VMParams) error {
	var repo store.Repository
	for _, c := range []struct {
		attr, key string
		to        *string
		setting   *string
		path      bool
	}{
		{"kernel", agentapi.KeyKernel, req.Kernel, &next.Kernel, true},
		{"ramdisk", agentapi.KeyRamdisk, req.Ramdisk, &next.Ramdisk, true},
		{"extra", agentapi.KeyExtra, req.Extra, &next.Extra, false},
	} {
		if c.to == nil || *c.to == *c.setting {
			continue
		}
		if v.Status == VMRunning {
			return errorf(KindInvalidState, "Vm %s is Running; changing %s needs Stopped", v.Name, c.attr)
		}
		*c.setting = *c.to
		if !c.path {
			params[c.key] = *c.to
			continue
		}
		if repo.ID == "" {
			r, err := m.st.Read().Repository(ctx, v.RepoID)
			if err != nil {
				return &Error{Kind: KindInternal, Msg: "read the VM's repository", Cause: err}
			}
			repo = r
		}
		params[c.key] = directBootParam(repo, *c.to)
	}
	return nil
}

// configureVM merges params into the VM's vm.cfg: through its server when
// it runs (which applies memory and vCPUs live), else through any server of
// the pool (the repository is shared).
func (m *Manager) configureVM(ctx context.Context, v store.VM, params agentapi.VMParams) error {
	var s store.Server
	var err error
	if v.ServerID != "" {
		s, err = m.st.Read().Server(ctx, v.ServerID)
		if err != nil {
			return &Error{Kind: KindInternal, Msg: "read the VM's server", Cause: err}
		}
	} else if s, _, err = m.poolServer(ctx, v.PoolID); err != nil {
		return errorf(KindInvalidState, "the VM's pool has no running server to write its configuration through")
	}
	c, err := m.clients.get(s)
	if err != nil {
		return err
	}
	if err := c.ConfigureVM(ctx, v.RepoID, v.ID, params); err != nil {
		return agentError("edit Vm "+v.Name, s.Name, err)
	}
	return nil
}

func yesNoWire(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// bootLetters turns DISK,CDROM into Xen's boot letters ("cd").
func bootLetters(order string) string {
	letters := map[string]string{"DISK": "c", "CDROM": "d", "PXE": "n"}
	var b strings.Builder
	for _, part := range strings.Split(order, ",") {
		b.WriteString(letters[part])
	}
	return b.String()
}

// validBootOrder reports whether order is one of BootOrders.
func validBootOrder(order string) error {
	for _, o := range BootOrders {
		if o == order {
			return nil
		}
	}
	return errorf(KindInvalidArgument, "bootOrder %q is not one of %s", order, strings.Join(BootOrders, ", "))
}
