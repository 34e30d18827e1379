package backend

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
	"xenmanager/store"
)

// MaxCloneCopies bounds copies= of one clone command.
const MaxCloneCopies = 100

// CloneRequest describes a clone: of a VM or template (SourceType Vm takes
// a template too, as in Oracle VM 3), into Copies new VMs or templates
// named by CloneNames.
type CloneRequest struct {
	SourceType string // Vm or VmTemplate
	Source     Ref
	DestType   string // Vm or VmTemplate
	DestName   string
	Copies     int // 0 is 1
	// Pool, when given, must be the source's pool: a clone copies within
	// one pool, whose servers see both ends of every copy.
	Pool Ref
	// Repository is where the copies' vm.cfg go, and the disks no storage
	// mapping places; the source's repository when empty (and each disk
	// into its own repository).
	Repository Ref
	// Customizer is a VmCloneCustomizer of the source, or empty.
	Customizer Ref
}

// CloneCopy is one copy a clone made, or failed to make.
type CloneCopy struct {
	ID, Name string
	Job      string // the copy's job
	Err      error  // nil when the copy was made
}

// CloneResult is what a clone did: one CloneCopy per name, in order.
type CloneResult struct {
	Source               NamedRef
	SourceType, DestType string
	Copies               []CloneCopy
}

func (r CloneResult) String() string {
	var made []string
	for _, c := range r.Copies {
		if c.Err == nil {
			made = append(made, c.Name)
		}
	}
	return fmt.Sprintf("%d of %d %s made from %s %s: %s", len(made), len(r.Copies), r.DestType, r.SourceType, r.Source.Name,
		strings.Join(made, ", "))
}

// CloneNames are the names of the copies of a clone: destName for one
// copy, destName-1 .. destName-N for N.
func CloneNames(destName string, copies int) []string {
	if copies <= 1 {
		return []string{destName}
	}
	out := make([]string, copies)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", destName, i+1)
	}
	return out
}

// copyModes maps the clone types onto copy_file's modes.
var copyModes = map[string]string{
	CloneSparseCopy:    agentapi.CopySparse,
	CloneNonSparseCopy: agentapi.CopyAllocated,
	CloneThinClone:     agentapi.CopyReflink,
}

// Clone copies a VM or template into new VMs or templates: every disk
// (copy_file, sparse into its own repository unless a customizer or
// targetRepository says otherwise), then the vm.cfg with new ids, names,
// disks and MAC addresses (create_vm or create_template), then the
// records. One parent job holds the source's lock (a stopped VM stays
// stopped, a template is not edited) and the names', and runs one job per
// copy, in parallel within the manager's cloneParallelismPerServer and
// cloneParallelismPerRepository. A copy that fails or is aborted (between
// its disks) removes what it made: the disks copied so far and its vm.cfg,
// and leaves no record; the copies made stay. Every name is checked free
// before anything is copied.
func (m *Manager) Clone(ctx context.Context, req CloneRequest) (CloneResult, error) {
	if req.DestType != "Vm" && req.DestType != "VmTemplate" {
		return CloneResult{}, errorf(KindInvalidArgument, "destType %q is not Vm or VmTemplate", req.DestType)
	}
	if req.Copies == 0 {
		req.Copies = 1
	}
	if req.Copies < 1 || req.Copies > MaxCloneCopies {
		return CloneResult{}, errorf(KindInvalidArgument, "copies %d is out of range: use 1 to %d", req.Copies, MaxCloneCopies)
	}
	if _, err := ValidateName(req.DestType, req.DestName); err != nil {
		return CloneResult{}, err
	}
	names := CloneNames(req.DestName, req.Copies)
	for i, n := range names {
		valid, err := ValidateName(req.DestType, n)
		if err != nil {
			return CloneResult{}, err
		}
		names[i] = valid
	}
	src, err := m.findCloneSource(ctx, req.SourceType, req.Source)
	if err != nil {
		return CloneResult{}, err
	}
	if err := m.authorize(ctx, PermVMLifecycle); err != nil {
		return CloneResult{}, err
	}
	// Every check once before the job, so that a clone that cannot be made
	// fails at once, before any copy; then again under the locks.
	if _, err := m.planClone(ctx, req, src, names); err != nil {
		return CloneResult{}, err
	}
	objects := []string{src.id}
	for _, n := range names {
		objects = append(objects, "name:"+req.DestType+":"+n)
	}
	summary := fmt.Sprintf("clone %s to %s %s", src, req.DestType, names[0])
	if len(names) > 1 {
		summary = fmt.Sprintf("clone %s to %d %s (%s .. %s)", src, len(names), req.DestType, names[0], names[len(names)-1])
	}
	val, err := m.job(ctx, actorFrom(ctx), src.poolID, "clone "+src.typ, summary, objects, func(ctx context.Context, j *jobRun) (any, error) {
		cur, err := m.currentSource(ctx, src)
		if err != nil {
			return nil, err
		}
		plan, err := m.planClone(ctx, req, cur, names)
		if err != nil {
			return nil, err
		}
		return m.runClone(ctx, j, plan)
	})
	res, _ := val.(CloneResult)
	return res, err
}

// clonePlan is what every copy of one clone does.
type clonePlan struct {
	src      cloneSource
	destType string
	names    []string
	repo     store.Repository // where the copies' vm.cfg go
	disks    []planDisk
	vnics    []planVnic
	// servers are the pool's utility servers (templateServers), with
	// their clients; each copy runs on one.
	servers []store.Server
	clients []*agentclient.Client
	// repoIDs are every repository a copy reads or writes.
	repoIDs []string
}

// planDisk is one disk every copy copies.
type planDisk struct {
	src     sourceDisk
	srcPath string
	dst     store.Repository
	mode    string // of copy_file
	sparse  bool   // the copy's
}

// planVnic is one network interface every copy gets.
type planVnic struct {
	name      string
	networkID string // "" only for a template's copy
	bridge    string
}

// planClone checks a clone as the store has it now and says what each
// copy does.
func (m *Manager) planClone(ctx context.Context, req CloneRequest, src cloneSource, names []string) (*clonePlan, error) {
	q := m.st.Read()
	// The names first: a clash is the likeliest refusal, and the one that
	// must come before any copy.
	var taken []string
	var err error
	if req.DestType == "Vm" {
		taken, err = namesTaken(ctx, m, m.vmKind(), names)
	} else {
		taken, err = m.templateNamesTaken(ctx, names)
	}
	if err != nil {
		return nil, err
	}
	if len(taken) > 0 {
		return nil, errorf(KindConflict, "clone %s refused before copying: %s; choose another destName", src, describeTaken(req.DestType, taken))
	}
	switch src.typ {
	case "Vm":
		if err := needState(src.vm, "clone"); err != nil {
			return nil, err
		}
	default:
		if src.tpl.State != TemplateApproved {
			return nil, errorf(KindInvalidState, "VmTemplate %s is %s; an Administrator must approve it before it is cloned (approve VmTemplate id=%s)",
				src.name, src.tpl.State, src.id)
		}
	}
	if req.Pool != (Ref{}) {
		p, err := m.findPool(ctx, req.Pool)
		if err != nil {
			return nil, err
		}
		if p.ID != src.poolID {
			return nil, errorf(KindInvalidArgument, "%s is in another server pool than %s; a clone copies within its source's pool", src, p.Name)
		}
	}
	repos := map[string]store.Repository{}
	repoOf := func(id string) (store.Repository, error) {
		if r, ok := repos[id]; ok {
			return r, nil
		}
		r, err := q.Repository(ctx, id)
		if err != nil {
			return store.Repository{}, &Error{Kind: KindInternal, Msg: "read repository", Cause: err}
		}
		repos[id] = r
		return r, nil
	}
	plan := &clonePlan{src: src, destType: req.DestType, names: names}
	if req.Repository != (Ref{}) {
		r, err := m.findRepository(ctx, req.Repository)
		if err != nil {
			return nil, err
		}
		if r.PoolID != src.poolID {
			return nil, errorf(KindInvalidArgument, "Repository %s is not a repository of the server pool of %s; a clone copies within its source's pool", r.Name, src)
		}
		repos[r.ID] = r
		plan.repo = r
	} else if plan.repo, err = repoOf(src.repoID); err != nil {
		return nil, err
	}

	// The customizer's mappings, by the source's disk mapping and VNIC.
	storage := map[string]store.CloneStorageMapping{}
	network := map[string]store.CloneNetworkMapping{}
	disks, err := m.sourceDisks(ctx, src)
	if err != nil {
		return nil, err
	}
	vnics, err := m.sourceVnics(ctx, src)
	if err != nil {
		return nil, err
	}
	if req.Customizer != (Ref{}) {
		c, err := resolve(ctx, m, m.customizerKind(), req.Customizer)
		if err != nil {
			return nil, err
		}
		if c.SourceID() != src.id {
			owner, err := m.customizerSource(ctx, c)
			if err != nil {
				return nil, err
			}
			return nil, errorf(KindInvalidArgument, "VmCloneCustomizer %s belongs to %s, not to %s", c.Name, owner, src)
		}
		sms, err := q.CloneStorageMappingsOf(ctx, c.ID)
		if err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "read storage mappings", Cause: err}
		}
		for _, s := range sms {
			if !hasDiskMapping(disks, s.DiskMappingID) {
				return nil, mappingError("VmCloneStorageMapping", s.Name, "VmDiskMapping id="+s.DiskMappingID, src)
			}
			storage[s.DiskMappingID] = s
		}
		nms, err := q.CloneNetworkMappingsOf(ctx, c.ID)
		if err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "read network mappings", Cause: err}
		}
		for _, n := range nms {
			if !hasVnic(vnics, n.VnicID) {
				return nil, mappingError("VmCloneNetworkMapping", n.Name, "Vnic id="+n.VnicID, src)
			}
			network[n.VnicID] = n
		}
	}

	used := map[string]bool{plan.repo.ID: true}
	for _, d := range disks {
		from, err := repoOf(d.repoID)
		if err != nil {
			return nil, err
		}
		pd := planDisk{src: d, srcPath: diskPath(from, d.diskID), mode: agentapi.CopySparse, sparse: true}
		dstID := d.repoID
		if req.Repository != (Ref{}) {
			dstID = plan.repo.ID
		}
		if s, ok := storage[d.mappingID]; ok {
			dstID, pd.mode = s.RepoID, copyModes[s.CloneType]
			pd.sparse = s.CloneType == CloneSparseCopy || (s.CloneType == CloneThinClone && d.sparse)
		}
		if pd.dst, err = repoOf(dstID); err != nil {
			return nil, err
		}
		used[from.ID], used[dstID] = true, true
		plan.disks = append(plan.disks, pd)
	}
	for id := range used {
		plan.repoIDs = append(plan.repoIDs, id)
	}
	sort.Strings(plan.repoIDs)

	for _, v := range vnics {
		pv := planVnic{name: v.name, networkID: v.networkID}
		if n, ok := network[v.id]; ok {
			pv.networkID = n.NetworkID
		}
		if pv.networkID == "" {
			if req.DestType == "Vm" {
				return nil, errorf(KindInvalidState, "Vnic %s of %s is on no network of the pool (its bridge has no Network); put its copy on one with a VmCloneNetworkMapping of a VmCloneCustomizer",
					v.name, src)
			}
		} else {
			n, err := q.Network(ctx, pv.networkID)
			if err != nil {
				return nil, &Error{Kind: KindInternal, Msg: "read network", Cause: err}
			}
			pv.bridge = n.Bridge
		}
		plan.vnics = append(plan.vnics, pv)
	}

	if plan.servers, plan.clients, err = m.templateServers(ctx, src.poolID, "clone "+src.String()); err != nil {
		return nil, err
	}
	return plan, nil
}

func hasDiskMapping(disks []sourceDisk, id string) bool {
	for _, d := range disks {
		if d.mappingID == id {
			return true
		}
	}
	return false
}

func hasVnic(vnics []sourceVnic, id string) bool {
	for _, v := range vnics {
		if v.id == id {
			return true
		}
	}
	return false
}

// runClone runs the copies of plan, one job each, and waits for them: the
// parent job's work.
func (m *Manager) runClone(ctx context.Context, j *jobRun, plan *clonePlan) (CloneResult, error) {
	src := plan.src
	res := CloneResult{Source: NamedRef{src.id, src.name}, SourceType: src.typ, DestType: plan.destType, Copies: make([]CloneCopy, len(plan.names))}
	settings, err := m.settings(ctx)
	if err != nil {
		return res, err
	}
	// The source's vm.cfg, which every copy's starts from: what the
	// records do not hold (a boot loader, a console) is kept.
	c := plan.clients[0]
	var base agentapi.VMParams
	if src.typ == "Vm" {
		base, err = c.GetVMConfig(ctx, src.repoID, src.id)
	} else {
		base, err = c.GetTemplateConfig(ctx, src.repoID, src.id)
	}
	if err != nil {
		return res, agentError("clone "+src.String(), plan.servers[0].Name, err)
	}
	plainLists(base)
	macs, err := m.newMACSet(ctx)
	if err != nil {
		return res, err
	}
	end := m.clones.begin(src.id, j.id)
	defer end()

	n := len(plan.names)
	var mu sync.Mutex // guards childJobs and ended
	childJobs := make([]string, n)
	ended := make([]bool, n)
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() { // the parent's progress: the mean of its copies'
		defer close(progressDone)
		tick := time.NewTicker(followProgressEvery)
		defer tick.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-tick.C:
			}
			mu.Lock()
			sum, done := 0, 0
			for i, id := range childJobs {
				switch {
				case ended[i]:
					sum, done = sum+100, done+1
				case id != "":
					sum += m.jobs.live(store.Job{ID: id, Status: JobRunning}).Progress
				}
			}
			mu.Unlock()
			j.progress(sum/n, fmt.Sprintf("%d of %d copies done", done, n))
		}
	}()
	var wg sync.WaitGroup
	for i, name := range plan.names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := NewID(TypeVM)
			if plan.destType == "VmTemplate" {
				id = NewID(TypeVMTemplate)
			}
			child := m.With(RunOptions{Observe: func(jobID string) {
				mu.Lock()
				childJobs[i] = jobID
				mu.Unlock()
			}})
			_, err := child.job(ctx, actorFrom(ctx), src.poolID, "clone copy", fmt.Sprintf("clone %s to %s %s", src, plan.destType, name), []string{id},
				func(ctx context.Context, cj *jobRun) (any, error) {
					return nil, m.cloneCopy(ctx, cj, j, plan, copyTarget{id: id, name: name}, base, macs, settings)
				})
			mu.Lock()
			ended[i] = true
			res.Copies[i] = CloneCopy{ID: id, Name: name, Job: childJobs[i], Err: err}
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(stopProgress)
	<-progressDone

	failed := 0
	var first error
	for _, c := range res.Copies {
		if c.Err != nil {
			if failed++; first == nil {
				first = c.Err
			}
		}
	}
	switch {
	case failed == 0: // an abort that came after the last copy aborted nothing
	case j.check() != nil:
		return res, errorf(KindConflict, "job %s was aborted: %d of %d copies were made before, and stay; the others left nothing", j.id, n-failed, n)
	case failed == 1 && n == 1:
		return res, first
	case failed > 0:
		return res, &Error{Kind: KindOf(first), Msg: fmt.Sprintf("%d of %d copies failed (each left nothing); first: %s", failed, n, Message(first)), Cause: first}
	}
	m.log.Info("clone made", "source", src.String(), "copies", n, "type", plan.destType)
	return res, nil
}

// copyTarget is the VM or template one copy makes.
type copyTarget struct{ id, name string }

// madeDisk is a disk image a copy wrote (or may have), to remove when the
// copy fails.
type madeDisk struct{ repoID, diskID string }

// cloneCopy makes one copy of plan: the job of one copy, which parent's
// abort aborts too.
func (m *Manager) cloneCopy(ctx context.Context, j, parent *jobRun, plan *clonePlan, t copyTarget, base agentapi.VMParams,
	macs *macSet, settings ManagerSettings) error {
	stop := context.AfterFunc(parent.abort, func() {
		if rj, ok := m.jobs.find(j.id); ok {
			m.jobs.askAbort(rj)
		}
	})
	defer stop()
	j.progress(1, "waiting for a copy slot")
	ids := make([]string, len(plan.servers))
	for i, s := range plan.servers {
		ids[i] = s.ID
	}
	at, release, err := m.copySlots.acquire(j.abort, ids, plan.repoIDs, settings.CloneParallelismPerServer, settings.CloneParallelismPerRepository)
	if err != nil {
		if aerr := j.check(); aerr != nil {
			return aerr
		}
		return err
	}
	defer release()
	srv, c := plan.servers[at], plan.clients[at]
	what := fmt.Sprintf("clone %s to %s %s", plan.src, plan.destType, t.name)
	lc, err := m.longClient(srv)
	if err != nil {
		return err
	}
	defer lc.Close()

	var made []madeDisk
	undo := func(cause error, cfgWritten bool) error {
		bg := context.WithoutCancel(ctx)
		var left []string
		if cfgWritten {
			var err error
			if plan.destType == "Vm" {
				err = notFoundIsGone(c.DeleteVM(bg, plan.repo.ID, t.id))
			} else {
				err = notFoundIsGone(c.DeleteTemplate(bg, plan.repo.ID, t.id))
			}
			if err != nil {
				left = append(left, fmt.Sprintf("the vm.cfg of %s (%v)", t.id, err))
			}
		}
		for _, d := range made {
			if err := notFoundIsGone(c.DeleteVirtualDisk(bg, d.repoID, d.diskID)); err != nil {
				left = append(left, fmt.Sprintf("VirtualDisks/%s.img of repository %s (%v)", d.diskID, d.repoID, err))
			}
		}
		if len(left) == 0 {
			return cause
		}
		m.log.Error("a failed clone could not remove what it made", "clone", what, "left", strings.Join(left, "; "))
		return &Error{Kind: KindOf(cause), Msg: fmt.Sprintf("%s; removing what the copy made failed too, and these are left to delete by hand: %s",
			Message(cause), strings.Join(left, "; ")), Cause: cause}
	}

	var diskList []string
	var disks []store.VirtualDisk
	for k, d := range plan.disks {
		if err := j.check(); err != nil {
			return undo(err, false)
		}
		diskID := NewID(TypeVirtualDisk)
		made = append(made, madeDisk{d.dst.ID, diskID})
		dev := deviceName(d.src.slot)
		step := fmt.Sprintf("copying disk %d of %d (%s) on %s", k+1, len(plan.disks), dev, srv.Name)
		from, to := 5+90*k/len(plan.disks), 5+90*(k+1)/len(plan.disks)
		j.progress(from, step)
		if err := j.step(ctx, copyStep(stepCopy, srv, plan, t, made, false)); err != nil {
			return undo(err, false)
		}
		key := agentapi.ProgressCopy + diskID + ".img"
		stopFollow := followProgress(ctx, j, c, key, step, from, to)
		err := lc.CopyFile(ctx, d.srcPath, diskPath(d.dst, diskID), agentapi.CopyOption{Mode: d.mode})
		stopFollow()
		if err != nil {
			return undo(copyError(what, srv.Name, d, err), false)
		}
		size := d.src.sizeMiB
		if p, err := c.GetOperationProgress(ctx, key); err == nil && p.Total > 0 {
			size = (p.Total + 1<<20 - 1) >> 20
		}
		disks = append(disks, store.VirtualDisk{ID: diskID, Name: t.name + "-" + dev, RepoID: d.dst.ID, SizeMiB: size, Sparse: d.sparse,
			CreatedAt: time.Now()})
		diskList = append(diskList, "file:"+diskPath(d.dst, diskID)+","+dev+",w")
	}
	if err := j.check(); err != nil {
		return undo(err, false)
	}
	j.progress(96, "writing the configuration on "+srv.Name)
	vnicMACs := make([]string, len(plan.vnics))
	vifList := []string{}
	for i, v := range plan.vnics {
		vnicMACs[i] = macs.next()
		vif := "mac=" + vnicMACs[i]
		if v.bridge != "" {
			vif += ",bridge=" + v.bridge
		}
		vifList = append(vifList, vif)
	}
	params := maps.Clone(base)
	params[agentapi.KeyName], params[agentapi.KeyUUID], params[agentapi.KeySimpleName] = t.id, t.id, t.name
	params[agentapi.KeyDisk] = append([]string{}, diskList...)
	params[agentapi.KeyVif] = vifList
	call := stepCreateVM
	if plan.destType != "Vm" {
		call = stepCreateTemplate
	}
	if err := j.step(ctx, copyStep(call, srv, plan, t, made, true)); err != nil {
		return undo(err, false)
	}
	if plan.destType == "Vm" {
		err = c.CreateVM(ctx, plan.repo.ID, t.id, params)
	} else {
		err = c.CreateTemplate(ctx, plan.repo.ID, t.id, params, false)
	}
	if err != nil {
		// A vm.cfg that may have been written before the answer was lost
		// is removed too.
		return undo(agentError(what, srv.Name, err), true)
	}
	if err := m.recordCopy(ctx, plan, t, disks, vnicMACs); err != nil {
		return undo(err, true)
	}
	j.progress(100, "done")
	return nil
}

// copyStep is the step of a copy of plan about to make call on server
// srv: what it has made so far (made, and the vm.cfg when config), for the
// leader to remove should the copy's manager die.
func copyStep(call string, srv store.Server, plan *clonePlan, t copyTarget, made []madeDisk, config bool) jobStep {
	s := jobStep{Call: call, VM: t.id, Server: srv.ID, Repo: plan.repo.ID, Template: plan.destType != "Vm", Config: config}
	for _, d := range made {
		s.Disks = append(s.Disks, stepDisk{Repo: d.repoID, ID: d.diskID})
	}
	return s
}

// copyError is the failure of one disk's copy: a THIN_CLONE where the file
// system cannot share blocks says what to use instead.
func copyError(what, server string, d planDisk, err error) error {
	e := agentError(what, server, err)
	if f, ok := agentapi.AsFault(err); ok && f.Code == agentapi.FaultInvalidState && d.mode == agentapi.CopyReflink {
		e.Msg += "; THIN_CLONE needs a repository whose file system shares blocks (reflink): use SPARSE_COPY or NON_SPARSE_COPY there"
	}
	return e
}

// recordCopy records the VM or template a copy made, in one write.
func (m *Manager) recordCopy(ctx context.Context, plan *clonePlan, t copyTarget, disks []store.VirtualDisk, macs []string) error {
	src := plan.src
	now := time.Now()
	var memory, cpus, limit int64
	var domainType, osType, description string
	if src.typ == "Vm" {
		memory, cpus, limit, domainType, osType, description = src.vm.MemoryMiB, src.vm.CPUCount, src.vm.CPUCountLimit, src.vm.DomainType,
			src.vm.OSType, src.vm.Description
	} else {
		memory, cpus, limit, domainType, osType, description = src.tpl.MemoryMiB, src.tpl.CPUCount, src.tpl.CPUCountLimit, src.tpl.DomainType,
			src.tpl.OSType, src.tpl.Description
	}
	err := m.st.Write(ctx, func(q *store.Queries) error {
		if plan.destType == "VmTemplate" {
			tpl := store.VMTemplate{ID: t.id, Name: t.name, PoolID: src.poolID, RepoID: plan.repo.ID, MemoryMiB: memory, CPUCount: cpus,
				CPUCountLimit: limit, DomainType: domainType, OSType: osType, Description: description, Origin: src.String(),
				State: TemplateApproved, CreatedBy: actorFrom(ctx).User, CreatedAt: now}
			var tds []store.TemplateDisk
			for i, d := range disks {
				tds = append(tds, store.TemplateDisk{ID: NewID(TypeDiskMapping), DiskID: d.ID, RepoID: d.RepoID, Name: d.Name,
					Slot: plan.disks[i].src.slot, SizeMiB: d.SizeMiB, Sparse: d.Sparse, CreatedAt: now})
			}
			var tvs []store.TemplateVnic
			for i, v := range plan.vnics {
				tvs = append(tvs, store.TemplateVnic{ID: NewID(TypeVnic), Name: fmt.Sprintf("%s-eth%d", t.name, i), NetworkID: v.networkID,
					Position: i, MAC: macs[i], CreatedAt: now})
			}
			if err := q.InsertVMTemplate(ctx, tpl, tds, tvs); err != nil {
				return err
			}
			return learnTemplateDiskSizes(ctx, q, plan, disks)
		}
		v := store.VM{ID: t.id, Name: t.name, PoolID: src.poolID, RepoID: plan.repo.ID, Status: VMStopped, MemoryMiB: memory,
			CPUCount: cpus, CPUCountLimit: limit, DomainType: domainType, OSType: osType, Description: description, CreatedAt: now}
		if src.typ == "Vm" { // what only a VM has
			v.CPUPinning, v.PreferredServers, v.HA, v.BootOrder, v.StartPolicy = src.vm.CPUPinning, src.vm.PreferredServers, src.vm.HA,
				src.vm.BootOrder, src.vm.StartPolicy
			v.Kernel, v.Ramdisk, v.Extra = src.vm.Kernel, src.vm.Ramdisk, src.vm.Extra
			v.MemoryLimitMiB, v.OnCrash = src.vm.MemoryLimitMiB, src.vm.OnCrash
		}
		if err := q.InsertVM(ctx, v); err != nil {
			return err
		}
		for i, d := range disks {
			if err := q.InsertVirtualDisk(ctx, d); err != nil {
				return err
			}
			mp := store.DiskMapping{ID: NewID(TypeDiskMapping), VMID: t.id, DiskID: d.ID, Slot: plan.disks[i].src.slot, CreatedAt: now}
			if err := q.InsertDiskMapping(ctx, mp); err != nil {
				return err
			}
		}
		if err := learnTemplateDiskSizes(ctx, q, plan, disks); err != nil {
			return err
		}
		for i, pv := range plan.vnics {
			vn := store.Vnic{ID: NewID(TypeVnic), Name: fmt.Sprintf("%s-eth%d", t.name, i), VMID: t.id, NetworkID: pv.networkID,
				MAC: macs[i], CreatedAt: now.Add(time.Duration(i))}
			if err := q.InsertVnic(ctx, vn); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errorf(KindConflict, "record %s %s: an object it refers to was deleted meanwhile", plan.destType, t.name)
		}
		return &Error{Kind: KindInternal, Msg: "record " + plan.destType + " " + t.name, Cause: err}
	}
	return nil
}

// learnTemplateDiskSizes records the size of each disk of a template
// source that its record does not know (an import's, moved without a
// size), from the size of its copy.
func learnTemplateDiskSizes(ctx context.Context, q *store.Queries, plan *clonePlan, copies []store.VirtualDisk) error {
	if plan.src.typ != "VmTemplate" {
		return nil
	}
	for i, d := range plan.disks {
		if d.src.sizeMiB == 0 && copies[i].SizeMiB > 0 {
			if err := q.SetTemplateDiskSize(ctx, d.src.mappingID, copies[i].SizeMiB); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
	}
	return nil
}

// macSet hands out MAC addresses no VNIC has, for the copies of one clone.
type macSet struct {
	mu   sync.Mutex // guards used
	used map[string]bool
}

// newMACSet reads the MAC addresses the VNICs have.
func (m *Manager) newMACSet(ctx context.Context) (*macSet, error) {
	vnics, err := m.st.Read().Vnics(ctx)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read vnics", Cause: err}
	}
	s := &macSet{used: make(map[string]bool, len(vnics))}
	for _, v := range vnics {
		s.used[v.MAC] = true
	}
	return s, nil
}

// next returns a MAC address neither a VNIC nor an earlier call has.
func (s *macSet) next() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		mac := newMAC()
		if !s.used[mac] {
			s.used[mac] = true
			return mac
		}
	}
}
