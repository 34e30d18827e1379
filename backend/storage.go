package backend

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/store"
)

// Id type codes of networks, disks, mappings and VNICs.
const (
	TypeNetwork     ObjectType = "0010"
	TypeVirtualDisk ObjectType = "0012"
	TypeDiskMapping ObjectType = "0013"
	TypeVnic        ObjectType = "0007"
)

// Network is a network as the operator sees it.
type Network struct {
	ID, Name, Bridge, Description string
	Pool                          NamedRef
	Vnics                         int
	CreatedAt                     time.Time
}

func (n Network) String() string { return "Network " + n.Name }

// VirtualDisk is a disk as the operator sees it.
type VirtualDisk struct {
	ID, Name, Description string
	Repository            NamedRef
	SizeMiB               int64
	Sparse                bool
	Vm                    NamedRef // the VM it is mapped to, if any
	Slot                  int
	Path                  string // as the servers see it
	CreatedAt             time.Time
}

func (d VirtualDisk) String() string { return "VirtualDisk " + d.Name }

// DiskMapping is a disk, or an ISO, in a VM's slot.
type DiskMapping struct {
	ID    string
	Vm    NamedRef
	Disk  NamedRef // empty for an ISO
	Cdrom NamedRef // empty for a disk
	Slot  int
}

// Vnic is a VNIC as the operator sees it.
type Vnic struct {
	ID, Name, MAC string
	Vm            NamedRef
	Network       NamedRef
	CreatedAt     time.Time
}

func (v Vnic) String() string { return "Vnic " + v.Name }

func (m *Manager) networkKind() kind[store.Network] {
	q := m.st.Read()
	return kind[store.Network]{"Network", q.Network, q.NetworksByName, q.Networks,
		func(x store.Network) string { return x.Name }, func(x store.Network) string { return x.ID }, func(x store.Network) string { return x.PoolID }}
}

// diskKind resolves disks; a disk's pool is its repository's.
func (m *Manager) diskKind() kind[store.VirtualDisk] {
	q := m.st.Read()
	return kind[store.VirtualDisk]{"VirtualDisk", q.VirtualDisk, q.VirtualDisksByName, q.VirtualDisks,
		func(x store.VirtualDisk) string { return x.Name }, func(x store.VirtualDisk) string { return x.ID },
		func(x store.VirtualDisk) string {
			r, err := q.Repository(context.Background(), x.RepoID)
			if err != nil {
				return ""
			}
			return r.PoolID
		}}
}

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

var bridgeRx = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)

// CreateNetwork records a network of a pool on a bridge the servers have.
func (m *Manager) CreateNetwork(ctx context.Context, name string, pool Ref, bridge, description string) (Network, error) {
	if err := ValidateName("Network", name); err != nil {
		return Network{}, err
	}
	if bridge == "" {
		bridge = "xenbr0"
	}
	if !bridgeRx.MatchString(bridge) {
		return Network{}, errorf(KindInvalidArgument, "bridge %q is not a Linux bridge name (1 to 15 letters, digits, _ . -)", bridge)
	}
	p, err := m.findPool(ctx, pool)
	if err != nil {
		return Network{}, err
	}
	if err := m.authorize(ctx, PermManage); err != nil {
		return Network{}, err
	}
	n := store.Network{ID: NewID(TypeNetwork), Name: name, PoolID: p.ID, Bridge: bridge, Description: description, CreatedAt: time.Now()}
	if err := m.st.Write(ctx, func(q *store.Queries) error { return q.InsertNetwork(ctx, n) }); err != nil {
		return Network{}, &Error{Kind: KindInternal, Msg: "record network", Cause: err}
	}
	return m.Network(ctx, Ref{ID: n.ID})
}

// Networks lists the networks that pass f (name, pool).
func (m *Manager) Networks(ctx context.Context, f Filter) ([]Network, error) {
	c, err := m.compile(ctx, f)
	if err != nil {
		return nil, err
	}
	rows, err := m.st.Read().Networks(ctx)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read networks", Cause: err}
	}
	var out []Network
	for _, n := range rows {
		if c.match(n.ID, n.Name, "", "", n.PoolID, "") {
			out = append(out, m.networkView(ctx, n))
		}
	}
	return out, nil
}

// Network returns one network.
func (m *Manager) Network(ctx context.Context, ref Ref) (Network, error) {
	n, err := resolve(ctx, m, m.networkKind(), ref)
	if err != nil {
		return Network{}, err
	}
	return m.networkView(ctx, n), nil
}

func (m *Manager) networkView(ctx context.Context, n store.Network) Network {
	p, _ := m.st.Read().ServerPool(ctx, n.PoolID)
	count, _ := m.st.Read().CountWhere(ctx, "vnics.network_id", n.ID)
	return Network{ID: n.ID, Name: n.Name, Bridge: n.Bridge, Description: n.Description, Pool: NamedRef{p.ID, p.Name},
		Vnics: count, CreatedAt: n.CreatedAt}
}

// DeleteNetwork deletes a network no VNIC uses.
func (m *Manager) DeleteNetwork(ctx context.Context, ref Ref) (Network, error) {
	n, err := resolve(ctx, m, m.networkKind(), ref)
	if err != nil {
		return Network{}, err
	}
	if err := m.authorize(ctx, PermManage); err != nil {
		return Network{}, err
	}
	view := m.networkView(ctx, n)
	if view.Vnics > 0 {
		return Network{}, errorf(KindConflict, "Network %s is in use by %d Vnics; delete them first (list Vnic)", n.Name, view.Vnics)
	}
	if err := m.st.Write(ctx, func(q *store.Queries) error { return q.DeleteNetwork(ctx, n.ID) }); err != nil {
		return Network{}, &Error{Kind: KindInternal, Msg: "delete network", Cause: err}
	}
	return view, nil
}

// diskPath is where the servers of the pool see a disk's image.
func diskPath(r store.Repository, diskID string) string {
	return r.MountPoint + "/VirtualDisks/" + diskID + ".img"
}

// CreateVirtualDisk makes a disk image in a repository through a server of
// its pool (create_virtual_disk: sparse, or allocated) and records it.
func (m *Manager) CreateVirtualDisk(ctx context.Context, name string, repo Ref, sizeMiB int64, sparse bool, description string) (VirtualDisk, error) {
	if err := ValidateName("VirtualDisk", name); err != nil {
		return VirtualDisk{}, err
	}
	if sizeMiB < VirtualDiskMiB.Min || sizeMiB > VirtualDiskMiB.Max {
		return VirtualDisk{}, errorf(KindInvalidArgument, "size %d MiB is out of range: use 1 MiB to 64 TiB", sizeMiB)
	}
	r, err := m.findRepository(ctx, repo)
	if err != nil {
		return VirtualDisk{}, err
	}
	if err := m.authorize(ctx, PermVMLifecycle); err != nil {
		return VirtualDisk{}, err
	}
	d := store.VirtualDisk{ID: NewID(TypeVirtualDisk), Name: name, RepoID: r.ID, SizeMiB: sizeMiB, Sparse: sparse,
		Description: description, CreatedAt: time.Now()}
	return jobValue[VirtualDisk](m.job(ctx, actorFrom(ctx), r.PoolID, "create VirtualDisk "+name, nil, func(ctx context.Context, j *jobRun) (any, error) {
		srv, c, err := m.poolServer(ctx, r.PoolID)
		if errors.Is(err, errNoServer) {
			return nil, errorf(KindInvalidState, "the repository's pool has no running server to create the disk through")
		}
		if err != nil {
			return nil, err
		}
		j.progress(10, "creating the image on "+srv.Name)
		if err := c.CreateVirtualDisk(ctx, r.ID, d.ID, sizeMiB, sparse); err != nil {
			return nil, agentError("create VirtualDisk "+name, srv.Name, err)
		}
		if err := m.st.Write(ctx, func(q *store.Queries) error { return q.InsertVirtualDisk(ctx, d) }); err != nil {
			if derr := c.DeleteVirtualDisk(ctx, r.ID, d.ID); derr != nil {
				m.log.Error("could not remove a disk image after a failed create", "disk", d.ID, "err", derr)
			}
			return nil, &Error{Kind: KindInternal, Msg: "record disk", Cause: err}
		}
		return m.VirtualDisk(ctx, Ref{ID: d.ID})
	}))
}

// VirtualDisks lists the disks that pass f (name, repository, pool).
func (m *Manager) VirtualDisks(ctx context.Context, f Filter) ([]VirtualDisk, error) {
	c, err := m.compile(ctx, f)
	if err != nil {
		return nil, err
	}
	rows, err := m.st.Read().VirtualDisks(ctx)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read disks", Cause: err}
	}
	inv, err := m.inventory(ctx)
	if err != nil {
		return nil, err
	}
	var out []VirtualDisk
	for _, d := range rows {
		r, ok := inv.repos[d.RepoID]
		if ok && c.match(d.ID, d.Name, "", "", r.PoolID, r.ID) {
			out = append(out, m.diskViewIn(ctx, d, r))
		}
	}
	return out, nil
}

// VirtualDisk returns one disk.
func (m *Manager) VirtualDisk(ctx context.Context, ref Ref) (VirtualDisk, error) {
	d, err := resolve(ctx, m, m.diskKind(), ref)
	if err != nil {
		return VirtualDisk{}, err
	}
	return m.diskView(ctx, d), nil
}

func (m *Manager) diskView(ctx context.Context, d store.VirtualDisk) VirtualDisk {
	r, _ := m.st.Read().Repository(ctx, d.RepoID)
	return m.diskViewIn(ctx, d, r)
}

// diskViewIn builds a disk's view when its repository is at hand.
func (m *Manager) diskViewIn(ctx context.Context, d store.VirtualDisk, r store.Repository) VirtualDisk {
	q := m.st.Read()
	v := VirtualDisk{ID: d.ID, Name: d.Name, Description: d.Description, Repository: NamedRef{r.ID, r.Name},
		SizeMiB: d.SizeMiB, Sparse: d.Sparse, Path: diskPath(r, d.ID), CreatedAt: d.CreatedAt}
	if mp, err := q.DiskMappingOfDisk(ctx, d.ID); err == nil {
		if vm, err := q.VM(ctx, mp.VMID); err == nil {
			v.Vm, v.Slot = NamedRef{vm.ID, vm.Name}, mp.Slot
		}
	}
	return v
}

// DeleteVirtualDisk deletes a disk no VM uses, and its image.
func (m *Manager) DeleteVirtualDisk(ctx context.Context, ref Ref) (VirtualDisk, error) {
	d, err := resolve(ctx, m, m.diskKind(), ref)
	if err != nil {
		return VirtualDisk{}, err
	}
	if err := m.authorize(ctx, PermVMLifecycle); err != nil {
		return VirtualDisk{}, err
	}
	view := m.diskView(ctx, d)
	return jobValue[VirtualDisk](m.job(ctx, actorFrom(ctx), m.diskKind().poolOf(d), "delete VirtualDisk "+d.Name, []string{d.ID}, func(ctx context.Context, j *jobRun) (any, error) {
		if mp, err := m.st.Read().DiskMappingOfDisk(ctx, d.ID); err == nil {
			vm, _ := m.st.Read().VM(ctx, mp.VMID)
			return nil, errorf(KindConflict, "VirtualDisk %s is in use by Vm %s (slot %d); remove it from the VM first", d.Name, vm.Name, mp.Slot)
		}
		r, err := m.st.Read().Repository(ctx, d.RepoID)
		if err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "read repository", Cause: err}
		}
		srv, c, err := m.poolServer(ctx, r.PoolID)
		if err != nil {
			return nil, errorf(KindInvalidState, "the repository's pool has no running server to delete the disk through")
		}
		if err := c.DeleteVirtualDisk(ctx, r.ID, d.ID); err != nil {
			if f, ok := agentapi.AsFault(err); !ok || f.Code != agentapi.FaultNotFound {
				return nil, agentError("delete VirtualDisk "+d.Name, srv.Name, err)
			}
		}
		if err := m.st.Write(ctx, func(q *store.Queries) error { return q.DeleteVirtualDisk(ctx, d.ID) }); err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "delete disk record", Cause: err}
		}
		return view, nil
	}))
}

// deviceName is the guest's name of a disk slot: 0 is xvda.
func deviceName(slot int) string {
	if slot < 26 {
		return "xvd" + string(rune('a'+slot))
	}
	return fmt.Sprintf("xvd%c%c", 'a'+slot/26-1, 'a'+slot%26)
}

// devicesParams builds the disk and vif lists of a VM's vm.cfg from its
// mappings and VNICs.
func (m *Manager) devicesParams(ctx context.Context, q *store.Queries, vmID string) (agentapi.VMParams, error) {
	maps, err := q.DiskMappingsOfVM(ctx, vmID)
	if err != nil {
		return nil, err
	}
	isos, err := q.CdromMappingsOfVM(ctx, vmID)
	if err != nil {
		return nil, err
	}
	type entry struct {
		slot int
		text string
	}
	entries := make([]entry, 0, len(maps)+len(isos))
	for _, mp := range maps {
		d, err := q.VirtualDisk(ctx, mp.DiskID)
		if err != nil {
			return nil, err
		}
		r, err := q.Repository(ctx, d.RepoID)
		if err != nil {
			return nil, err
		}
		entries = append(entries, entry{mp.Slot, "file:" + diskPath(r, d.ID) + "," + deviceName(mp.Slot) + ",w"})
	}
	for _, mp := range isos {
		iso, err := q.VirtualCdrom(ctx, mp.CdromID)
		if err != nil {
			return nil, err
		}
		r, err := q.Repository(ctx, iso.RepoID)
		if err != nil {
			return nil, err
		}
		entries = append(entries, entry{mp.Slot, "file:" + isoPath(r, iso.ID) + "," + deviceName(mp.Slot) + ":cdrom,r"})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].slot < entries[j].slot })
	disks := make([]string, len(entries))
	for i, e := range entries {
		disks[i] = e.text
	}
	vnics, err := q.VnicsOfVM(ctx, vmID)
	if err != nil {
		return nil, err
	}
	vifs := []string{}
	for _, v := range vnics {
		n, err := q.Network(ctx, v.NetworkID)
		if err != nil {
			return nil, err
		}
		vifs = append(vifs, "mac="+v.MAC+",bridge="+n.Bridge)
	}
	return agentapi.VMParams{agentapi.KeyDisk: disks, agentapi.KeyVif: vifs}, nil
}

// maxDiskSlots bounds a VM's disks.
const maxDiskSlots = 64

// AddDiskToVM maps a disk to a stopped VM (the next free slot, or slot).
func (m *Manager) AddDiskToVM(ctx context.Context, disk, vm Ref, slot int) (VirtualDisk, error) {
	d, err := resolve(ctx, m, m.diskKind(), disk)
	if err != nil {
		return VirtualDisk{}, err
	}
	err = m.deviceJob(ctx, vm, "adding a disk", func(ctx context.Context, v store.VM) error {
		// The disk's lock keeps a delete VirtualDisk from removing it under us.
		unlock, err := m.locks.lock(ctx, d.ID)
		if err != nil {
			return err
		}
		defer unlock()
		r, err := m.st.Read().Repository(ctx, d.RepoID)
		if err != nil || r.PoolID != v.PoolID {
			return errorf(KindInvalidArgument, "VirtualDisk %s is not in a repository of the VM's server pool", d.Name)
		}
		if mp, err := m.st.Read().DiskMappingOfDisk(ctx, d.ID); err == nil {
			other, _ := m.st.Read().VM(ctx, mp.VMID)
			return errorf(KindConflict, "VirtualDisk %s is in use by Vm %s (slot %d)", d.Name, other.Name, mp.Slot)
		}
		taken, err := m.takenSlots(ctx, v.ID)
		if err != nil {
			return err
		}
		if slot, err = pickSlot(taken, slot, v.Name); err != nil {
			return err
		}
		mp := store.DiskMapping{ID: NewID(TypeDiskMapping), VMID: v.ID, DiskID: d.ID, Slot: slot, CreatedAt: time.Now()}
		return m.changeDevices(ctx, v, func(q *store.Queries) error { return q.InsertDiskMapping(ctx, mp) },
			func(q *store.Queries) error { return q.DeleteDiskMapping(ctx, mp.ID) })
	})
	if err != nil {
		return VirtualDisk{}, err
	}
	return m.VirtualDisk(ctx, Ref{ID: d.ID})
}

// RemoveDiskFromVM unmaps a disk from a stopped VM; the disk stays.
func (m *Manager) RemoveDiskFromVM(ctx context.Context, disk, vm Ref) (VirtualDisk, error) {
	d, err := resolve(ctx, m, m.diskKind(), disk)
	if err != nil {
		return VirtualDisk{}, err
	}
	err = m.deviceJob(ctx, vm, "removing a disk", func(ctx context.Context, v store.VM) error {
		mp, err := m.st.Read().DiskMappingOfDisk(ctx, d.ID)
		if err != nil || mp.VMID != v.ID {
			return errorf(KindInvalidState, "VirtualDisk %s is not in Vm %s", d.Name, v.Name)
		}
		return m.changeDevices(ctx, v, func(q *store.Queries) error { return q.DeleteDiskMapping(ctx, mp.ID) },
			func(q *store.Queries) error { return q.InsertDiskMapping(ctx, mp) })
	})
	if err != nil {
		return VirtualDisk{}, err
	}
	return m.VirtualDisk(ctx, Ref{ID: d.ID})
}

// deviceJob runs fn as an edit job of a stopped VM (devices change only
// while it is stopped: the protocol has no hot-plug); what names the change
// in the refusal ("adding a disk").
func (m *Manager) deviceJob(ctx context.Context, vm Ref, what string, fn func(ctx context.Context, v store.VM) error) error {
	_, err := m.vmJob(ctx, vm, "edit", PermVMLifecycle, func(ctx context.Context, j *jobRun, v store.VM) error {
		if v.Status != VMStopped {
			return errorf(KindInvalidState, "Vm %s is %s; %s needs Stopped", v.Name, v.Status, what)
		}
		return fn(ctx, v)
	})
	return err
}

// changeDevices applies do to the store, then writes the VM's resulting
// disk and vif lists into its vm.cfg through the agent; if the agent
// refuses, undo takes the store back. The agent is never called inside a
// store transaction (that would hold the one writer for the length of an
// agent call); the VM's lock, held by the caller's job, keeps device
// changes of one VM in order.
func (m *Manager) changeDevices(ctx context.Context, v store.VM, do, undo func(q *store.Queries) error) error {
	err := m.st.Write(ctx, func(q *store.Queries) error { return do(q) })
	if errors.Is(err, store.ErrConflict) {
		return errorf(KindConflict, "the device is in use already")
	}
	if err != nil {
		if KindOf(err) != KindInternal {
			return err
		}
		return &Error{Kind: KindInternal, Msg: "record devices of Vm " + v.Name, Cause: err}
	}
	params, err := m.devicesParams(ctx, m.st.Read(), v.ID)
	if err == nil {
		err = m.configureVM(ctx, v, params)
	}
	if err != nil {
		if uerr := m.st.Write(context.WithoutCancel(ctx), func(q *store.Queries) error { return undo(q) }); uerr != nil {
			m.log.Error("could not take back a device change the agent refused", "vm", v.Name, "err", uerr)
		}
		if KindOf(err) == KindInternal {
			return &Error{Kind: KindInternal, Msg: "devices of Vm " + v.Name, Cause: err}
		}
		return err
	}
	return nil
}

// DiskMappings lists the mappings of the VMs the actor may see.
func (m *Manager) DiskMappings(ctx context.Context, vm Ref) ([]DiskMapping, error) {
	var only string
	if vm != (Ref{}) {
		v, err := m.findVM(ctx, vm)
		if err != nil {
			return nil, err
		}
		only = v.ID
	}
	sc, err := m.scope(ctx)
	if err != nil {
		return nil, err
	}
	q := m.st.Read()
	var disks []store.DiskMapping
	var isos []store.CdromMapping
	if only != "" {
		disks, err = q.DiskMappingsOfVM(ctx, only)
		if err == nil {
			isos, err = q.CdromMappingsOfVM(ctx, only)
		}
	} else {
		disks, err = q.DiskMappings(ctx)
		if err == nil {
			isos, err = q.CdromMappings(ctx)
		}
	}
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read mappings", Cause: err}
	}
	// Each VM is read once, however many devices it has.
	seen := map[string]NamedRef{} // visible VMs
	hidden := map[string]bool{}
	vmOf := func(id string) (NamedRef, bool) {
		if r, ok := seen[id]; ok {
			return r, true
		}
		if hidden[id] {
			return NamedRef{}, false
		}
		v, err := q.VM(ctx, id)
		if err != nil || !sc.sees(v.PoolID) {
			hidden[id] = true
			return NamedRef{}, false
		}
		seen[id] = NamedRef{v.ID, v.Name}
		return seen[id], true
	}
	var out []DiskMapping
	for _, mp := range disks {
		if v, ok := vmOf(mp.VMID); ok {
			d, _ := q.VirtualDisk(ctx, mp.DiskID)
			out = append(out, DiskMapping{ID: mp.ID, Vm: v, Disk: NamedRef{d.ID, d.Name}, Slot: mp.Slot})
		}
	}
	for _, mp := range isos {
		if v, ok := vmOf(mp.VMID); ok {
			iso, _ := q.VirtualCdrom(ctx, mp.CdromID)
			out = append(out, DiskMapping{ID: mp.ID, Vm: v, Cdrom: NamedRef{iso.ID, iso.Name}, Slot: mp.Slot})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Vm.ID != out[j].Vm.ID {
			return out[i].Vm.ID < out[j].Vm.ID
		}
		return out[i].Slot < out[j].Slot
	})
	return out, nil
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
		if err := ValidateName("Vnic", name); err != nil {
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
	view := m.vnicView(ctx, vn)
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
	var only string
	if vm != (Ref{}) {
		v, err := m.findVM(ctx, vm)
		if err != nil {
			return nil, err
		}
		only = v.ID
	}
	sc, err := m.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := m.st.Read().Vnics(ctx)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read vnics", Cause: err}
	}
	var out []Vnic
	for _, vn := range rows {
		if only != "" && vn.VMID != only {
			continue
		}
		v, err := m.st.Read().VM(ctx, vn.VMID)
		if err != nil || !sc.sees(v.PoolID) {
			continue
		}
		out = append(out, m.vnicViewOf(ctx, vn, v))
	}
	return out, nil
}

// Vnic returns one VNIC.
func (m *Manager) Vnic(ctx context.Context, ref Ref) (Vnic, error) {
	vn, err := resolve(ctx, m, m.vnicKind(), ref)
	if err != nil {
		return Vnic{}, err
	}
	return m.vnicView(ctx, vn), nil
}

func (m *Manager) vnicView(ctx context.Context, vn store.Vnic) Vnic {
	v, _ := m.st.Read().VM(ctx, vn.VMID)
	return m.vnicViewOf(ctx, vn, v)
}

// vnicViewOf builds a VNIC's view when its VM is at hand.
func (m *Manager) vnicViewOf(ctx context.Context, vn store.Vnic, v store.VM) Vnic {
	n, _ := m.st.Read().Network(ctx, vn.NetworkID)
	return Vnic{ID: vn.ID, Name: vn.Name, MAC: vn.MAC, Vm: NamedRef{v.ID, v.Name}, Network: NamedRef{n.ID, n.Name}, CreatedAt: vn.CreatedAt}
}
