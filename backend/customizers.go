package backend

import (
	"context"
	"errors"
	"strings"
	"time"

	"xenmanager/store"
)

// Clone types of a VmCloneStorageMapping, as Oracle VM 3 spells them, and
// the copy_file mode each asks of the agent.
const (
	CloneSparseCopy    = "SPARSE_COPY"     // holes stay holes
	CloneNonSparseCopy = "NON_SPARSE_COPY" // every block written
	CloneThinClone     = "THIN_CLONE"      // blocks shared (reflink), where the file system can
)

// CloneTypes are the clone types, in the order the language lists them.
var CloneTypes = []string{CloneSparseCopy, CloneNonSparseCopy, CloneThinClone}

// VmCloneCustomizer says how clones of one VM or template are made: where
// and how each of its disks is copied, and which network each of its
// VNICs' copies is on (Oracle VM 3's clone customizer). Disks and VNICs
// without a mapping are copied as clone does without a customizer.
type VmCloneCustomizer struct {
	ID, Name, Description string
	Source                NamedRef
	SourceType            string // Vm or VmTemplate
	Pool                  NamedRef
	StorageMappings       []VmCloneStorageMapping
	NetworkMappings       []VmCloneNetworkMapping
	CreatedAt             time.Time
}

func (c VmCloneCustomizer) String() string { return "VmCloneCustomizer " + c.Name }

// VmCloneStorageMapping copies the disk of one of the source's
// VmDiskMappings into Repository, as CloneType says.
type VmCloneStorageMapping struct {
	ID, Name    string
	Customizer  NamedRef
	DiskMapping NamedRef // the source's mapping; its name is "<source>/<disk>"
	Disk        NamedRef
	CloneType   string
	Repository  NamedRef
}

func (s VmCloneStorageMapping) String() string { return "VmCloneStorageMapping " + s.Name }

// VmCloneNetworkMapping puts the copy of one of the source's VNICs on
// Network.
type VmCloneNetworkMapping struct {
	ID, Name   string
	Customizer NamedRef
	Vnic       NamedRef
	Network    NamedRef
}

func (n VmCloneNetworkMapping) String() string { return "VmCloneNetworkMapping " + n.Name }

func (m *Manager) customizerKind() kind[store.CloneCustomizer] {
	q := m.st.Read()
	return kind[store.CloneCustomizer]{"VmCloneCustomizer", q.CloneCustomizer, q.CloneCustomizersByName, q.CloneCustomizers,
		func(x store.CloneCustomizer) string { return x.Name }, func(x store.CloneCustomizer) string { return x.ID },
		func(x store.CloneCustomizer) string { return x.PoolID }}
}

// customizerPool is the pool of customizer id, "" when it is gone.
func (m *Manager) customizerPool(id string) string {
	c, err := m.st.Read().CloneCustomizer(context.Background(), id)
	if err != nil {
		return ""
	}
	return c.PoolID
}

func (m *Manager) storageMappingKind() kind[store.CloneStorageMapping] {
	q := m.st.Read()
	return kind[store.CloneStorageMapping]{"VmCloneStorageMapping", q.CloneStorageMapping, q.CloneStorageMappingsByName, q.CloneStorageMappings,
		func(x store.CloneStorageMapping) string { return x.Name }, func(x store.CloneStorageMapping) string { return x.ID },
		func(x store.CloneStorageMapping) string { return m.customizerPool(x.CustomizerID) }}
}

func (m *Manager) networkMappingKind() kind[store.CloneNetworkMapping] {
	q := m.st.Read()
	return kind[store.CloneNetworkMapping]{"VmCloneNetworkMapping", q.CloneNetworkMapping, q.CloneNetworkMappingsByName, q.CloneNetworkMappings,
		func(x store.CloneNetworkMapping) string { return x.Name }, func(x store.CloneNetworkMapping) string { return x.ID },
		func(x store.CloneNetworkMapping) string { return m.customizerPool(x.CustomizerID) }}
}

// cloneSource is what clone copies and customizers belong to: a VM or a
// template.
type cloneSource struct {
	typ                      string // Vm or VmTemplate
	id, name, poolID, repoID string
	vm                       store.VM         // when typ is Vm
	tpl                      store.VMTemplate // when typ is VmTemplate
}

func (s cloneSource) String() string { return s.typ + " " + s.name }

// findCloneSource resolves the VM or template ref names. As in Oracle VM
// 3, a template is also addressed as a Vm: typ Vm takes a VM, or, when no
// VM the actor sees matches, a template; typ VmTemplate takes a template.
func (m *Manager) findCloneSource(ctx context.Context, typ string, ref Ref) (cloneSource, error) {
	if typ == "Vm" {
		v, err := m.findVM(ctx, ref)
		if err == nil {
			return cloneSource{typ: "Vm", id: v.ID, name: v.Name, poolID: v.PoolID, repoID: v.RepoID, vm: v}, nil
		}
		if KindOf(err) != KindNotFound {
			return cloneSource{}, err
		}
		t, terr := resolve(ctx, m, m.templateKind(), ref)
		if KindOf(terr) == KindNotFound {
			return cloneSource{}, err // the VM's NotFound
		}
		if terr != nil {
			return cloneSource{}, terr
		}
		return templateSource(t), nil
	}
	t, err := resolve(ctx, m, m.templateKind(), ref)
	if err != nil {
		return cloneSource{}, err
	}
	return templateSource(t), nil
}

func templateSource(t store.VMTemplate) cloneSource {
	return cloneSource{typ: "VmTemplate", id: t.ID, name: t.Name, poolID: t.PoolID, repoID: t.RepoID, tpl: t}
}

// currentSource reads a source again (under its lock); one deleted
// meanwhile is NotFound.
func (m *Manager) currentSource(ctx context.Context, s cloneSource) (cloneSource, error) {
	q := m.st.Read()
	if s.typ == "Vm" {
		v, err := optional(q.VM(ctx, s.id))
		if err != nil {
			return cloneSource{}, err
		}
		if v.ID == "" {
			return cloneSource{}, errorf(KindNotFound, "Vm %s was deleted meanwhile", s.name)
		}
		return cloneSource{typ: "Vm", id: v.ID, name: v.Name, poolID: v.PoolID, repoID: v.RepoID, vm: v}, nil
	}
	t, err := m.currentTemplate(ctx, s.id, s.name)
	if err != nil {
		return cloneSource{}, err
	}
	return templateSource(t), nil
}

// sourceDisk is one disk of a clone source in its slot.
type sourceDisk struct {
	mappingID, mappingName string
	diskID, diskName       string
	repoID                 string
	slot                   int
	sizeMiB                int64
	sparse                 bool
}

// sourceDisks returns the disks of a source by slot (a VM's ISOs are not
// among them: clones do not carry ISOs).
func (m *Manager) sourceDisks(ctx context.Context, s cloneSource) ([]sourceDisk, error) {
	q := m.st.Read()
	var out []sourceDisk
	if s.typ == "VmTemplate" {
		disks, err := q.TemplateDisks(ctx, s.id)
		if err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "read template disks", Cause: err}
		}
		for _, d := range disks {
			out = append(out, sourceDisk{mappingID: d.ID, mappingName: shownName("", NamedRef{Name: s.name}, d.Name), diskID: d.DiskID, diskName: d.Name,
				repoID: d.RepoID, slot: d.Slot, sizeMiB: d.SizeMiB, sparse: d.Sparse})
		}
		return out, nil
	}
	maps, err := q.DiskMappingsOfVM(ctx, s.id)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read disk mappings", Cause: err}
	}
	for _, mp := range maps {
		d, err := q.VirtualDisk(ctx, mp.DiskID)
		if err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "read disk", Cause: err}
		}
		out = append(out, sourceDisk{mappingID: mp.ID, mappingName: shownName(mp.Name, NamedRef{Name: s.name}, d.Name), diskID: d.ID, diskName: d.Name,
			repoID: d.RepoID, slot: mp.Slot, sizeMiB: d.SizeMiB, sparse: d.Sparse})
	}
	return out, nil
}

// sourceVnic is one network interface of a clone source.
type sourceVnic struct {
	id, name, networkID string
}

// sourceVnics returns the VNICs of a source in their order.
func (m *Manager) sourceVnics(ctx context.Context, s cloneSource) ([]sourceVnic, error) {
	q := m.st.Read()
	var out []sourceVnic
	if s.typ == "VmTemplate" {
		vnics, err := q.TemplateVnics(ctx, s.id)
		if err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "read template vnics", Cause: err}
		}
		for _, v := range vnics {
			out = append(out, sourceVnic{id: v.ID, name: v.Name, networkID: v.NetworkID})
		}
		return out, nil
	}
	vnics, err := q.VnicsOfVM(ctx, s.id)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read vnics", Cause: err}
	}
	for _, v := range vnics {
		out = append(out, sourceVnic{id: v.ID, name: v.Name, networkID: v.NetworkID})
	}
	return out, nil
}

// customizersOf names the customizers of a VM or template, by name.
func (m *Manager) customizersOf(ctx context.Context, sourceID string) ([]NamedRef, error) {
	all, err := m.st.Read().CloneCustomizers(ctx)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read clone customizers", Cause: err}
	}
	var out []NamedRef
	for _, c := range all {
		if c.SourceID() == sourceID {
			out = append(out, NamedRef{c.ID, c.Name})
		}
	}
	return out, nil
}

// CreateCloneCustomizer makes a customizer of the VM or template source
// names (typ Vm takes a template too, as in Oracle VM 3).
func (m *Manager) CreateCloneCustomizer(ctx context.Context, name, description, typ string, source Ref) (VmCloneCustomizer, error) {
	name, err := ValidateName("VmCloneCustomizer", name)
	if err != nil {
		return VmCloneCustomizer{}, err
	}
	src, err := m.findCloneSource(ctx, typ, source)
	if err != nil {
		return VmCloneCustomizer{}, err
	}
	if err := m.authorize(ctx, PermVMLifecycle); err != nil {
		return VmCloneCustomizer{}, err
	}
	c := store.CloneCustomizer{ID: NewID(TypeCloneCustomizer), Name: name, PoolID: src.poolID, Description: description, CreatedAt: time.Now()}
	if src.typ == "Vm" {
		c.VMID = src.id
	} else {
		c.TemplateID = src.id
	}
	return jobValue[VmCloneCustomizer](m.job(ctx, actorFrom(ctx), src.poolID, "create VmCloneCustomizer", "create VmCloneCustomizer "+name+" on "+src.String(),
		[]string{src.id}, func(ctx context.Context, j *jobRun) (any, error) {
			err := m.st.Write(ctx, func(q *store.Queries) error { return q.InsertCloneCustomizer(ctx, c) })
			if errors.Is(err, store.ErrConflict) {
				return nil, errorf(KindNotFound, "%s was deleted meanwhile", src)
			}
			if err != nil {
				return nil, &Error{Kind: KindInternal, Msg: "record VmCloneCustomizer", Cause: err}
			}
			return m.CloneCustomizer(ctx, Ref{ID: c.ID})
		}))
}

// CloneCustomizers lists the customizers that pass f (name, pool).
func (m *Manager) CloneCustomizers(ctx context.Context, f Filter) ([]VmCloneCustomizer, error) {
	c, inv, err := m.listing(ctx, f)
	if err != nil {
		return nil, err
	}
	rows, err := m.st.Read().CloneCustomizers(ctx)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read clone customizers", Cause: err}
	}
	return viewsOf(rows, func(x store.CloneCustomizer) bool { return c.match(x.ID, x.Name, "", "", x.PoolID, "") },
		func(x store.CloneCustomizer) (VmCloneCustomizer, error) { return m.customizerView(ctx, inv, x) })
}

// CloneCustomizer returns one customizer with its mappings.
func (m *Manager) CloneCustomizer(ctx context.Context, ref Ref) (VmCloneCustomizer, error) {
	return show(ctx, m, m.customizerKind(), ref, func(inv *inventory, x store.CloneCustomizer) (VmCloneCustomizer, error) {
		return m.customizerView(ctx, inv, x)
	})
}

func (m *Manager) customizerView(ctx context.Context, inv *inventory, c store.CloneCustomizer) (VmCloneCustomizer, error) {
	q := m.st.Read()
	v := VmCloneCustomizer{ID: c.ID, Name: c.Name, Description: c.Description, Pool: inv.poolRef(c.PoolID), CreatedAt: c.CreatedAt}
	if c.VMID != "" {
		vm, err := optional(q.VM(ctx, c.VMID))
		if err != nil {
			return VmCloneCustomizer{}, err
		}
		v.Source, v.SourceType = NamedRef{c.VMID, vm.Name}, "Vm"
	} else {
		t, err := optional(q.VMTemplate(ctx, c.TemplateID))
		if err != nil {
			return VmCloneCustomizer{}, err
		}
		v.Source, v.SourceType = NamedRef{c.TemplateID, t.Name}, "VmTemplate"
	}
	sms, err := q.CloneStorageMappingsOf(ctx, c.ID)
	if err != nil {
		return VmCloneCustomizer{}, &Error{Kind: KindInternal, Msg: "read storage mappings", Cause: err}
	}
	for _, s := range sms {
		view, err := m.storageMappingView(ctx, inv, s, &c)
		if err != nil {
			return VmCloneCustomizer{}, err
		}
		v.StorageMappings = append(v.StorageMappings, view)
	}
	nms, err := q.CloneNetworkMappingsOf(ctx, c.ID)
	if err != nil {
		return VmCloneCustomizer{}, &Error{Kind: KindInternal, Msg: "read network mappings", Cause: err}
	}
	for _, n := range nms {
		view, err := m.networkMappingView(ctx, n, &c)
		if err != nil {
			return VmCloneCustomizer{}, err
		}
		v.NetworkMappings = append(v.NetworkMappings, view)
	}
	return v, nil
}

// customizerSource is the source of customizer c as cloneSource, read now.
func (m *Manager) customizerSource(ctx context.Context, c store.CloneCustomizer) (cloneSource, error) {
	if c.VMID != "" {
		return m.currentSource(ctx, cloneSource{typ: "Vm", id: c.VMID, name: "of VmCloneCustomizer " + c.Name})
	}
	return m.currentSource(ctx, cloneSource{typ: "VmTemplate", id: c.TemplateID, name: "of VmCloneCustomizer " + c.Name})
}

// mappingSource is the customizer of a mapping (c when the caller has it
// at hand, else read by id; a zero one when it is gone) and its source, nil
// when the customizer or its source is gone.
func (m *Manager) mappingSource(ctx context.Context, id string, c *store.CloneCustomizer) (store.CloneCustomizer, *cloneSource, error) {
	if c == nil {
		cc, err := optional(m.st.Read().CloneCustomizer(ctx, id))
		if err != nil {
			return store.CloneCustomizer{}, nil, err
		}
		c = &cc
	}
	if c.ID == "" {
		return *c, nil, nil
	}
	src, err := m.customizerSource(ctx, *c)
	if KindOf(err) == KindNotFound {
		return *c, nil, nil
	}
	if err != nil {
		return store.CloneCustomizer{}, nil, err
	}
	return *c, &src, nil
}

func (m *Manager) storageMappingView(ctx context.Context, inv *inventory, s store.CloneStorageMapping, c *store.CloneCustomizer) (VmCloneStorageMapping, error) {
	cc, src, err := m.mappingSource(ctx, s.CustomizerID, c)
	if err != nil {
		return VmCloneStorageMapping{}, err
	}
	v := VmCloneStorageMapping{ID: s.ID, Name: s.Name, Customizer: NamedRef{cc.ID, cc.Name}, CloneType: s.CloneType,
		Repository: inv.repoRef(s.RepoID), DiskMapping: NamedRef{ID: s.DiskMappingID}}
	if src == nil {
		return v, nil
	}
	disks, err := m.sourceDisks(ctx, *src)
	if err != nil {
		return VmCloneStorageMapping{}, err
	}
	for _, d := range disks {
		if d.mappingID == s.DiskMappingID {
			v.DiskMapping.Name, v.Disk = d.mappingName, NamedRef{d.diskID, d.diskName}
		}
	}
	return v, nil
}

func (m *Manager) networkMappingView(ctx context.Context, n store.CloneNetworkMapping, c *store.CloneCustomizer) (VmCloneNetworkMapping, error) {
	cc, src, err := m.mappingSource(ctx, n.CustomizerID, c)
	if err != nil {
		return VmCloneNetworkMapping{}, err
	}
	net, err := optional(m.st.Read().Network(ctx, n.NetworkID))
	if err != nil {
		return VmCloneNetworkMapping{}, err
	}
	v := VmCloneNetworkMapping{ID: n.ID, Name: n.Name, Customizer: NamedRef{cc.ID, cc.Name}, Vnic: NamedRef{ID: n.VnicID},
		Network: NamedRef{net.ID, net.Name}}
	if src == nil {
		return v, nil
	}
	vnics, err := m.sourceVnics(ctx, *src)
	if err != nil {
		return VmCloneNetworkMapping{}, err
	}
	for _, sv := range vnics {
		if sv.id == n.VnicID {
			v.Vnic.Name = sv.name
		}
	}
	return v, nil
}

// DeleteCloneCustomizer deletes a customizer and its mappings.
func (m *Manager) DeleteCloneCustomizer(ctx context.Context, ref Ref) (VmCloneCustomizer, error) {
	c, err := findFor(ctx, m, m.customizerKind(), ref, PermVMLifecycle)
	if err != nil {
		return VmCloneCustomizer{}, err
	}
	return jobValue[VmCloneCustomizer](m.job(ctx, actorFrom(ctx), c.PoolID, "delete VmCloneCustomizer", "delete VmCloneCustomizer "+c.Name,
		[]string{c.SourceID()}, func(ctx context.Context, j *jobRun) (any, error) {
			view, err := m.CloneCustomizer(ctx, Ref{ID: c.ID})
			if err != nil {
				return nil, err
			}
			if err := m.st.Write(ctx, func(q *store.Queries) error { return q.DeleteCloneCustomizer(ctx, c.ID) }); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return nil, errorf(KindNotFound, "VmCloneCustomizer %s was deleted meanwhile", c.Name)
				}
				return nil, &Error{Kind: KindInternal, Msg: "delete VmCloneCustomizer", Cause: err}
			}
			return view, nil
		}))
}

// CloneStorageMappingRequest describes a storage mapping: which of the
// source's disk mappings (its id or name, "<source>/<disk>", or the name or
// id of the disk in it), how, and into which repository.
type CloneStorageMappingRequest struct {
	Name        string
	Customizer  Ref
	DiskMapping string
	CloneType   string
	Repository  Ref
}

// CreateCloneStorageMapping adds a storage mapping to a customizer; one per
// disk mapping of its source.
func (m *Manager) CreateCloneStorageMapping(ctx context.Context, req CloneStorageMappingRequest) (VmCloneStorageMapping, error) {
	name, err := ValidateName("VmCloneStorageMapping", req.Name)
	if err != nil {
		return VmCloneStorageMapping{}, err
	}
	if !containsFold(CloneTypes, req.CloneType) {
		return VmCloneStorageMapping{}, errorf(KindInvalidArgument, "cloneType %q is not one of %s", req.CloneType, strings.Join(CloneTypes, ", "))
	}
	cloneType := strings.ToUpper(req.CloneType)
	c, err := findFor(ctx, m, m.customizerKind(), req.Customizer, PermVMLifecycle)
	if err != nil {
		return VmCloneStorageMapping{}, err
	}
	repo, err := m.findRepository(ctx, req.Repository)
	if err != nil {
		return VmCloneStorageMapping{}, err
	}
	if repo.PoolID != c.PoolID {
		return VmCloneStorageMapping{}, errorf(KindInvalidArgument, "Repository %s is not a repository of the server pool of VmCloneCustomizer %s; clones copy within one pool", repo.Name, c.Name)
	}
	s := store.CloneStorageMapping{ID: NewID(TypeCloneStorageMapping), Name: name, CustomizerID: c.ID, CloneType: cloneType,
		RepoID: repo.ID, CreatedAt: time.Now()}
	return jobValue[VmCloneStorageMapping](m.job(ctx, actorFrom(ctx), c.PoolID, "create VmCloneStorageMapping",
		"create VmCloneStorageMapping "+name+" on VmCloneCustomizer "+c.Name, []string{c.SourceID()},
		func(ctx context.Context, j *jobRun) (any, error) {
			src, err := m.customizerSource(ctx, c)
			if err != nil {
				return nil, err
			}
			disks, err := m.sourceDisks(ctx, src)
			if err != nil {
				return nil, err
			}
			d, err := pickSourceDisk(disks, req.DiskMapping, src)
			if err != nil {
				return nil, err
			}
			s.DiskMappingID = d.mappingID
			err = m.st.Write(ctx, func(q *store.Queries) error { return q.InsertCloneStorageMapping(ctx, s) })
			if errors.Is(err, store.ErrConflict) {
				return nil, errorf(KindConflict, "VmCloneCustomizer %s has a storage mapping of VmDiskMapping %s already (or was deleted meanwhile); delete that first",
					c.Name, d.mappingName)
			}
			if err != nil {
				return nil, &Error{Kind: KindInternal, Msg: "record VmCloneStorageMapping", Cause: err}
			}
			inv, err := m.inventory(ctx)
			if err != nil {
				return nil, err
			}
			return m.storageMappingView(ctx, inv, s, nil)
		}))
}

// pickSourceDisk finds the disk mapping of the source that what names.
func pickSourceDisk(disks []sourceDisk, what string, src cloneSource) (sourceDisk, error) {
	var found []sourceDisk
	for _, d := range disks {
		if what == d.mappingID || what == d.mappingName || what == d.diskID || what == d.diskName {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		names := make([]string, len(disks))
		for i, d := range disks {
			names[i] = d.mappingName
		}
		if len(names) == 0 {
			return sourceDisk{}, errorf(KindNotFound, "%s has no disks to map", src)
		}
		return sourceDisk{}, errorf(KindNotFound, "%s has no VmDiskMapping %q; its mappings: %s (give one's name or id, or its disk's)",
			src, what, strings.Join(names, ", "))
	}
	return sourceDisk{}, errorf(KindAmbiguous, "%q names %d disk mappings of %s; give the mapping's id", what, len(found), src)
}

// CloneStorageMappings lists the storage mappings the actor sees, those of
// customizer when it is given.
func (m *Manager) CloneStorageMappings(ctx context.Context, customizer Ref) ([]VmCloneStorageMapping, error) {
	only, sc, err := m.customizerScope(ctx, customizer)
	if err != nil {
		return nil, err
	}
	rows, err := m.st.Read().CloneStorageMappings(ctx)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read storage mappings", Cause: err}
	}
	inv, err := m.inventory(ctx)
	if err != nil {
		return nil, err
	}
	return viewsOf(rows, func(s store.CloneStorageMapping) bool {
		return (only == "" || s.CustomizerID == only) && sc.sees(m.customizerPool(s.CustomizerID))
	}, func(s store.CloneStorageMapping) (VmCloneStorageMapping, error) {
		return m.storageMappingView(ctx, inv, s, nil)
	})
}

// CloneStorageMapping returns one storage mapping.
func (m *Manager) CloneStorageMapping(ctx context.Context, ref Ref) (VmCloneStorageMapping, error) {
	return show(ctx, m, m.storageMappingKind(), ref, func(inv *inventory, s store.CloneStorageMapping) (VmCloneStorageMapping, error) {
		return m.storageMappingView(ctx, inv, s, nil)
	})
}

// DeleteCloneStorageMapping deletes a storage mapping.
func (m *Manager) DeleteCloneStorageMapping(ctx context.Context, ref Ref) (VmCloneStorageMapping, error) {
	s, err := findFor(ctx, m, m.storageMappingKind(), ref, PermVMLifecycle)
	if err != nil {
		return VmCloneStorageMapping{}, err
	}
	view, err := m.CloneStorageMapping(ctx, Ref{ID: s.ID})
	if err != nil {
		return VmCloneStorageMapping{}, err
	}
	if err := m.deleteMapping(ctx, "VmCloneStorageMapping", s.ID, s.Name, s.CustomizerID,
		func(q *store.Queries) error { return q.DeleteCloneStorageMapping(ctx, s.ID) }); err != nil {
		return VmCloneStorageMapping{}, err
	}
	return view, nil
}

// deleteMapping deletes a mapping of a customizer as a job that holds the
// customizer's source's lock, as clone does.
func (m *Manager) deleteMapping(ctx context.Context, typ, id, name, customizerID string, del func(q *store.Queries) error) error {
	c, err := optional(m.st.Read().CloneCustomizer(ctx, customizerID))
	if err != nil {
		return err
	}
	_, err = m.job(ctx, actorFrom(ctx), c.PoolID, "delete "+typ, "delete "+typ+" "+name, []string{c.SourceID(), id},
		func(ctx context.Context, j *jobRun) (any, error) {
			err := m.st.Write(ctx, del)
			if errors.Is(err, store.ErrNotFound) {
				return nil, errorf(KindNotFound, "%s %s was deleted meanwhile", typ, name)
			}
			if err != nil {
				return nil, &Error{Kind: KindInternal, Msg: "delete " + typ, Cause: err}
			}
			return nil, nil
		})
	return err
}

// customizerScope is how the lists of mappings start: the id of the
// customizer ref names ("" for every one) and the pools the actor sees.
func (m *Manager) customizerScope(ctx context.Context, ref Ref) (string, scope, error) {
	var only string
	if ref != (Ref{}) {
		c, err := resolve(ctx, m, m.customizerKind(), ref)
		if err != nil {
			return "", scope{}, err
		}
		only = c.ID
	}
	sc, err := m.scope(ctx)
	return only, sc, err
}

// CloneNetworkMappingRequest describes a network mapping: which of the
// source's VNICs (name or id) goes on which network.
type CloneNetworkMappingRequest struct {
	Name       string
	Customizer Ref
	Vnic       string
	Network    Ref
}

// CreateCloneNetworkMapping adds a network mapping to a customizer; one per
// VNIC of its source.
func (m *Manager) CreateCloneNetworkMapping(ctx context.Context, req CloneNetworkMappingRequest) (VmCloneNetworkMapping, error) {
	name, err := ValidateName("VmCloneNetworkMapping", req.Name)
	if err != nil {
		return VmCloneNetworkMapping{}, err
	}
	c, err := findFor(ctx, m, m.customizerKind(), req.Customizer, PermVMLifecycle)
	if err != nil {
		return VmCloneNetworkMapping{}, err
	}
	net, err := resolve(ctx, m, m.networkKind(), req.Network)
	if err != nil {
		return VmCloneNetworkMapping{}, err
	}
	if net.PoolID != c.PoolID {
		return VmCloneNetworkMapping{}, errorf(KindInvalidArgument, "Network %s is not a network of the server pool of VmCloneCustomizer %s", net.Name, c.Name)
	}
	n := store.CloneNetworkMapping{ID: NewID(TypeCloneNetworkMapping), Name: name, CustomizerID: c.ID, NetworkID: net.ID, CreatedAt: time.Now()}
	return jobValue[VmCloneNetworkMapping](m.job(ctx, actorFrom(ctx), c.PoolID, "create VmCloneNetworkMapping",
		"create VmCloneNetworkMapping "+name+" on VmCloneCustomizer "+c.Name, []string{c.SourceID()},
		func(ctx context.Context, j *jobRun) (any, error) {
			src, err := m.customizerSource(ctx, c)
			if err != nil {
				return nil, err
			}
			vnics, err := m.sourceVnics(ctx, src)
			if err != nil {
				return nil, err
			}
			var found []sourceVnic
			for _, v := range vnics {
				if v.id == req.Vnic || v.name == req.Vnic {
					found = append(found, v)
				}
			}
			switch {
			case len(found) == 0:
				names := make([]string, len(vnics))
				for i, v := range vnics {
					names[i] = v.name
				}
				if len(names) == 0 {
					return nil, errorf(KindNotFound, "%s has no Vnic to map", src)
				}
				return nil, errorf(KindNotFound, "%s has no Vnic %q; its Vnics: %s", src, req.Vnic, strings.Join(names, ", "))
			case len(found) > 1:
				return nil, errorf(KindAmbiguous, "%q names %d Vnics of %s; give the Vnic's id", req.Vnic, len(found), src)
			}
			n.VnicID = found[0].id
			err = m.st.Write(ctx, func(q *store.Queries) error { return q.InsertCloneNetworkMapping(ctx, n) })
			if errors.Is(err, store.ErrConflict) {
				return nil, errorf(KindConflict, "VmCloneCustomizer %s has a network mapping of Vnic %s already (or was deleted meanwhile); delete that first",
					c.Name, found[0].name)
			}
			if err != nil {
				return nil, &Error{Kind: KindInternal, Msg: "record VmCloneNetworkMapping", Cause: err}
			}
			return m.networkMappingView(ctx, n, nil)
		}))
}

// CloneNetworkMappings lists the network mappings the actor sees, those of
// customizer when it is given.
func (m *Manager) CloneNetworkMappings(ctx context.Context, customizer Ref) ([]VmCloneNetworkMapping, error) {
	only, sc, err := m.customizerScope(ctx, customizer)
	if err != nil {
		return nil, err
	}
	rows, err := m.st.Read().CloneNetworkMappings(ctx)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read network mappings", Cause: err}
	}
	return viewsOf(rows, func(n store.CloneNetworkMapping) bool {
		return (only == "" || n.CustomizerID == only) && sc.sees(m.customizerPool(n.CustomizerID))
	}, func(n store.CloneNetworkMapping) (VmCloneNetworkMapping, error) {
		return m.networkMappingView(ctx, n, nil)
	})
}

// CloneNetworkMapping returns one network mapping.
func (m *Manager) CloneNetworkMapping(ctx context.Context, ref Ref) (VmCloneNetworkMapping, error) {
	n, err := resolve(ctx, m, m.networkMappingKind(), ref)
	if err != nil {
		return VmCloneNetworkMapping{}, err
	}
	return m.networkMappingView(ctx, n, nil)
}

// DeleteCloneNetworkMapping deletes a network mapping.
func (m *Manager) DeleteCloneNetworkMapping(ctx context.Context, ref Ref) (VmCloneNetworkMapping, error) {
	n, err := findFor(ctx, m, m.networkMappingKind(), ref, PermVMLifecycle)
	if err != nil {
		return VmCloneNetworkMapping{}, err
	}
	view, err := m.networkMappingView(ctx, n, nil)
	if err != nil {
		return VmCloneNetworkMapping{}, err
	}
	if err := m.deleteMapping(ctx, "VmCloneNetworkMapping", n.ID, n.Name, n.CustomizerID,
		func(q *store.Queries) error { return q.DeleteCloneNetworkMapping(ctx, n.ID) }); err != nil {
		return VmCloneNetworkMapping{}, err
	}
	return view, nil
}

// containsFold reports whether list holds s, case-insensitively.
func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// mappingError is the refusal of a clone whose customizer names what its
// source no longer has.
func mappingError(typ, name, what string, src cloneSource) error {
	return errorf(KindInvalidState, "%s %s names %s, which %s no longer has; delete the mapping (delete %s name=%s)", typ, name, what, src, typ, name)
}
