package backend

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sort"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/store"
)

// DiskMapping is a disk, or an ISO, in a VM's slot.
type DiskMapping struct {
	ID    string
	Name  string // the one create VmDiskMapping gave it, else <vm>/<disk or ISO>
	Vm    NamedRef
	Disk  NamedRef // empty for an ISO
	Cdrom NamedRef // empty for a disk
	Slot  int
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
		entries = append(entries, entry{mp.Slot, diskEntry(r, d, mp.Slot)})
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

// diskEntry is the vm.cfg disk entry of disk d in slot: written ("w"), or,
// for a shareable disk, written by several domains at once ("w!", which
// Xen and libvirt's shareable disks require).
func diskEntry(r store.Repository, d store.VirtualDisk, slot int) string {
	mode := "w"
	if d.Shareable {
		mode = "w!"
	}
	return "file:" + diskPath(r, d.ID) + "," + deviceName(slot) + "," + mode
}

// maxDiskSlots bounds a VM's disks.
const maxDiskSlots = 64

// AddDiskToVM maps a disk to a stopped VM (the next free slot, or slot).
func (m *Manager) AddDiskToVM(ctx context.Context, disk, vm Ref, slot int) (VirtualDisk, error) {
	d, err := resolve(ctx, m, m.diskKind(), disk)
	if err != nil {
		return VirtualDisk{}, err
	}
	if _, err := m.mapDisk(ctx, d, vm, slot, ""); err != nil {
		return VirtualDisk{}, err
	}
	return m.VirtualDisk(ctx, Ref{ID: d.ID})
}

// mapDisk maps disk d to the stopped VM vm, in slot (the first free one
// when negative), the mapping called name ("" for none); it returns the
// mapping's id. A disk is in a VM once, and in several VMs only when it is
// shareable.
func (m *Manager) mapDisk(ctx context.Context, d store.VirtualDisk, vm Ref, slot int, name string) (string, error) {
	var id string
	err := m.deviceJob(ctx, vm, "adding a disk", func(ctx context.Context, v store.VM) error {
		// The disk's lock keeps a delete VirtualDisk from removing it under us.
		unlock, err := m.locks.lock(ctx, d.ID)
		if err != nil {
			return err
		}
		defer unlock()
		r, err := optional(m.st.Read().Repository(ctx, d.RepoID))
		if err != nil {
			return err
		}
		if r.PoolID != v.PoolID {
			return errorf(KindInvalidArgument, "VirtualDisk %s is not in a repository of the VM's server pool", d.Name)
		}
		held, err := m.st.Read().DiskMappingsOfDisk(ctx, d.ID)
		if err != nil {
			return &Error{Kind: KindInternal, Msg: "read mappings", Cause: err}
		}
		for _, h := range held {
			if h.VMID != v.ID && d.Shareable {
				continue
			}
			other, err := optional(m.st.Read().VM(ctx, h.VMID))
			if err != nil {
				return err
			}
			why := "only a shareable disk (create VirtualDisk ... shareable=Yes) is in several VMs"
			if h.VMID == v.ID {
				why = "a disk is in a VM once"
			}
			return errorf(KindConflict, "VirtualDisk %s is in use by Vm %s (slot %d); %s", d.Name, other.Name, h.Slot, why)
		}
		taken, err := m.takenSlots(ctx, v.ID)
		if err != nil {
			return err
		}
		if slot, err = pickSlot(taken, slot, v.Name); err != nil {
			return err
		}
		mp := store.DiskMapping{ID: NewID(TypeDiskMapping), VMID: v.ID, DiskID: d.ID, Slot: slot, CreatedAt: time.Now(), Name: name}
		id = mp.ID
		return m.changeDevices(ctx, v, func(q *store.Queries) error { return q.InsertDiskMapping(ctx, mp) },
			func(q *store.Queries) error { return q.DeleteDiskMapping(ctx, mp.ID) })
	})
	return id, err
}

// RemoveDiskFromVM unmaps a disk from a stopped VM; the disk stays.
func (m *Manager) RemoveDiskFromVM(ctx context.Context, disk, vm Ref) (VirtualDisk, error) {
	d, err := resolve(ctx, m, m.diskKind(), disk)
	if err != nil {
		return VirtualDisk{}, err
	}
	err = m.deviceJob(ctx, vm, "removing a disk", func(ctx context.Context, v store.VM) error {
		maps, err := m.st.Read().DiskMappingsOfVM(ctx, v.ID)
		if err != nil {
			return &Error{Kind: KindInternal, Msg: "read mappings", Cause: err}
		}
		for _, mp := range maps {
			if mp.DiskID == d.ID {
				return m.changeDevices(ctx, v, func(q *store.Queries) error { return q.DeleteDiskMapping(ctx, mp.ID) },
					func(q *store.Queries) error { return q.InsertDiskMapping(ctx, mp) })
			}
		}
		return errorf(KindInvalidState, "VirtualDisk %s is not in Vm %s", d.Name, v.Name)
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

// DiskMappings is every mapping of disks and ISOs the actor sees (only
// vm's unless vm is empty), by VM then slot: StreamDiskMappings read whole.
func (m *Manager) DiskMappings(ctx context.Context, vm Ref) ([]DiskMapping, error) {
	l, err := m.StreamDiskMappings(ctx, vm)
	return collected(ctx, l, err)
}

// StreamDiskMappings is list VmDiskMapping: vm is found now (a VM that
// does not exist fails here, before any row), the mappings are read when
// the listing is iterated, from one snapshot, in one query that brings
// each with its VM's and device's names, and each passes the actor's pools
// as it is read.
func (m *Manager) StreamDiskMappings(ctx context.Context, vm Ref) (Listing[DiskMapping], error) {
	var only string
	if vm != (Ref{}) {
		v, err := m.findVM(ctx, vm)
		if err != nil {
			return Listing[DiskMapping]{}, err
		}
		only = v.ID
	}
	sc, err := m.scope(ctx)
	if err != nil {
		return Listing[DiskMapping]{}, err
	}
	return streamed(m, "mappings", func(ctx context.Context, q *store.Queries) (iter.Seq2[store.MappingEntry, error], func(store.MappingEntry) (DiskMapping, bool, error), error) {
		return q.EachMappingEntry(ctx, only), func(e store.MappingEntry) (DiskMapping, bool, error) {
			return mappingView(e), sc.sees(e.PoolID), nil
		}, nil
	}), nil
}
