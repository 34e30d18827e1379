package backend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
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
	q := m.st.Read()
	return resolve(ctx, "Vm", ref, q.VM, q.VMsByName, q.VMs,
		func(x store.VM) string { return x.Name }, func(x store.VM) string { return x.ID })
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
		if c.match(v.Name, v.Status, v.ServerID, v.PoolID, v.RepoID) {
			out = append(out, inv.vmView(v))
		}
	}
	return out, nil
}

// FindVMs returns every VM ref names: by id, by name, or by glob pattern, for
// actions on several VMs at once.
func (m *Manager) FindVMs(ctx context.Context, ref Ref) ([]VM, error) {
	q := m.st.Read()
	found, err := resolveAll(ctx, "Vm", ref, q.VM, q.VMsByName, q.VMs, func(x store.VM) string { return x.Name })
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

// lockVM finds the VM, takes its lock and re-reads it under the lock, so
// that the state checked is the state acted on.
func (m *Manager) lockVM(ctx context.Context, ref Ref) (store.VM, func(), error) {
	v, err := m.findVM(ctx, ref)
	if err != nil {
		return store.VM{}, nil, err
	}
	unlock, err := m.locks.lock(ctx, v.ID)
	if err != nil {
		return store.VM{}, nil, err
	}
	v, err = m.st.Read().VM(ctx, v.ID)
	if err != nil {
		unlock()
		if errors.Is(err, store.ErrNotFound) {
			return store.VM{}, nil, errorf(KindNotFound, "Vm %s was deleted meanwhile", ref)
		}
		return store.VM{}, nil, &Error{Kind: KindInternal, Msg: "read Vm", Cause: err}
	}
	return v, unlock, nil
}

func needState(v store.VM, verb string, want ...string) error {
	for _, w := range want {
		if v.Status == w {
			return nil
		}
	}
	return errorf(KindInvalidState, "Vm %s is %s; %s needs %s", v.Name, v.Status, verb, joinOr(want))
}

func joinOr(s []string) string {
	switch len(s) {
	case 1:
		return s[0]
	case 2:
		return s[0] + " or " + s[1]
	}
	return fmt.Sprint(s)
}

// StartVM places the VM on the pool's server with the most free memory that
// fits it (ties to the fewest VMs) and starts it there.
func (m *Manager) StartVM(ctx context.Context, ref Ref) (VM, error) {
	v, unlock, err := m.lockVM(ctx, ref)
	if err != nil {
		return VM{}, err
	}
	defer unlock()
	if err := needState(v, "start", VMStopped); err != nil {
		return VM{}, err
	}
	candidates, err := m.place(ctx, v)
	if err != nil {
		return VM{}, err
	}
	var lastErr error
	for _, cand := range candidates {
		err := cand.client.StartVM(ctx, v.RepoID, v.ID)
		if err != nil && errors.Is(err, agentclient.ErrUnreachable) {
			// The call may have succeeded with its answer lost: ask before
			// deciding, or the VM could end up running twice.
			if running, known := m.domainRunning(ctx, cand.client, v); known && running {
				m.log.Warn("start_vm answer lost but the domain runs; recording it", "vm", v.Name, "server", cand.server.Name)
				err = nil
			}
		}
		if err == nil {
			if err := m.st.Write(ctx, func(q *store.Queries) error { return q.SetVMState(ctx, v.ID, cand.server.ID, VMRunning) }); err != nil {
				return VM{}, &Error{Kind: KindInternal, Msg: "record Vm state", Cause: err}
			}
			m.log.Info("vm started", "vm", v.Name, "server", cand.server.Name)
			return m.VM(ctx, Ref{ID: v.ID})
		}
		lastErr = agentError("start Vm "+v.Name, cand.server.Name, err)
		if f, ok := agentapi.AsFault(err); ok && f.Code == agentapi.FaultInsufficientResources {
			continue // the server filled up since we asked; try the next
		}
		return VM{}, lastErr
	}
	return VM{}, lastErr
}

// StopVM shuts the VM down cleanly.
func (m *Manager) StopVM(ctx context.Context, ref Ref) (VM, error) {
	v, unlock, err := m.lockVM(ctx, ref)
	if err != nil {
		return VM{}, err
	}
	defer unlock()
	if err := needState(v, "stop", VMRunning); err != nil {
		return VM{}, err
	}
	s, err := m.st.Read().Server(ctx, v.ServerID)
	if err != nil {
		return VM{}, &Error{Kind: KindInternal, Msg: "read the VM's server", Cause: err}
	}
	c, err := m.client(s)
	if err != nil {
		return VM{}, err
	}
	err = c.StopVM(ctx, v.RepoID, v.ID, false)
	if err != nil && errors.Is(err, agentclient.ErrUnreachable) {
		if running, known := m.domainRunning(ctx, c, v); known && !running {
			m.log.Warn("stop_vm answer lost but the domain is gone; recording it", "vm", v.Name, "server", s.Name)
			err = nil
		}
	}
	if err != nil {
		f, ok := agentapi.AsFault(err)
		if !ok || f.Code != agentapi.FaultNotFound {
			return VM{}, agentError("stop Vm "+v.Name, s.Name, err)
		}
		// The domain is already gone (it shut itself down): record that.
		m.log.Warn("vm was not running on its server; recording it stopped", "vm", v.Name, "server", s.Name)
	}
	if err := m.st.Write(ctx, func(q *store.Queries) error { return q.SetVMState(ctx, v.ID, "", VMStopped) }); err != nil {
		return VM{}, &Error{Kind: KindInternal, Msg: "record Vm state", Cause: err}
	}
	return m.VM(ctx, Ref{ID: v.ID})
}

// DeleteVM removes a stopped VM's files from the repository and its record.
func (m *Manager) DeleteVM(ctx context.Context, ref Ref) (VM, error) {
	v, unlock, err := m.lockVM(ctx, ref)
	if err != nil {
		return VM{}, err
	}
	defer unlock()
	if err := needState(v, "delete", VMStopped); err != nil {
		return VM{}, err
	}
	inv, err := m.inventory(ctx)
	if err != nil {
		return VM{}, err
	}
	view := inv.vmView(v)
	srv, c, err := m.poolServer(ctx, v.PoolID)
	if errors.Is(err, errNoServer) {
		return VM{}, errorf(KindInvalidState, "ServerPool %s has no running server to delete the VM's files through", view.Pool.Name)
	}
	if err != nil {
		return VM{}, err
	}
	if err := c.DeleteVM(ctx, v.RepoID, v.ID); err != nil {
		f, ok := agentapi.AsFault(err)
		if !ok || f.Code != agentapi.FaultNotFound {
			return VM{}, agentError("delete Vm "+v.Name, srv.Name, err)
		}
		m.log.Warn("vm files were already gone", "vm", v.Name)
	}
	if err := m.st.Write(ctx, func(q *store.Queries) error { return q.DeleteVM(ctx, v.ID) }); err != nil {
		return VM{}, &Error{Kind: KindInternal, Msg: "delete Vm record", Cause: err}
	}
	m.log.Info("vm deleted", "vm", v.Name, "id", v.ID)
	return view, nil
}

// domainRunning asks the server whether the VM's domain is live there, for
// when a call's answer was lost. known is false when the server does not
// answer this either.
func (m *Manager) domainRunning(ctx context.Context, c *agentclient.Client, v store.VM) (running, known bool) {
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.timeout)
	defer cancel()
	_, err := c.ListVM(qctx, v.RepoID, v.ID)
	if err == nil {
		return true, true
	}
	if f, ok := agentapi.AsFault(err); ok && f.Code == agentapi.FaultNotFound {
		return false, true
	}
	return false, false
}
