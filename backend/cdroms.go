package backend

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentapi/importnet"
	"xenmanager/store"
)

// VirtualCdrom states: an ISO imported by a non-administrator stays Pending,
// and cannot be put in a VM, until an administrator approves it.
const (
	CdromApproved = "Approved"
	CdromPending  = "Pending"
)

// VirtualCdrom is an ISO image as the operator sees it.
type VirtualCdrom struct {
	ID, Name, Description string
	Repository            NamedRef
	URL                   string // where it was imported from
	SizeBytes             int64
	State                 string
	ImportedBy            string
	Path                  string     // as the servers see it
	Vms                   []NamedRef // the VMs it is in
	CreatedAt             time.Time
}

func (c VirtualCdrom) String() string { return "VirtualCdrom " + c.Name }

// cdromKind resolves ISOs; an ISO's pool is its repository's.
func (m *Manager) cdromKind() kind[store.VirtualCdrom] {
	q := m.st.Read()
	return kind[store.VirtualCdrom]{"VirtualCdrom", q.VirtualCdrom, q.VirtualCdromsByName, q.VirtualCdroms,
		func(x store.VirtualCdrom) string { return x.Name }, func(x store.VirtualCdrom) string { return x.ID },
		func(x store.VirtualCdrom) string {
			r, err := q.Repository(context.Background(), x.RepoID)
			if err != nil {
				return ""
			}
			return r.PoolID
		}}
}

// isoPath is where the servers of the pool see an ISO.
func isoPath(r store.Repository, isoID string) string {
	return r.MountPoint + "/ISOs/" + isoID + ".iso"
}

// maxURLLength bounds an import URL.
const maxURLLength = 2048

// checkImportURL accepts the http and https URLs an agent can download.
func checkImportURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || len(raw) > maxURLLength || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		// The URL is named only when it parses and is short, and then
		// without its password: the message reaches the log as well.
		shown := "the url"
		if err == nil && len(raw) <= maxURLLength {
			shown = fmt.Sprintf("url %q", u.Redacted())
		}
		return nil, errorf(KindInvalidArgument, "%s is not one the servers can download: give an http:// or https:// URL with a host (at most %d characters)", shown, maxURLLength)
	}
	return u, nil
}

// importOption is the option of an import of kind to an agent whose
// get_api_version answered ver: with the allowed networks only if the
// agent lists agentapi.ExtImportAllowedNetworks. Another agent would
// ignore them; it gets only URLs that checkImportHost passed.
func importOption(kind string, ver agentapi.VersionInfo, allowed []netip.Prefix) agentapi.ImportOption {
	opt := agentapi.ImportOption{Kind: kind}
	if ver.Has(agentapi.ExtImportAllowedNetworks) {
		opt.AllowedNetworks = importnet.Strings(allowed)
	}
	return opt
}

// ImportISO has a server of the repository's pool download an ISO image
// into the repository (import_virtual_disk, kind iso) and records it:
// Approved when an administrator imports it, else Pending.
func (m *Manager) ImportISO(ctx context.Context, repo Ref, rawURL, name, description string) (VirtualCdrom, error) {
	name, err := ValidateName("VirtualCdrom", name)
	if err != nil {
		return VirtualCdrom{}, err
	}
	u, err := checkImportURL(rawURL)
	if err != nil {
		return VirtualCdrom{}, err
	}
	r, err := m.findRepository(ctx, repo)
	if err != nil {
		return VirtualCdrom{}, err
	}
	if err := m.authorize(ctx, PermVMLifecycle); err != nil {
		return VirtualCdrom{}, err
	}
	settings, err := m.settings(ctx)
	if err != nil {
		return VirtualCdrom{}, err
	}
	if err := m.checkImportHost(ctx, u, settings.ImportAllowedNetworks); err != nil {
		return VirtualCdrom{}, err
	}
	actor := actorFrom(ctx)
	state := CdromPending
	if actor.Role == RoleAdministrator {
		state = CdromApproved
	}
	shownURL := rawURL // what is recorded and shown: without a password
	if u, _ := url.Parse(rawURL); u.User != nil {
		shownURL = u.Redacted()
	}
	iso := store.VirtualCdrom{ID: NewID(TypeVirtualCdrom), Name: name, RepoID: r.ID, URL: shownURL, State: state,
		ImportedBy: actor.User, Description: description, CreatedAt: time.Now()}
	return jobValue[VirtualCdrom](m.job(ctx, actor, r.PoolID, "importIso Repository", "importIso "+name, nil, func(ctx context.Context, j *jobRun) (any, error) {
		srv, c, err := m.utilityServer(ctx, r.PoolID)
		if errors.Is(err, errNoServer) {
			return nil, errorf(KindInvalidState, "the repository's pool has no running server to download the ISO through")
		}
		if err != nil {
			return nil, err
		}
		what := "importIso " + name + " on " + srv.Name
		j.progress(5, what)
		opt := agentapi.ImportOption{Kind: agentapi.ImportKindISO}
		if nets := settings.ImportAllowedNetworks; len(nets) > 0 {
			ver, err := c.GetAPIVersion(ctx)
			if err != nil {
				return nil, agentError("importIso "+name, srv.Name, err)
			}
			opt = importOption(agentapi.ImportKindISO, ver, nets)
		}
		key := agentapi.ProgressImport + iso.ID
		stop := followProgress(ctx, j, c, key, what, 5, 95)
		// The call lasts as long as the download. abort Job cuts it: the
		// agent stops downloading when the call is dropped, and leaves no
		// file behind.
		err = c.ImportVirtualDisk(j.abort, rawURL, iso.ID, r.ID, opt)
		stop()
		if err != nil {
			if aerr := j.check(); aerr != nil {
				return nil, aerr
			}
			return nil, withAllowHint(agentError("importIso "+name, srv.Name, err))
		}
		if p, err := c.GetOperationProgress(ctx, key); err == nil {
			iso.SizeBytes = p.Done
		}
		if err := m.st.Write(ctx, func(q *store.Queries) error { return q.InsertVirtualCdrom(ctx, iso) }); err != nil {
			if derr := c.DeleteVirtualDisk(context.WithoutCancel(ctx), r.ID, iso.ID); derr != nil {
				m.log.Error("could not remove an ISO after failing to record it", "iso", iso.ID, "err", derr)
			}
			return nil, &Error{Kind: KindInternal, Msg: "record ISO", Cause: err}
		}
		return m.VirtualCdrom(ctx, Ref{ID: iso.ID})
	}))
}

// VirtualCdroms lists the ISOs that pass f (name, repository, pool).
func (m *Manager) VirtualCdroms(ctx context.Context, f Filter) ([]VirtualCdrom, error) {
	l, err := m.StreamVirtualCdroms(ctx, f)
	return collected(ctx, l, err)
}

// VirtualCdrom returns one ISO.
func (m *Manager) VirtualCdrom(ctx context.Context, ref Ref) (VirtualCdrom, error) {
	iso, err := resolve(ctx, m, m.cdromKind(), ref)
	if err != nil {
		return VirtualCdrom{}, err
	}
	return m.cdromView(ctx, iso)
}

// cdromView shows an ISO with the VMs that hold it: a repository or a VM
// deleted meanwhile shows empty or not at all, as it always has; a store
// that fails fails the view, so that delete VirtualCdrom never takes a
// failed read for an ISO no VM holds.
func (m *Manager) cdromView(ctx context.Context, iso store.VirtualCdrom) (VirtualCdrom, error) {
	q := m.st.Read()
	r, err := optional(q.Repository(ctx, iso.RepoID))
	if err != nil {
		return VirtualCdrom{}, err
	}
	maps, err := q.CdromMappingsOfCdrom(ctx, iso.ID)
	if err != nil {
		return VirtualCdrom{}, &Error{Kind: KindInternal, Msg: "read ISO mappings", Cause: err}
	}
	vms, err := mappedVMs(ctx, q, maps)
	if err != nil {
		return VirtualCdrom{}, err
	}
	return cdromViewIn(iso, r, vms[iso.ID]), nil
}

// mappedVMs returns the VMs that hold each ISO of maps, by ISO id; a VM
// deleted meanwhile is left out.
func mappedVMs(ctx context.Context, q *store.Queries, maps []store.CdromMapping) (map[string][]NamedRef, error) {
	vmsOf := map[string][]NamedRef{}
	for _, mp := range maps {
		v, err := optional(q.VM(ctx, mp.VMID))
		if err != nil {
			return nil, err
		}
		if v.ID != "" {
			vmsOf[mp.CdromID] = append(vmsOf[mp.CdromID], NamedRef{v.ID, v.Name})
		}
	}
	return vmsOf, nil
}

func cdromViewIn(iso store.VirtualCdrom, r store.Repository, vms []NamedRef) VirtualCdrom {
	sort.Slice(vms, func(i, j int) bool { return vms[i].Name < vms[j].Name })
	return VirtualCdrom{ID: iso.ID, Name: iso.Name, Description: iso.Description, Repository: NamedRef{r.ID, r.Name},
		URL: iso.URL, SizeBytes: iso.SizeBytes, State: iso.State, ImportedBy: iso.ImportedBy, Path: isoPath(r, iso.ID),
		Vms: vms, CreatedAt: iso.CreatedAt}
}

// ApproveVirtualCdrom lets a Pending ISO be put in VMs (administrators).
func (m *Manager) ApproveVirtualCdrom(ctx context.Context, ref Ref) (VirtualCdrom, error) {
	iso, err := findFor(ctx, m, m.cdromKind(), ref, PermManage)
	if err != nil {
		return VirtualCdrom{}, err
	}
	return jobValue[VirtualCdrom](m.job(ctx, actorFrom(ctx), m.cdromKind().poolOf(iso), "approve VirtualCdrom", "approve VirtualCdrom "+iso.Name, []string{iso.ID},
		func(ctx context.Context, j *jobRun) (any, error) {
			cur, err := optional(m.st.Read().VirtualCdrom(ctx, iso.ID))
			if err != nil {
				return nil, err
			}
			if cur.ID == "" {
				return nil, errorf(KindNotFound, "VirtualCdrom %s was deleted meanwhile", iso.Name)
			}
			if cur.State == CdromApproved {
				return nil, errorf(KindInvalidState, "VirtualCdrom %s is Approved already", iso.Name)
			}
			if err := m.st.Write(ctx, func(q *store.Queries) error { return q.SetVirtualCdromState(ctx, iso.ID, CdromApproved) }); err != nil {
				return nil, &Error{Kind: KindInternal, Msg: "record approval", Cause: err}
			}
			return m.VirtualCdrom(ctx, Ref{ID: iso.ID})
		}))
}

// mayChangeCdrom checks that the actor may edit or delete iso (verb says
// which). An Approved ISO is an Administrator's alone to change: approving
// vouched for it as it is, and the VMs of the pool take it on that word. A
// Pending one is also the Operator's who imported it, who may correct or
// withdraw it before an Administrator looks at it; not another Operator's,
// since the Administrator who approves it reads the importer's name on it.
func (m *Manager) mayChangeCdrom(ctx context.Context, iso store.VirtualCdrom, verb string) error {
	if err := m.authorize(ctx, PermVMLifecycle); err != nil {
		return err
	}
	a := actorFrom(ctx)
	switch {
	case roleAllows(a.Role, PermManage):
		return nil
	case iso.State == CdromApproved:
		return errorf(KindPermission, "user %s (%s) may not %s VirtualCdrom %s: it is Approved, and only an Administrator changes or deletes an approved ISO",
			a.User, a.Role, verb, iso.Name)
	case iso.ImportedBy != a.User:
		return errorf(KindPermission, "user %s (%s) may not %s VirtualCdrom %s: it was imported by %s, and an Operator changes or deletes only the Pending ISOs they imported",
			a.User, a.Role, verb, iso.Name, iso.ImportedBy)
	}
	return nil
}

// mayEditCdrom is mayChangeCdrom for edit, on the ISO as it is now: the
// rename's check (objectKinds), run again under the ISO's lock.
func (m *Manager) mayEditCdrom(ctx context.Context, id string) error {
	iso, err := m.currentCdrom(ctx, id)
	if err != nil {
		return err
	}
	return m.mayChangeCdrom(ctx, iso, "edit")
}

// currentCdrom reads an ISO again; one deleted meanwhile is NotFound.
func (m *Manager) currentCdrom(ctx context.Context, id string) (store.VirtualCdrom, error) {
	iso, err := optional(m.st.Read().VirtualCdrom(ctx, id))
	if err != nil {
		return store.VirtualCdrom{}, err
	}
	if iso.ID == "" {
		return store.VirtualCdrom{}, errorf(KindNotFound, "VirtualCdrom id=%s was deleted meanwhile", id)
	}
	return iso, nil
}

// DeleteVirtualCdrom deletes an ISO that no VM holds, and its file; who may
// is mayChangeCdrom's.
func (m *Manager) DeleteVirtualCdrom(ctx context.Context, ref Ref) (VirtualCdrom, error) {
	iso, err := findFor(ctx, m, m.cdromKind(), ref, PermVMLifecycle)
	if err != nil {
		return VirtualCdrom{}, err
	}
	if err := m.mayChangeCdrom(ctx, iso, "delete"); err != nil {
		return VirtualCdrom{}, err
	}
	view, err := m.cdromView(ctx, iso)
	if err != nil {
		return VirtualCdrom{}, err
	}
	return jobValue[VirtualCdrom](m.job(ctx, actorFrom(ctx), m.cdromKind().poolOf(iso), "delete VirtualCdrom", "delete VirtualCdrom "+iso.Name, []string{iso.ID},
		func(ctx context.Context, j *jobRun) (any, error) {
			// Approved meanwhile (approve holds the same lock): checked again.
			now, err := m.currentCdrom(ctx, iso.ID)
			if err != nil {
				return nil, err
			}
			if err := m.mayChangeCdrom(ctx, now, "delete"); err != nil {
				return nil, err
			}
			cur, err := m.cdromView(ctx, iso)
			if err != nil {
				return nil, err
			}
			if len(cur.Vms) > 0 {
				return nil, errorf(KindConflict, "VirtualCdrom %s is in use by %s; remove it from them first", iso.Name, vmNames(cur.Vms))
			}
			r, err := m.st.Read().Repository(ctx, iso.RepoID)
			if err != nil {
				return nil, &Error{Kind: KindInternal, Msg: "read repository", Cause: err}
			}
			srv, c, err := m.utilityServer(ctx, r.PoolID)
			if errors.Is(err, errNoServer) {
				return nil, errorf(KindInvalidState, "the repository's pool has no running server to delete the ISO through")
			}
			if err != nil {
				return nil, err
			}
			// delete_virtual_disk removes ISOs/<id>.iso when no disk has the id
			// (this project's agents; see docs/agent-protocol.md, Extensions).
			if err := c.DeleteVirtualDisk(ctx, r.ID, iso.ID); err != nil {
				if f, ok := agentapi.AsFault(err); !ok || f.Code != agentapi.FaultNotFound {
					return nil, agentError("delete VirtualCdrom "+iso.Name, srv.Name, err)
				}
			}
			err = m.st.Write(ctx, func(q *store.Queries) error { return q.DeleteVirtualCdrom(ctx, iso.ID) })
			if errors.Is(err, store.ErrConflict) {
				return nil, errorf(KindConflict, "VirtualCdrom %s was put in a VM meanwhile; remove it from the VM first", iso.Name)
			}
			if err != nil {
				return nil, &Error{Kind: KindInternal, Msg: "delete ISO record", Cause: err}
			}
			return view, nil
		}))
}

// vmNames is "Vm a, Vm b" for a message.
func vmNames(vms []NamedRef) string {
	names := make([]string, len(vms))
	for i, v := range vms {
		names[i] = "Vm " + v.Name
	}
	return strings.Join(names, ", ")
}

// AddCdromToVM puts an approved ISO in a stopped VM of its pool, in the
// next slot free of disks and ISOs, or slot.
func (m *Manager) AddCdromToVM(ctx context.Context, cdrom, vm Ref, slot int) (VirtualCdrom, error) {
	iso, err := resolve(ctx, m, m.cdromKind(), cdrom)
	if err != nil {
		return VirtualCdrom{}, err
	}
	if _, err := m.mapCdrom(ctx, iso, vm, slot, ""); err != nil {
		return VirtualCdrom{}, err
	}
	return m.VirtualCdrom(ctx, Ref{ID: iso.ID})
}

// mapCdrom puts the approved ISO iso in the stopped VM vm, in slot (the
// first free one when negative), the mapping called name ("" for none);
// it returns the mapping's id.
func (m *Manager) mapCdrom(ctx context.Context, iso store.VirtualCdrom, vm Ref, slot int, name string) (string, error) {
	var id string
	err := m.deviceJob(ctx, vm, "adding a VirtualCdrom", func(ctx context.Context, v store.VM) error {
		// The ISO's lock keeps a delete VirtualCdrom out meanwhile.
		unlock, err := m.locks.lock(ctx, iso.ID)
		if err != nil {
			return err
		}
		defer unlock()
		cur, err := optional(m.st.Read().VirtualCdrom(ctx, iso.ID))
		if err != nil {
			return err
		}
		if cur.ID == "" {
			return errorf(KindNotFound, "VirtualCdrom %s was deleted meanwhile", iso.Name)
		}
		if cur.State != CdromApproved {
			return errorf(KindInvalidState, "VirtualCdrom %s is %s; an Administrator must approve it first (approve VirtualCdrom id=%s)", cur.Name, cur.State, cur.ID)
		}
		r, err := optional(m.st.Read().Repository(ctx, cur.RepoID))
		if err != nil {
			return err
		}
		if r.ID == "" || r.PoolID != v.PoolID {
			return errorf(KindInvalidArgument, "VirtualCdrom %s is not in a repository of the VM's server pool", cur.Name)
		}
		taken, err := m.takenSlots(ctx, v.ID)
		if err != nil {
			return err
		}
		for _, mp := range taken {
			if mp.cdromID == cur.ID {
				return errorf(KindConflict, "VirtualCdrom %s is in Vm %s already (slot %d)", cur.Name, v.Name, mp.slot)
			}
		}
		if slot, err = pickSlot(taken, slot, v.Name); err != nil {
			return err
		}
		mp := store.CdromMapping{ID: NewID(TypeDiskMapping), VMID: v.ID, CdromID: cur.ID, Slot: slot, CreatedAt: time.Now(), Name: name}
		id = mp.ID
		return m.changeDevices(ctx, v, func(q *store.Queries) error { return q.InsertCdromMapping(ctx, mp) },
			func(q *store.Queries) error { return q.DeleteCdromMapping(ctx, mp.ID) })
	})
	return id, err
}

// RemoveCdromFromVM takes an ISO out of a stopped VM; the ISO stays.
func (m *Manager) RemoveCdromFromVM(ctx context.Context, cdrom, vm Ref) (VirtualCdrom, error) {
	iso, err := resolve(ctx, m, m.cdromKind(), cdrom)
	if err != nil {
		return VirtualCdrom{}, err
	}
	err = m.deviceJob(ctx, vm, "removing a VirtualCdrom", func(ctx context.Context, v store.VM) error {
		maps, err := m.st.Read().CdromMappingsOfVM(ctx, v.ID)
		if err != nil {
			return &Error{Kind: KindInternal, Msg: "read mappings", Cause: err}
		}
		for _, mp := range maps {
			if mp.CdromID == iso.ID {
				return m.changeDevices(ctx, v, func(q *store.Queries) error { return q.DeleteCdromMapping(ctx, mp.ID) },
					func(q *store.Queries) error { return q.InsertCdromMapping(ctx, mp) })
			}
		}
		return errorf(KindInvalidState, "VirtualCdrom %s is not in Vm %s", iso.Name, v.Name)
	})
	if err != nil {
		return VirtualCdrom{}, err
	}
	return m.VirtualCdrom(ctx, Ref{ID: iso.ID})
}

// slotUse is what holds one of a VM's slots: a disk or an ISO.
type slotUse struct {
	slot            int
	diskID, cdromID string
}

// takenSlots returns the slots of a VM its disks and ISOs hold, by slot.
func (m *Manager) takenSlots(ctx context.Context, vmID string) ([]slotUse, error) {
	q := m.st.Read()
	disks, err := q.DiskMappingsOfVM(ctx, vmID)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read mappings", Cause: err}
	}
	isos, err := q.CdromMappingsOfVM(ctx, vmID)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read mappings", Cause: err}
	}
	out := make([]slotUse, 0, len(disks)+len(isos))
	for _, mp := range disks {
		out = append(out, slotUse{slot: mp.Slot, diskID: mp.DiskID})
	}
	for _, mp := range isos {
		out = append(out, slotUse{slot: mp.Slot, cdromID: mp.CdromID})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].slot < out[j].slot })
	return out, nil
}

// pickSlot returns slot when it is free, or the first free slot when slot
// is negative.
func pickSlot(taken []slotUse, slot int, vmName string) (int, error) {
	used := map[int]slotUse{}
	for _, u := range taken {
		used[u.slot] = u
	}
	if slot < 0 {
		for slot = 0; ; slot++ {
			if _, ok := used[slot]; !ok {
				break
			}
		}
	}
	if slot >= maxDiskSlots {
		return 0, errorf(KindInvalidArgument, "slot %d is out of range: use 0 to %d", slot, maxDiskSlots-1)
	}
	if u, ok := used[slot]; ok {
		what := "a disk"
		if u.cdromID != "" {
			what = "a VirtualCdrom"
		}
		return 0, errorf(KindConflict, "slot %d of Vm %s holds %s", slot, vmName, what)
	}
	return slot, nil
}
