package backend

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/store"
)

// Domain types a VM may have, as the protocol spells them.
const (
	DomainXenPVM          = "xen_pvm"
	DomainXenHVM          = "xen_hvm"
	DomainXenHVMPVDrivers = "xen_hvm_pv_drivers"
)

// DomainTypes are the domain types, in the order the command language
// lists them.
var DomainTypes = []string{DomainXenHVM, DomainXenHVMPVDrivers, DomainXenPVM}

// CreateVMRequest describes a new VM.
type CreateVMRequest struct {
	Name        string
	Repository  Ref
	Pool        Ref // optional; when set it must be the repository's pool
	MemoryMiB   int64
	CPUCount    int64
	DomainType  string // one of the Domain* constants; xen_hvm when empty
	Description string
	Disks       []Ref // mapped in order, from slot 0
	Networks    []Ref // one Vnic on each
	// DirectBoot is the kernel, ramdisk and command line of a direct
	// kernel boot; empty fields are not set.
	DirectBoot DirectBoot
	// HA marks the VM for restart elsewhere when its server dies.
	HA bool
	// OnCrash is the restartActionOnCrash, one of RestartActionsOnCrash;
	// Restart when empty.
	OnCrash string
	// MemoryLimitMiB and CPUCountLimit are maxmem and maxvcpus, what memory
	// and vCPUs may grow to while the VM runs; 0 follows MemoryMiB and
	// CPUCount. Checked as EditVM checks them.
	MemoryLimitMiB, CPUCountLimit int64
	// OSType is the guest's operating system, for information; "" for the
	// default.
	OSType string
	// BootOrder is one of BootOrders; "" for DISK.
	BootOrder string
}

// checkLimits refuses limits below what they limit and a boot order that
// is not one of BootOrders, as EditVM does.
func (req CreateVMRequest) checkLimits() error {
	if req.MemoryLimitMiB != 0 && req.MemoryMiB > req.MemoryLimitMiB {
		return aboveLimit("memory", req.MemoryMiB, "memoryLimit", req.MemoryLimitMiB, " MiB")
	}
	if req.CPUCountLimit != 0 && req.CPUCount > req.CPUCountLimit {
		return aboveLimit("cpuCount", req.CPUCount, "cpuCountLimit", req.CPUCountLimit, "")
	}
	if req.BootOrder != "" {
		return validBootOrder(req.BootOrder)
	}
	return nil
}

// CreateVM writes the VM's vm.cfg into the repository through a server of
// the pool and then records it, Stopped. A failure at the agent leaves
// nothing in the store.
func (m *Manager) CreateVM(ctx context.Context, req CreateVMRequest) (VM, error) {
	var err error
	if req.Name, err = ValidateName("Vm", req.Name); err != nil {
		return VM{}, err
	}
	if err := checkVMSizes(&req.MemoryMiB, nonZero(req.MemoryLimitMiB), &req.CPUCount, nonZero(req.CPUCountLimit)); err != nil {
		return VM{}, err
	}
	if err := req.checkLimits(); err != nil {
		return VM{}, err
	}
	if err := req.DirectBoot.check(); err != nil {
		return VM{}, err
	}
	if req.OnCrash == "" {
		req.OnCrash = OnCrashRestart
	}
	if _, err := onCrashWire(req.OnCrash); err != nil {
		return VM{}, err
	}
	switch req.DomainType {
	case "":
		req.DomainType = DomainXenHVM
	case DomainXenPVM, DomainXenHVM, DomainXenHVMPVDrivers:
	default:
		return VM{}, errorf(KindInvalidArgument, "domain type %q is not one of %s, %s, %s", req.DomainType, DomainXenHVM, DomainXenHVMPVDrivers, DomainXenPVM)
	}
	repo, err := m.findRepository(ctx, req.Repository)
	if err != nil {
		return VM{}, err
	}
	if err := m.authorize(ctx, PermVMLifecycle); err != nil {
		return VM{}, err
	}
	if req.Pool != (Ref{}) {
		p, err := m.findPool(ctx, req.Pool)
		if err != nil {
			return VM{}, err
		}
		if p.ID != repo.PoolID {
			owner, err := optional(m.st.Read().ServerPool(ctx, repo.PoolID))
			if err != nil {
				return VM{}, err
			}
			return VM{}, errorf(KindInvalidArgument, "Repository %s belongs to ServerPool %s, not %s", repo.Name, owner.Name, p.Name)
		}
	}
	var disks []store.VirtualDisk
	for _, r := range req.Disks {
		d, err := resolve(ctx, m, m.diskKind(), r)
		if err != nil {
			return VM{}, err
		}
		dr, err := optional(m.st.Read().Repository(ctx, d.RepoID))
		if err != nil {
			return VM{}, err
		}
		if dr.ID == "" || dr.PoolID != repo.PoolID {
			return VM{}, errorf(KindInvalidArgument, "VirtualDisk %s is not in a repository of the VM's server pool", d.Name)
		}
		for _, prev := range disks {
			if prev.ID == d.ID {
				return VM{}, errorf(KindInvalidArgument, "VirtualDisk %s is given twice in disks=; a disk is in a VM once", d.Name)
			}
		}
		disks = append(disks, d)
	}
	var networks []store.Network
	for _, r := range req.Networks {
		n, err := resolve(ctx, m, m.networkKind(), r)
		if err != nil {
			return VM{}, err
		}
		if n.PoolID != repo.PoolID {
			return VM{}, errorf(KindInvalidArgument, "Network %s is not a network of the VM's server pool", n.Name)
		}
		networks = append(networks, n)
	}
	return jobValue[VM](m.job(ctx, actorFrom(ctx), repo.PoolID, "create Vm", "create Vm "+req.Name, nil,
		func(ctx context.Context, j *jobRun) (any, error) { return m.createVM(ctx, req, repo, disks, networks) }))
}

func (m *Manager) createVM(ctx context.Context, req CreateVMRequest, repo store.Repository, disks []store.VirtualDisk, networks []store.Network) (VM, error) {
	srv, c, err := m.poolServer(ctx, repo.PoolID)
	if errors.Is(err, errNoServer) {
		pool, err := optional(m.st.Read().ServerPool(ctx, repo.PoolID))
		if err != nil {
			return VM{}, err
		}
		return VM{}, errorf(KindInvalidState, "ServerPool %s has no running server to write the VM's configuration through", pool.Name)
	}
	if err != nil {
		return VM{}, err
	}
	v := store.VM{ID: NewID(TypeVM), Name: req.Name, PoolID: repo.PoolID, RepoID: repo.ID, Status: VMStopped,
		MemoryMiB: req.MemoryMiB, CPUCount: req.CPUCount, DomainType: req.DomainType, Description: req.Description,
		Kernel: req.DirectBoot.Kernel, Ramdisk: req.DirectBoot.Ramdisk, Extra: req.DirectBoot.Extra, HA: req.HA, OnCrash: req.OnCrash,
		CreatedAt: time.Now(), MemoryLimitMiB: req.MemoryLimitMiB, CPUCountLimit: req.CPUCountLimit, OSType: req.OSType, BootOrder: req.BootOrder}
	params := agentapi.VMParams{
		agentapi.KeyName:        v.ID,
		agentapi.KeyUUID:        v.ID,
		agentapi.KeySimpleName:  v.Name,
		agentapi.KeyDescription: v.Description,
		agentapi.KeyDomainType:  v.DomainType,
		agentapi.KeyMemory:      v.MemoryMiB,
		agentapi.KeyMaxMem:      max(v.MemoryLimitMiB, v.MemoryMiB),
		agentapi.KeyVCPUs:       v.CPUCount,
		agentapi.KeyMaxVCPUs:    max(v.CPUCountLimit, v.CPUCount),
		agentapi.KeyDisk:        []string{},
		agentapi.KeyVif:         []string{},
		agentapi.KeyBoot:        "c",
		agentapi.KeyOnPoweroff:  "destroy",
		agentapi.KeyOnReboot:    "restart",
		agentapi.KeyOnCrash:     crashActionWire[v.OnCrash],
	}
	if req.HA {
		params[agentapi.KeyHA] = yesNoWire(true)
	}
	if v.OSType != "" {
		params[agentapi.KeyOSType] = v.OSType
	}
	if v.BootOrder != "" {
		params[agentapi.KeyBoot] = bootLetters(v.BootOrder)
	}
	for key, value := range req.DirectBoot.params(repo) {
		params[key] = value
	}
	var maps []store.DiskMapping
	var diskList, vifList []string
	for i, d := range disks {
		dr, err := optional(m.st.Read().Repository(ctx, d.RepoID))
		if err != nil {
			return VM{}, err
		}
		maps = append(maps, store.DiskMapping{ID: NewID(TypeDiskMapping), VMID: v.ID, DiskID: d.ID, Slot: i, CreatedAt: time.Now()})
		diskList = append(diskList, diskEntry(dr, d, i))
	}
	var vnics []store.Vnic
	for i, n := range networks {
		vn := store.Vnic{ID: NewID(TypeVnic), Name: fmt.Sprintf("%s-eth%d", v.Name, i), VMID: v.ID, NetworkID: n.ID,
			MAC: newMAC(), CreatedAt: time.Now().Add(time.Duration(i))}
		vnics = append(vnics, vn)
		vifList = append(vifList, "mac="+vn.MAC+",bridge="+n.Bridge)
	}
	if diskList != nil {
		params[agentapi.KeyDisk] = diskList
	}
	if vifList != nil {
		params[agentapi.KeyVif] = vifList
	}
	what := "create Vm " + v.Name
	if err := c.CreateVM(ctx, repo.ID, v.ID, params); err != nil {
		return VM{}, agentError(what, srv.Name, err)
	}
	err = m.st.Write(ctx, func(q *store.Queries) error {
		if err := q.InsertVM(ctx, v); err != nil {
			return err
		}
		for _, mp := range maps {
			if err := q.InsertDiskMapping(ctx, mp); err != nil {
				if errors.Is(err, store.ErrConflict) {
					return errorf(KindConflict, "a disk given in disks= is in use by another VM and not shareable")
				}
				return err
			}
		}
		for _, vn := range vnics {
			if err := q.InsertVnic(ctx, vn); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Take back what the agent wrote, so that nothing is half-made.
		if derr := c.DeleteVM(context.WithoutCancel(ctx), repo.ID, v.ID); derr != nil {
			m.log.Error("could not remove vm.cfg after a failed create", "vm", v.ID, "err", derr)
		}
		if KindOf(err) != KindInternal {
			return VM{}, err
		}
		return VM{}, &Error{Kind: KindInternal, Msg: "record Vm " + v.Name, Cause: err}
	}
	m.log.Info("vm created", "vm", v.Name, "id", v.ID, "repository", repo.Name)
	return m.VM(ctx, Ref{ID: v.ID})
}

func (m *Manager) findVM(ctx context.Context, ref Ref) (store.VM, error) {
	return resolve(ctx, m, m.vmKind(), ref)
}

// vmSummaryKind is vmKind reading the 8 columns of VMSummary instead of
// all 24 when it reads every VM (a pattern): FindVMs needs no more.
func (m *Manager) vmSummaryKind() kind[store.VMSummary] {
	q := m.st.Read()
	summary := func(v store.VM) store.VMSummary {
		return store.VMSummary{ID: v.ID, Name: v.Name, PoolID: v.PoolID, RepoID: v.RepoID, ServerID: v.ServerID,
			Status: v.Status, MemoryMiB: v.MemoryMiB, CPUCount: v.CPUCount}
	}
	return kind[store.VMSummary]{"Vm",
		func(ctx context.Context, id string) (store.VMSummary, error) {
			v, err := q.VM(ctx, id)
			return summary(v), err
		},
		func(ctx context.Context, name string) ([]store.VMSummary, error) {
			vs, err := q.VMsByName(ctx, name)
			out := make([]store.VMSummary, len(vs))
			for i, v := range vs {
				out[i] = summary(v)
			}
			return out, err
		},
		q.VMSummaries,
		func(x store.VMSummary) string { return x.Name }, func(x store.VMSummary) string { return x.ID },
		func(x store.VMSummary) string { return x.PoolID }}
}

// VMSummary is a VM as a listing shows it.
type VMSummary struct {
	ID, Name, Status         string
	Server, Pool, Repository NamedRef
	MemoryMiB, CPUCount      int64
}

// ListVMs returns the summaries of the VMs that pass f, by name: what
// list Vm shows, read without the settings only show Vm needs. It holds
// them all; list Vm streams them (StreamVMs).
func (m *Manager) ListVMs(ctx context.Context, f Filter) ([]VMSummary, error) {
	l, err := m.StreamVMs(ctx, f)
	if err != nil {
		return nil, err
	}
	return l.Collect(ctx)
}

// StreamVMs is list Vm: the filter is compiled now (a filter naming
// nothing fails here, before any row), the VMs are read when the listing
// is iterated, from one snapshot of the store, and each passes the filter
// and the actor's pools as it is read, so that the manager holds one row
// at a time whatever the number of VMs.
func (m *Manager) StreamVMs(ctx context.Context, f Filter) (Listing[VMSummary], error) {
	c, err := m.compile(ctx, f)
	if err != nil {
		return Listing[VMSummary]{}, err
	}
	return streamed(m, "VMs", func(ctx context.Context, q *store.Queries) (iter.Seq2[store.VMSummary, error], func(store.VMSummary) (VMSummary, bool, error), error) {
		inv, err := inventoryOf(ctx, q)
		if err != nil {
			return nil, nil, err
		}
		return q.EachVMSummary(ctx), func(v store.VMSummary) (VMSummary, bool, error) {
			status := inv.vmStatus(v.Status, v.ServerID)
			if !c.match(v.ID, v.Name, status, v.ServerID, v.PoolID, v.RepoID) {
				return VMSummary{}, false, nil
			}
			return VMSummary{ID: v.ID, Name: v.Name, Status: status, Server: inv.serverRef(v.ServerID), Pool: inv.poolRef(v.PoolID),
				Repository: inv.repoRef(v.RepoID), MemoryMiB: v.MemoryMiB, CPUCount: v.CPUCount}, true, nil
		}, nil
	}), nil
}

// FindVMs returns the id and name of every VM ref names: by id, by name,
// or by glob pattern, for actions on several VMs at once (SelectVMs
// without filters).
func (m *Manager) FindVMs(ctx context.Context, ref Ref) ([]NamedRef, error) {
	return m.SelectVMs(ctx, ref, Filter{})
}

// VM returns the VM ref names, with its disks, ISOs, VNICs and tags.
func (m *Manager) VM(ctx context.Context, ref Ref) (VM, error) {
	return show(ctx, m, m.vmShownKind(), ref, func(inv *inventory, v store.VMShown) (VM, error) { return m.vmDevicesView(ctx, inv, v) })
}

// vmDevicesView is show Vm's view: the VM with its disks, ISOs, VNICs and
// tags, read with the VM (or, when the VM was found by a pattern, in one
// query after it). A disk or ISO deleted meanwhile shows with empty names,
// as it always has; a store that fails fails the show instead of leaving
// devices out.
func (m *Manager) vmDevicesView(ctx context.Context, inv *inventory, v store.VMShown) (VM, error) {
	view := inv.vmView(v.VM)
	devices := v.Devices
	if !v.WithDevices {
		var err error
		if devices, err = m.st.Read().VMDevices(ctx, v.ID); err != nil {
			return VM{}, &Error{Kind: KindInternal, Msg: "read the VM's devices", Cause: err}
		}
	}
	for _, d := range devices {
		ref := NamedRef{d.ID, d.Name}
		switch d.Kind {
		case store.DeviceDisk:
			view.Disks = append(view.Disks, ref)
		case store.DeviceCdrom:
			view.Cdroms = append(view.Cdroms, ref)
		case store.DeviceVnic:
			view.Vnics = append(view.Vnics, ref)
		case store.DeviceTag:
			view.Tags = append(view.Tags, d.Name)
		}
	}
	return view, nil
}
