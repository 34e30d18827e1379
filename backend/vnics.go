package backend

import (
	"context"
	"crypto/rand"
	"fmt"
	"regexp"
	"time"

	"xenmanager/store"
)

// Vnic is a VNIC as the operator sees it.
type Vnic struct {
	ID, Name, MAC string
	Vm            NamedRef
	Network       NamedRef
	CreatedAt     time.Time
}

func (v Vnic) String() string { return "Vnic " + v.Name }

// vnicKind resolves VNICs; a VNIC's pool is its VM's.
func (m *Manager) vnicKind() kind[store.Vnic] {
	q := m.st.Read()
	return kind[store.Vnic]{"Vnic", q.Vnic, q.VnicsByName, q.Vnics,
		func(x store.Vnic) string { return x.Name }, func(x store.Vnic) string { return x.ID },
		func(x store.Vnic) string {
			v, err := q.VM(context.Background(), x.VMID)
			if err != nil {
				return ""
			}
			return v.PoolID
		}}
}

// newMAC returns a random MAC in Oracle VM's 00:21:f6 range.
func newMAC() string {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return fmt.Sprintf("00:21:f6:%02x:%02x:%02x", b[0], b[1], b[2])
}

var macRx = regexp.MustCompile(`^[0-9a-f]{2}(:[0-9a-f]{2}){5}$`)

// CreateVnic adds a VNIC on a network to a stopped VM; mac "" picks one.
func (m *Manager) CreateVnic(ctx context.Context, name string, vm, network Ref, mac string) (Vnic, error) {
	if name != "" {
		var err error
		if name, err = ValidateName("Vnic", name); err != nil {
			return Vnic{}, err
		}
	}
	if mac != "" && !macRx.MatchString(mac) {
		return Vnic{}, errorf(KindInvalidArgument, "mac %q is not a MAC address such as 00:21:f6:12:34:56 (lower case)", mac)
	}
	n, err := resolve(ctx, m, m.networkKind(), network)
	if err != nil {
		return Vnic{}, err
	}
	var id string
	_, err = m.vmJob(ctx, vm, "edit", PermVMLifecycle, func(ctx context.Context, j *jobRun, v store.VM) error {
		if v.Status != VMStopped {
			return errorf(KindInvalidState, "Vm %s is %s; adding a Vnic needs Stopped", v.Name, v.Status)
		}
		if n.PoolID != v.PoolID {
			return errorf(KindInvalidArgument, "Network %s is not a network of the VM's server pool", n.Name)
		}
		existing, err := m.st.Read().VnicsOfVM(ctx, v.ID)
		if err != nil {
			return &Error{Kind: KindInternal, Msg: "read vnics", Cause: err}
		}
		vn := store.Vnic{ID: NewID(TypeVnic), Name: name, VMID: v.ID, NetworkID: n.ID, MAC: mac, CreatedAt: time.Now()}
		if vn.Name == "" {
			vn.Name = fmt.Sprintf("%s-eth%d", v.Name, len(existing))
		}
		if vn.MAC == "" {
			vn.MAC = newMAC()
		}
		id = vn.ID
		err = m.changeDevices(ctx, v, func(q *store.Queries) error { return q.InsertVnic(ctx, vn) },
			func(q *store.Queries) error { return q.DeleteVnic(ctx, vn.ID) })
		if KindOf(err) == KindConflict {
			return errorf(KindConflict, "mac %s is in use by another Vnic", vn.MAC)
		}
		return err
	})
	if err != nil {
		return Vnic{}, err
	}
	return m.Vnic(ctx, Ref{ID: id})
}

// DeleteVnic removes a VNIC from its stopped VM.
func (m *Manager) DeleteVnic(ctx context.Context, ref Ref) (Vnic, error) {
	vn, err := resolve(ctx, m, m.vnicKind(), ref)
	if err != nil {
		return Vnic{}, err
	}
	view, err := m.vnicView(ctx, vn)
	if err != nil {
		return Vnic{}, err
	}
	_, err = m.vmJob(ctx, Ref{ID: vn.VMID}, "edit", PermVMLifecycle, func(ctx context.Context, j *jobRun, v store.VM) error {
		if v.Status != VMStopped {
			return errorf(KindInvalidState, "Vm %s is %s; removing a Vnic needs Stopped", v.Name, v.Status)
		}
		return m.changeDevices(ctx, v, func(q *store.Queries) error { return q.DeleteVnic(ctx, vn.ID) },
			func(q *store.Queries) error { return q.InsertVnic(ctx, vn) })
	})
	if err != nil {
		return Vnic{}, err
	}
	return view, nil
}

// Vnics lists the VNICs of the VMs the actor may see (of vm, when given).
func (m *Manager) Vnics(ctx context.Context, vm Ref) ([]Vnic, error) {
	l, err := m.StreamVnics(ctx, vm)
	return collected(ctx, l, err)
}

// Vnic returns one VNIC.
func (m *Manager) Vnic(ctx context.Context, ref Ref) (Vnic, error) {
	vn, err := resolve(ctx, m, m.vnicKind(), ref)
	if err != nil {
		return Vnic{}, err
	}
	return m.vnicView(ctx, vn)
}

// vnicView shows a VNIC; a VM that is gone shows empty.
func (m *Manager) vnicView(ctx context.Context, vn store.Vnic) (Vnic, error) {
	v, err := optional(m.st.Read().VM(ctx, vn.VMID))
	if err != nil {
		return Vnic{}, err
	}
	return m.vnicViewOf(ctx, m.st.Read(), vn, v)
}

// vnicViewOf builds a VNIC's view when its VM is at hand; a network that
// is gone shows empty, a store that fails fails the view.
func (m *Manager) vnicViewOf(ctx context.Context, q *store.Queries, vn store.Vnic, v store.VM) (Vnic, error) {
	n, err := optional(q.Network(ctx, vn.NetworkID))
	if err != nil {
		return Vnic{}, err
	}
	return Vnic{ID: vn.ID, Name: vn.Name, MAC: vn.MAC, Vm: NamedRef{v.ID, v.Name}, Network: NamedRef{n.ID, n.Name}, CreatedAt: vn.CreatedAt}, nil
}
