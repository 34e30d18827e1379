package backend

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
	"xenmanager/store"
)

// VmTemplate states: a template imported by a non-administrator stays
// Pending, and is not cloned, until an administrator approves it, as an
// ISO is (CdromPending).
const (
	TemplateApproved = CdromApproved
	TemplatePending  = CdromPending
)

// VmTemplate is a VM template as the operator sees it: Templates/<id>/vm.cfg
// in its repository and the disks that vm.cfg names.
type VmTemplate struct {
	ID, Name, Description string
	Pool, Repository      NamedRef
	MemoryMiB, CPUCount   int64
	CPUCountLimit         int64 // 0: equal to CPUCount
	DomainType, OSType    string
	Origin                string // the import's URL, or "Vm <name>" / "VmTemplate <name>"
	State                 string
	CreatedBy             string
	Path                  string // of its vm.cfg, as the servers see it
	Disks                 []TemplateDisk
	Vnics                 []TemplateVnic
	Customizers           []NamedRef
	// CloningJob is the job of a clone from the template that runs now,
	// "" when none: while it runs the template is not edited or deleted.
	CloningJob string
	CreatedAt  time.Time
}

func (t VmTemplate) String() string { return "VmTemplate " + t.Name }

// TemplateDisk is a disk of a template in its slot: its VmDiskMapping (ID)
// and the image file.
type TemplateDisk struct {
	ID, Name   string
	DiskID     string // VirtualDisks/<DiskID>.img
	Repository NamedRef
	Slot       int
	SizeMiB    int64
	Sparse     bool
	Path       string
}

// TemplateVnic is a network interface of a template; Network is empty for
// one whose bridge no network of the pool has (an import's).
type TemplateVnic struct {
	ID, Name, MAC string
	Network       NamedRef
}

// templateKind resolves templates.
func (m *Manager) templateKind() kind[store.VMTemplate] {
	q := m.st.Read()
	return kind[store.VMTemplate]{"VmTemplate", q.VMTemplate, q.VMTemplatesByName, q.VMTemplates,
		func(x store.VMTemplate) string { return x.Name }, func(x store.VMTemplate) string { return x.ID },
		func(x store.VMTemplate) string { return x.PoolID }}
}

// templateDir is where the servers of the pool see a template's directory.
func templateDir(r store.Repository, templateID string) string {
	return r.MountPoint + "/Templates/" + templateID
}

// VMTemplates lists the templates that pass f (name, pool, repository,
// tag).
func (m *Manager) VMTemplates(ctx context.Context, f Filter) ([]VmTemplate, error) {
	l, err := m.StreamVMTemplates(ctx, f)
	return collected(ctx, l, err)
}

// VMTemplate returns one template, with its disks, VNICs and customizers.
func (m *Manager) VMTemplate(ctx context.Context, ref Ref) (VmTemplate, error) {
	return show(ctx, m, m.templateKind(), ref, func(inv *inventory, t store.VMTemplate) (VmTemplate, error) {
		return m.templateView(ctx, m.st.Read(), inv, t)
	})
}

// templateView builds a template's view; a store that fails fails it.
func (m *Manager) templateView(ctx context.Context, q *store.Queries, inv *inventory, t store.VMTemplate) (VmTemplate, error) {
	v := VmTemplate{ID: t.ID, Name: t.Name, Description: t.Description, Pool: inv.poolRef(t.PoolID), Repository: inv.repoRef(t.RepoID),
		MemoryMiB: t.MemoryMiB, CPUCount: t.CPUCount, CPUCountLimit: t.CPUCountLimit, DomainType: t.DomainType, OSType: t.OSType,
		Origin: t.Origin, State: t.State, CreatedBy: t.CreatedBy, Path: templateDir(inv.repos[t.RepoID], t.ID) + "/vm.cfg",
		CloningJob: m.clones.jobOf(t.ID), CreatedAt: t.CreatedAt}
	disks, err := q.TemplateDisks(ctx, t.ID)
	if err != nil {
		return VmTemplate{}, &Error{Kind: KindInternal, Msg: "read template disks", Cause: err}
	}
	for _, d := range disks {
		v.Disks = append(v.Disks, TemplateDisk{ID: d.ID, Name: d.Name, DiskID: d.DiskID, Repository: inv.repoRef(d.RepoID), Slot: d.Slot,
			SizeMiB: d.SizeMiB, Sparse: d.Sparse, Path: diskPath(inv.repos[d.RepoID], d.DiskID)})
	}
	vnics, err := q.TemplateVnics(ctx, t.ID)
	if err != nil {
		return VmTemplate{}, &Error{Kind: KindInternal, Msg: "read template vnics", Cause: err}
	}
	for _, vn := range vnics {
		var net NamedRef
		if vn.NetworkID != "" {
			n, err := optional(q.Network(ctx, vn.NetworkID))
			if err != nil {
				return VmTemplate{}, err
			}
			net = NamedRef{n.ID, n.Name}
		}
		v.Vnics = append(v.Vnics, TemplateVnic{ID: vn.ID, Name: vn.Name, MAC: vn.MAC, Network: net})
	}
	if v.Customizers, err = m.customizersOf(ctx, t.ID); err != nil {
		return VmTemplate{}, err
	}
	return v, nil
}

// templateServers returns the running servers of the pool with the
// utility role, with their clients, once each has said that its agent
// serves templates and copies (agentapi.ExtTemplates): template, clone and
// import work is refused on a pool where one does not, naming it. what
// names the work in the refusal ("clone Vm web1").
func (m *Manager) templateServers(ctx context.Context, poolID, what string) ([]store.Server, []*agentclient.Client, error) {
	if _, _, err := m.utilityServer(ctx, poolID); err != nil {
		if errors.Is(err, errNoServer) {
			pool, perr := optional(m.st.Read().ServerPool(ctx, poolID))
			if perr != nil {
				return nil, nil, perr
			}
			return nil, nil, errorf(KindInvalidState, "%s: ServerPool %s has no running server to do it through", what, pool.Name)
		}
		return nil, nil, err
	}
	servers, err := m.st.Read().ServersInPool(ctx, poolID)
	if err != nil {
		return nil, nil, &Error{Kind: KindInternal, Msg: "read servers", Cause: err}
	}
	var out []store.Server
	var clients []*agentclient.Client
	var without []string
	for _, s := range servers {
		if s.Status != ServerRunning || !hasRole(s.Roles, RoleUtility) {
			continue
		}
		c, err := m.clients.get(s)
		if err != nil {
			return nil, nil, err
		}
		ver, err := c.GetAPIVersion(ctx)
		if err != nil {
			return nil, nil, agentError(what, s.Name, err)
		}
		if !ver.Has(agentapi.ExtTemplates) {
			without = append(without, s.Name)
			continue
		}
		out = append(out, s)
		clients = append(clients, c)
	}
	if len(without) > 0 {
		return nil, nil, errorf(KindInvalidState, "%s: the agent of server %s does not serve templates and copies (its get_api_version does not list %q); upgrade it, or take the utility role from it (edit Server roles=xen)",
			what, strings.Join(without, ", server "), agentapi.ExtTemplates)
	}
	return out, clients, nil
}

// templateServer is templateServers' first server.
func (m *Manager) templateServer(ctx context.Context, poolID, what string) (store.Server, *agentclient.Client, error) {
	servers, clients, err := m.templateServers(ctx, poolID, what)
	if err != nil {
		return store.Server{}, nil, err
	}
	return servers[0], clients[0], nil
}

// mayChangeTemplate checks that the actor may edit or delete template t
// (verb says which): a Pending one is its importer's or an
// Administrator's, as a Pending ISO is (mayChangeCdrom); an Approved one
// is for whoever manages the pool's VMs. And no clone from it may run.
func (m *Manager) mayChangeTemplate(ctx context.Context, t store.VMTemplate, verb string) error {
	if err := m.authorize(ctx, PermVMLifecycle); err != nil {
		return err
	}
	a := actorFrom(ctx)
	if t.State == TemplatePending && !roleAllows(a.Role, PermManage) && t.CreatedBy != a.User {
		return errorf(KindPermission, "user %s (%s) may not %s VmTemplate %s: it is Pending, imported by %s, and an Operator changes or deletes only the Pending templates they imported",
			a.User, a.Role, verb, t.Name, t.CreatedBy)
	}
	if job := m.clones.jobOf(t.ID); job != "" {
		return errorf(KindConflict, "VmTemplate %s is being cloned (job %s); %s it when the clone has ended", t.Name, job, verb)
	}
	return nil
}

// currentTemplate reads a template again; one deleted meanwhile is NotFound.
func (m *Manager) currentTemplate(ctx context.Context, id, name string) (store.VMTemplate, error) {
	t, err := optional(m.st.Read().VMTemplate(ctx, id))
	if err != nil {
		return store.VMTemplate{}, err
	}
	if t.ID == "" {
		return store.VMTemplate{}, errorf(KindNotFound, "VmTemplate %s was deleted meanwhile", name)
	}
	return t, nil
}

// EditTemplateRequest holds a template's settings to change; nil fields
// stay.
type EditTemplateRequest struct {
	Name, Description, DomainType, OSType *string
	MemoryMiB, CPUCount, CPUCountLimit    *int64
}

// EditVMTemplate changes a template's settings: its vm.cfg is written
// again (create_template, replace) and then its record. A clone from the
// template that runs refuses it.
func (m *Manager) EditVMTemplate(ctx context.Context, ref Ref, req EditTemplateRequest) (VmTemplate, error) {
	if req.Name != nil {
		n, err := ValidateName("VmTemplate", *req.Name)
		if err != nil {
			return VmTemplate{}, err
		}
		req.Name = &n
	}
	if req.DomainType != nil {
		if err := checkDomainType(*req.DomainType); err != nil {
			return VmTemplate{}, err
		}
	}
	t, err := resolve(ctx, m, m.templateKind(), ref)
	if err != nil {
		return VmTemplate{}, err
	}
	if err := m.mayChangeTemplate(ctx, t, "edit"); err != nil {
		return VmTemplate{}, err
	}
	objects := []string{t.ID}
	if req.Name != nil {
		objects = append(objects, "name:VmTemplate:"+*req.Name)
	}
	return jobValue[VmTemplate](m.job(ctx, actorFrom(ctx), t.PoolID, "edit VmTemplate", "edit VmTemplate "+t.Name, objects,
		func(ctx context.Context, j *jobRun) (any, error) {
			cur, err := m.currentTemplate(ctx, t.ID, t.Name)
			if err != nil {
				return nil, err
			}
			if err := m.mayChangeTemplate(ctx, cur, "edit"); err != nil {
				return nil, err
			}
			next := cur
			if req.Name != nil && *req.Name != cur.Name {
				taken, err := m.templateNamesTaken(ctx, []string{*req.Name})
				if err != nil {
					return nil, err
				}
				if len(taken) > 0 {
					return nil, errorf(KindConflict, "edit VmTemplate %s refused: %s; choose another name", cur.Name, describeTaken("VmTemplate", taken))
				}
				next.Name = *req.Name
			}
			if req.Description != nil {
				next.Description = *req.Description
			}
			if req.DomainType != nil {
				next.DomainType = *req.DomainType
			}
			if req.OSType != nil {
				next.OSType = *req.OSType
			}
			if req.MemoryMiB != nil {
				next.MemoryMiB = *req.MemoryMiB
			}
			if req.CPUCount != nil {
				next.CPUCount = *req.CPUCount
			}
			if req.CPUCountLimit != nil {
				next.CPUCountLimit = *req.CPUCountLimit
			}
			if err := checkVMSizes(&next.MemoryMiB, nil, &next.CPUCount, nil); err != nil {
				return nil, err
			}
			if next.CPUCountLimit != 0 && next.CPUCount > next.CPUCountLimit {
				return nil, errorf(KindInvalidArgument, "cpuCount %d is above cpuCountLimit %d", next.CPUCount, next.CPUCountLimit)
			}
			what := "edit VmTemplate " + cur.Name
			srv, c, err := m.templateServer(ctx, cur.PoolID, what)
			if err != nil {
				return nil, err
			}
			params, err := c.GetTemplateConfig(ctx, cur.RepoID, cur.ID)
			if err != nil {
				return nil, agentError(what, srv.Name, err)
			}
			plainLists(params)
			setTemplateSettings(params, next)
			if err := c.CreateTemplate(ctx, cur.RepoID, cur.ID, params, true); err != nil {
				return nil, agentError(what, srv.Name, err)
			}
			if err := m.st.Write(ctx, func(q *store.Queries) error { return q.UpdateVMTemplate(ctx, next) }); err != nil {
				return nil, &Error{Kind: KindInternal, Msg: "record VmTemplate settings", Cause: err}
			}
			return m.VMTemplate(ctx, Ref{ID: t.ID})
		}))
}

// setTemplateSettings writes a template's recorded settings into its
// vm.cfg's params.
func setTemplateSettings(params agentapi.VMParams, t store.VMTemplate) {
	limit := t.CPUCountLimit
	if limit == 0 {
		limit = t.CPUCount
	}
	params[agentapi.KeySimpleName] = t.Name
	params[agentapi.KeyDescription] = t.Description
	params[agentapi.KeyDomainType] = t.DomainType
	params[agentapi.KeyMemory] = t.MemoryMiB
	params[agentapi.KeyMaxMem] = t.MemoryMiB
	params[agentapi.KeyVCPUs] = t.CPUCount
	params[agentapi.KeyMaxVCPUs] = limit
	if t.OSType != "" {
		params[agentapi.KeyOSType] = t.OSType
	}
}

// checkDomainType accepts the domain types of the protocol.
func checkDomainType(dt string) error {
	switch dt {
	case DomainXenPVM, DomainXenHVM, DomainXenHVMPVDrivers:
		return nil
	}
	return errorf(KindInvalidArgument, "domain type %q is not one of %s, %s, %s", dt, DomainXenHVM, DomainXenHVMPVDrivers, DomainXenPVM)
}

// DeleteVMTemplate deletes a template: its disks' files, its directory,
// then its records (its customizers and tags go with it). A clone from it
// that runs refuses it. A delete that fails half-way leaves the record,
// and a second delete finishes the work (files already gone are not an
// error).
func (m *Manager) DeleteVMTemplate(ctx context.Context, ref Ref) (VmTemplate, error) {
	t, err := resolve(ctx, m, m.templateKind(), ref)
	if err != nil {
		return VmTemplate{}, err
	}
	if err := m.mayChangeTemplate(ctx, t, "delete"); err != nil {
		return VmTemplate{}, err
	}
	return jobValue[VmTemplate](m.job(ctx, actorFrom(ctx), t.PoolID, "delete VmTemplate", "delete VmTemplate "+t.Name, []string{t.ID},
		func(ctx context.Context, j *jobRun) (any, error) {
			cur, err := m.currentTemplate(ctx, t.ID, t.Name)
			if err != nil {
				return nil, err
			}
			if err := m.mayChangeTemplate(ctx, cur, "delete"); err != nil {
				return nil, err
			}
			view, err := m.VMTemplate(ctx, Ref{ID: t.ID})
			if err != nil {
				return nil, err
			}
			what := "delete VmTemplate " + cur.Name
			srv, c, err := m.templateServer(ctx, cur.PoolID, what)
			if err != nil {
				return nil, err
			}
			if err := m.removeTemplateFiles(ctx, c, cur.RepoID, cur.ID, view.Disks); err != nil {
				return nil, agentError(what, srv.Name, err)
			}
			if err := m.st.Write(ctx, func(q *store.Queries) error { return q.DeleteVMTemplate(ctx, cur.ID) }); err != nil {
				return nil, &Error{Kind: KindInternal, Msg: "delete VmTemplate record", Cause: err}
			}
			return view, nil
		}))
}

// removeTemplateFiles deletes a template's disk images and then its
// directory; files already gone are not an error.
func (m *Manager) removeTemplateFiles(ctx context.Context, c *agentclient.Client, repoID, templateID string, disks []TemplateDisk) error {
	for _, d := range disks {
		if err := notFoundIsGone(c.DeleteVirtualDisk(ctx, d.Repository.ID, d.DiskID)); err != nil {
			return err
		}
	}
	return notFoundIsGone(c.DeleteTemplate(ctx, repoID, templateID))
}

// notFoundIsGone takes an agent's NotFound for what a delete wanted.
func notFoundIsGone(err error) error {
	if f, ok := agentapi.AsFault(err); ok && f.Code == agentapi.FaultNotFound {
		return nil
	}
	return err
}

// ApproveVMTemplate lets a Pending template be cloned (Administrators).
func (m *Manager) ApproveVMTemplate(ctx context.Context, ref Ref) (VmTemplate, error) {
	t, err := findFor(ctx, m, m.templateKind(), ref, PermManage)
	if err != nil {
		return VmTemplate{}, err
	}
	return jobValue[VmTemplate](m.job(ctx, actorFrom(ctx), t.PoolID, "approve VmTemplate", "approve VmTemplate "+t.Name, []string{t.ID},
		func(ctx context.Context, j *jobRun) (any, error) {
			cur, err := m.currentTemplate(ctx, t.ID, t.Name)
			if err != nil {
				return nil, err
			}
			if cur.State == TemplateApproved {
				return nil, errorf(KindInvalidState, "VmTemplate %s is Approved already", cur.Name)
			}
			if err := m.st.Write(ctx, func(q *store.Queries) error { return q.SetVMTemplateState(ctx, cur.ID, TemplateApproved) }); err != nil {
				return nil, &Error{Kind: KindInternal, Msg: "record approval", Cause: err}
			}
			return m.VMTemplate(ctx, Ref{ID: t.ID})
		}))
}

// cloneRegistry knows which VMs and templates a clone copies from now, so
// that an edit or delete of a template is refused at once, naming the
// clone's job, rather than left to wait for the template's lock.
type cloneRegistry struct {
	mu       sync.Mutex        // guards bySource
	bySource map[string]string // source id -> the clone's job id
}

func newCloneRegistry() *cloneRegistry { return &cloneRegistry{bySource: map[string]string{}} }

// begin records that job clones from sourceID; the returned func ends it.
func (r *cloneRegistry) begin(sourceID, job string) (end func()) {
	r.mu.Lock()
	r.bySource[sourceID] = job
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.bySource, sourceID)
		r.mu.Unlock()
	}
}

// jobOf returns the job of the clone from sourceID that runs, or "".
func (r *cloneRegistry) jobOf(sourceID string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bySource[sourceID]
}

// templateNamesTaken returns those of names that a template the actor
// sees already has, sorted.
func (m *Manager) templateNamesTaken(ctx context.Context, names []string) ([]string, error) {
	return namesTaken(ctx, m, m.templateKind(), names)
}

// namesTaken returns those of names that an object of kind k the actor
// sees already has, sorted.
func namesTaken[T any](ctx context.Context, m *Manager, k kind[T], names []string) ([]string, error) {
	sc, err := m.scope(ctx)
	if err != nil {
		return nil, err
	}
	var taken []string
	for _, n := range names {
		found, err := k.byName(ctx, n)
		if err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "read " + k.name, Cause: err}
		}
		for _, x := range found {
			if sc.sees(k.poolOf(x)) {
				taken = append(taken, n)
				break
			}
		}
	}
	sort.Strings(taken)
	return taken, nil
}

// describeTaken says which names are taken, for a refusal.
func describeTaken(typ string, taken []string) string {
	if len(taken) == 1 {
		return fmt.Sprintf("a %s named %s exists already", typ, taken[0])
	}
	const most = 5
	shown := taken
	more := ""
	if len(taken) > most {
		shown, more = taken[:most], fmt.Sprintf(" and %d more", len(taken)-most)
	}
	return fmt.Sprintf("%d %s names are taken already: %s%s", len(taken), typ, strings.Join(shown, ", "), more)
}
