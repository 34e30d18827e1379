package backend

import (
	"context"
	"errors"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/store"
)

// Domain types a VM may have, as the protocol spells them.
const (
	DomainXenPVM          = "xen_pvm"
	DomainXenHVM          = "xen_hvm"
	DomainXenHVMPVDrivers = "xen_hvm_pv_drivers"
	maxVMMemoryMiB        = 16 * 1024 * 1024 // 16 TiB, well past any server
	maxVMCPUs             = 4096
)

// CreateVMRequest describes a new VM.
type CreateVMRequest struct {
	Name        string
	Repository  Ref
	Pool        Ref // optional; when set it must be the repository's pool
	MemoryMiB   int64
	CPUCount    int64
	DomainType  string // one of the Domain* constants; xen_hvm when empty
	Description string
}

// CreateVM writes the VM's vm.cfg into the repository through a server of
// the pool and then records it, Stopped. A failure at the agent leaves
// nothing in the store.
func (m *Manager) CreateVM(ctx context.Context, req CreateVMRequest) (VM, error) {
	if err := ValidateName("Vm", req.Name); err != nil {
		return VM{}, err
	}
	if req.MemoryMiB < 1 || req.MemoryMiB > maxVMMemoryMiB {
		return VM{}, errorf(KindInvalidArgument, "memory %d MiB is out of range: use 1 to %d", req.MemoryMiB, maxVMMemoryMiB)
	}
	if req.CPUCount < 1 || req.CPUCount > maxVMCPUs {
		return VM{}, errorf(KindInvalidArgument, "cpuCount %d is out of range: use 1 to %d", req.CPUCount, maxVMCPUs)
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
			owner, _ := m.st.Read().ServerPool(ctx, repo.PoolID)
			return VM{}, errorf(KindInvalidArgument, "Repository %s belongs to ServerPool %s, not %s", repo.Name, owner.Name, p.Name)
		}
	}
	return jobValue[VM](m.job(ctx, actorFrom(ctx), "create Vm "+req.Name, nil,
		func(ctx context.Context, j *jobRun) (any, error) { return m.createVM(ctx, req, repo) }))
}

func (m *Manager) createVM(ctx context.Context, req CreateVMRequest, repo store.Repository) (VM, error) {
	srv, c, err := m.poolServer(ctx, repo.PoolID)
	if errors.Is(err, errNoServer) {
		pool, _ := m.st.Read().ServerPool(ctx, repo.PoolID)
		return VM{}, errorf(KindInvalidState, "ServerPool %s has no running server to write the VM's configuration through", pool.Name)
	}
	if err != nil {
		return VM{}, err
	}
	v := store.VM{ID: NewID(TypeVM), Name: req.Name, PoolID: repo.PoolID, RepoID: repo.ID, Status: VMStopped,
		MemoryMiB: req.MemoryMiB, CPUCount: req.CPUCount, DomainType: req.DomainType, Description: req.Description,
		CreatedAt: time.Now()}
	params := agentapi.VMParams{
		agentapi.KeyName:        v.ID,
		agentapi.KeyUUID:        v.ID,
		agentapi.KeySimpleName:  v.Name,
		agentapi.KeyDescription: v.Description,
		agentapi.KeyDomainType:  v.DomainType,
		agentapi.KeyMemory:      v.MemoryMiB,
		agentapi.KeyMaxMem:      v.MemoryMiB,
		agentapi.KeyVCPUs:       v.CPUCount,
		agentapi.KeyMaxVCPUs:    v.CPUCount,
		agentapi.KeyDisk:        []string{},
		agentapi.KeyVif:         []string{},
		agentapi.KeyOnPoweroff:  "destroy",
		agentapi.KeyOnReboot:    "restart",
		agentapi.KeyOnCrash:     "restart",
	}
	what := "create Vm " + v.Name
	if err := c.CreateVM(ctx, repo.ID, v.ID, params); err != nil {
		return VM{}, agentError(what, srv.Name, err)
	}
	if err := m.st.Write(ctx, func(q *store.Queries) error { return q.InsertVM(ctx, v) }); err != nil {
		// Take back what the agent wrote, so that nothing is half-made.
		if derr := c.DeleteVM(context.WithoutCancel(ctx), repo.ID, v.ID); derr != nil {
			m.log.Error("could not remove vm.cfg after a failed create", "vm", v.ID, "err", derr)
		}
		return VM{}, &Error{Kind: KindInternal, Msg: "record Vm " + v.Name, Cause: err}
	}
	m.log.Info("vm created", "vm", v.Name, "id", v.ID, "repository", repo.Name)
	return m.VM(ctx, Ref{ID: v.ID})
}

func (m *Manager) findVM(ctx context.Context, ref Ref) (store.VM, error) {
	return resolve(ctx, m, m.vmKind(), ref)
}

// VMs lists the VMs that pass f.
func (m *Manager) VMs(ctx context.Context, f Filter) ([]VM, error) {
	c, err := m.compile(ctx, f)
	if err != nil {
		return nil, err
	}
	inv, err := m.inventory(ctx)
	if err != nil {
		return nil, err
	}
	vms, err := m.st.Read().VMs(ctx)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read VMs", Cause: err}
	}
	out := make([]VM, 0, len(vms))
	for _, v := range vms {
		if c.match(v.ID, v.Name, v.Status, v.ServerID, v.PoolID, v.RepoID) {
			out = append(out, inv.vmView(v))
		}
	}
	return out, nil
}

// FindVMs returns every VM ref names: by id, by name, or by glob pattern, for
// actions on several VMs at once.
func (m *Manager) FindVMs(ctx context.Context, ref Ref) ([]VM, error) {
	found, err := resolveAll(ctx, m, m.vmKind(), ref)
	if err != nil {
		return nil, err
	}
	inv, err := m.inventory(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]VM, len(found))
	for i, v := range found {
		out[i] = inv.vmView(v)
	}
	return out, nil
}

// VM returns the VM ref names.
func (m *Manager) VM(ctx context.Context, ref Ref) (VM, error) {
	v, err := m.findVM(ctx, ref)
	if err != nil {
		return VM{}, err
	}
	inv, err := m.inventory(ctx)
	if err != nil {
		return VM{}, err
	}
	return inv.vmView(v), nil
}
