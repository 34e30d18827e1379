package backend

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
	"xenmanager/store"
)

// ImportTemplate has a server of the repository's pool download a template
// archive (Oracle VM 2's layout: a tar, gzip-compressed or not, of vm.cfg
// and its disk images) into the repository, moves its disks into
// VirtualDisks/ and records it: Approved when an Administrator imports it,
// else Pending, as importIso does.
func (m *Manager) ImportTemplate(ctx context.Context, repo Ref, rawURL, name, description string) (VmTemplate, error) {
	return m.importTemplate(ctx, "importTemplate", agentapi.ImportKindTemplate, repo, rawURL, name, description)
}

// ImportVirtualAppliance is ImportTemplate for an OVA appliance (a tar of an
// OVF descriptor and its disks, which the agent converts to raw images).
func (m *Manager) ImportVirtualAppliance(ctx context.Context, repo Ref, rawURL, name, description string) (VmTemplate, error) {
	return m.importTemplate(ctx, "importVirtualAppliance", agentapi.ImportKindOVA, repo, rawURL, name, description)
}

// importTemplate is the import of a template of kind (ImportKindTemplate
// or ImportKindOVA) that verb names. The download lands in
// Templates/<id>/; each disk its vm.cfg names is then moved to
// VirtualDisks/<new id>.img (copy_file, mode move) and the vm.cfg written
// again to name them (create_template, replace): afterwards every template
// has one layout. A failure or an abort at any step removes what the
// import made: the moved disks and the template's directory; and no
// record is written.
func (m *Manager) importTemplate(ctx context.Context, verb, kind string, repo Ref, rawURL, name, description string) (VmTemplate, error) {
	name, err := ValidateName("VmTemplate", name)
	if err != nil {
		return VmTemplate{}, err
	}
	u, err := checkImportURL(rawURL)
	if err != nil {
		return VmTemplate{}, err
	}
	r, err := m.findRepository(ctx, repo)
	if err != nil {
		return VmTemplate{}, err
	}
	if err := m.authorize(ctx, PermVMLifecycle); err != nil {
		return VmTemplate{}, err
	}
	settings, err := m.settings(ctx)
	if err != nil {
		return VmTemplate{}, err
	}
	if err := m.checkImportHost(ctx, u, settings.ImportAllowedNetworks); err != nil {
		return VmTemplate{}, err
	}
	if taken, err := m.templateNamesTaken(ctx, []string{name}); err != nil || len(taken) > 0 {
		if err != nil {
			return VmTemplate{}, err
		}
		return VmTemplate{}, errorf(KindConflict, "%s refused: %s; choose another name", verb, describeTaken("VmTemplate", taken))
	}
	actor := actorFrom(ctx)
	state := TemplatePending
	if actor.Role == RoleAdministrator {
		state = TemplateApproved
	}
	t := store.VMTemplate{ID: NewID(TypeVMTemplate), Name: name, PoolID: r.PoolID, RepoID: r.ID, Description: description,
		Origin: u.Redacted(), State: state, CreatedBy: actor.User, CreatedAt: time.Now()}
	return jobValue[VmTemplate](m.job(ctx, actor, r.PoolID, verb+" Repository", verb+" "+name, []string{"name:VmTemplate:" + name},
		func(ctx context.Context, j *jobRun) (any, error) {
			if taken, err := m.templateNamesTaken(ctx, []string{name}); err != nil || len(taken) > 0 {
				if err != nil {
					return nil, err
				}
				return nil, errorf(KindConflict, "%s refused: %s; choose another name", verb, describeTaken("VmTemplate", taken))
			}
			what := verb + " " + name
			srv, c, err := m.templateServer(ctx, r.PoolID, what)
			if err != nil {
				return nil, err
			}
			what += " on " + srv.Name
			j.progress(2, what)
			opt := agentapi.ImportOption{Kind: kind}
			if nets := settings.ImportAllowedNetworks; len(nets) > 0 {
				ver, err := c.GetAPIVersion(ctx)
				if err != nil {
					return nil, agentError(what, srv.Name, err)
				}
				opt = importOption(kind, ver, nets)
			}
			key := agentapi.ProgressImport + t.ID
			stop := followProgress(ctx, j, c, key, what, 2, 80)
			// The call lasts as long as the download (and the conversion of an
			// appliance's disks). abort Job cuts it: the agent stops and
			// leaves nothing behind.
			err = c.ImportVirtualDisk(j.abort, rawURL, t.ID, r.ID, opt)
			stop()
			if err != nil {
				if aerr := j.check(); aerr != nil {
					return nil, aerr
				}
				return nil, withAllowHint(agentError(what, srv.Name, err))
			}
			var moved []madeDisk
			view, err := m.settleImportedTemplate(ctx, j, c, srv.Name, what, r, &t, &moved)
			if err != nil {
				bg := context.WithoutCancel(ctx)
				for _, d := range moved {
					if derr := notFoundIsGone(c.DeleteVirtualDisk(bg, d.repoID, d.diskID)); derr != nil {
						m.log.Error("could not remove a disk of a failed template import", "template", t.ID, "disk", d.diskID, "err", derr)
					}
				}
				if derr := notFoundIsGone(c.DeleteTemplate(bg, r.ID, t.ID)); derr != nil {
					m.log.Error("could not remove a failed template import", "template", t.ID, "err", derr)
				}
				return nil, err
			}
			m.log.Info("template imported", "template", t.Name, "id", t.ID, "repository", r.Name, "state", t.State)
			return view, nil
		}))
}

// settleImportedTemplate does what follows an import's download: it reads
// the template's vm.cfg, moves each disk it names into VirtualDisks/ (moved
// lists them, for the caller to remove on failure), writes the vm.cfg
// again naming them, and records the template.
func (m *Manager) settleImportedTemplate(ctx context.Context, j *jobRun, c *agentclient.Client, server, what string, r store.Repository,
	t *store.VMTemplate, moved *[]madeDisk) (VmTemplate, error) {
	params, err := c.GetTemplateConfig(ctx, r.ID, t.ID)
	if err != nil {
		return VmTemplate{}, agentError(what, server, err)
	}
	plainLists(params)
	cfg, err := readImportedConfig(params)
	if err != nil {
		return VmTemplate{}, err
	}
	t.MemoryMiB, t.CPUCount, t.CPUCountLimit, t.DomainType, t.OSType = cfg.memoryMiB, cfg.vcpus, cfg.maxVCPUs, cfg.domainType, cfg.osType
	if err := checkVMSizes(&t.MemoryMiB, nil, &t.CPUCount, nil); err != nil {
		return VmTemplate{}, errorf(KindInvalidArgument, "%s: the template's vm.cfg: %s", what, Message(err))
	}
	now := time.Now()
	var disks []store.TemplateDisk
	var diskList []string
	for i, d := range cfg.disks {
		if err := j.check(); err != nil {
			return VmTemplate{}, err
		}
		j.progress(80+15*i/len(cfg.disks), fmt.Sprintf("%s: moving disk %d of %d (%s) into VirtualDisks", what, i+1, len(cfg.disks), d.file))
		diskID := NewID(TypeVirtualDisk)
		*moved = append(*moved, madeDisk{r.ID, diskID})
		dst := diskPath(r, diskID)
		if err := c.CopyFile(ctx, templateDir(r, t.ID)+"/"+d.file, dst, agentapi.CopyOption{Mode: agentapi.CopyMove}); err != nil {
			if f, ok := agentapi.AsFault(err); ok && f.Code == agentapi.FaultNotFound {
				// The move's own words would name the server's paths and
				// its copy: say what the archive lacks instead.
				return VmTemplate{}, errorf(KindNotFound, "%s: the template's vm.cfg names disk image %s, which the archive does not hold "+
					"beside the vm.cfg; an archive holds vm.cfg and every disk image it names", what, d.file)
			}
			return VmTemplate{}, agentError(what, server, err)
		}
		var size int64
		if p, err := c.GetOperationProgress(ctx, agentapi.ProgressCopy+diskID+".img"); err == nil && p.Total > 0 {
			size = (p.Total + 1<<20 - 1) >> 20
		}
		dev := deviceName(i)
		disks = append(disks, store.TemplateDisk{ID: NewID(TypeDiskMapping), DiskID: diskID, RepoID: r.ID, Name: t.Name + "-" + dev,
			Slot: i, SizeMiB: size, Sparse: true, CreatedAt: now})
		diskList = append(diskList, "file:"+dst+","+dev+",w")
	}
	networks, err := m.st.Read().Networks(ctx)
	if err != nil {
		return VmTemplate{}, &Error{Kind: KindInternal, Msg: "read networks", Cause: err}
	}
	var vnics []store.TemplateVnic
	vifList := []string{}
	for i, bridge := range cfg.bridges {
		vn := store.TemplateVnic{ID: NewID(TypeVnic), Name: fmt.Sprintf("%s-eth%d", t.Name, i), Position: i, MAC: newMAC(), CreatedAt: now}
		vif := "mac=" + vn.MAC
		// A vif goes on the pool's network with its bridge, or, for an
		// appliance's (which names no bridge), the pool's network called
		// as the OVF's network.
		var ovfName string
		if i < len(cfg.networkNames) {
			ovfName = cfg.networkNames[i]
		}
		for _, n := range networks {
			if n.PoolID == r.PoolID && (bridge != "" && n.Bridge == bridge || bridge == "" && ovfName != "" && n.Name == ovfName) {
				vn.NetworkID = n.ID
				vif += ",bridge=" + n.Bridge
				break
			}
		}
		vnics = append(vnics, vn)
		vifList = append(vifList, vif)
	}
	params[agentapi.KeyName], params[agentapi.KeyUUID] = t.ID, t.ID
	params[agentapi.KeyDisk], params[agentapi.KeyVif] = diskList, vifList
	setTemplateSettings(params, *t)
	if err := j.check(); err != nil {
		return VmTemplate{}, err
	}
	j.progress(96, what+": writing the template's vm.cfg")
	if err := c.CreateTemplate(ctx, r.ID, t.ID, params, true); err != nil {
		return VmTemplate{}, agentError(what, server, err)
	}
	if err := m.st.Write(ctx, func(q *store.Queries) error { return q.InsertVMTemplate(ctx, *t, disks, vnics) }); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return VmTemplate{}, errorf(KindConflict, "%s: its repository or pool was deleted meanwhile", what)
		}
		return VmTemplate{}, &Error{Kind: KindInternal, Msg: "record VmTemplate " + t.Name, Cause: err}
	}
	return m.VMTemplate(ctx, Ref{ID: t.ID})
}

// importedConfig is what the manager reads of an imported template's
// vm.cfg.
type importedConfig struct {
	memoryMiB, vcpus, maxVCPUs int64
	domainType, osType         string
	disks                      []importedDisk
	bridges                    []string // one per vif: its bridge, "" when it names none
	// networkNames are, per vif, the name of the network an appliance's
	// OVF connects it to (the agent's OVF_networks), "" for none.
	networkNames []string
}

// keyOVFNetworks is the vm.cfg key where the agent writes, for an
// appliance's template, the OVF's network name of each vif.
const keyOVFNetworks = "OVF_networks"

// importedDisk is a disk entry of an imported vm.cfg: its image, a file of
// the template's directory.
type importedDisk struct {
	file string // base name
}

// readImportedConfig reads an imported template's vm.cfg: memory, vCPUs,
// domain type, disks (file images beside the vm.cfg, by base name; CD-ROM
// entries are left out) and vifs. What it cannot use is an error that
// says what was wrong; the archive's vm.cfg is hostile input.
func readImportedConfig(p agentapi.VMParams) (importedConfig, error) {
	var cfg importedConfig
	var ok bool
	if cfg.memoryMiB, ok = p.Int(agentapi.KeyMemory); !ok || cfg.memoryMiB <= 0 {
		return cfg, errorf(KindInvalidArgument, "the template's vm.cfg gives no memory size (memory = <MiB>)")
	}
	cfg.vcpus = 1
	if n, ok := p.Int(agentapi.KeyVCPUs); ok && n > 0 {
		cfg.vcpus = n
	}
	if n, ok := p.Int(agentapi.KeyMaxVCPUs); ok && n > cfg.vcpus {
		cfg.maxVCPUs = n
	}
	cfg.domainType = strings.ToLower(p.String(agentapi.KeyDomainType))
	if checkDomainType(cfg.domainType) != nil {
		// Oracle VM 2's templates say it with builder (hvm) or a boot
		// loader or kernel (paravirtualised).
		cfg.domainType = DomainXenPVM
		if p.String("builder") == "hvm" {
			cfg.domainType = DomainXenHVM
		}
	}
	cfg.osType = p.String(agentapi.KeyOSType)
	for _, e := range stringList(p[agentapi.KeyDisk]) {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		fields := strings.Split(e, ",")
		if len(fields) >= 2 && strings.HasSuffix(fields[1], ":cdrom") {
			continue // a CD-ROM: clones do not carry ISOs
		}
		spec := fields[0]
		var file string
		for _, prefix := range []string{"file:", "tap:aio:", "tap2:aio:", "tap:tapdisk:aio:"} {
			if rest, found := strings.CutPrefix(spec, prefix); found {
				file = rest
				break
			}
		}
		if file == "" {
			return cfg, errorf(KindInvalidArgument, "the template's vm.cfg has disk %q; accepted are image files (file:, tap:aio:) beside the vm.cfg", e)
		}
		base := path.Base(file)
		if base == "." || base == "/" || base == ".." || strings.ContainsAny(base, "\x00\\") {
			return cfg, errorf(KindInvalidArgument, "the template's vm.cfg has disk %q, which names no image file", e)
		}
		cfg.disks = append(cfg.disks, importedDisk{file: base})
	}
	if len(cfg.disks) == 0 {
		return cfg, errorf(KindInvalidArgument, "the template's vm.cfg names no disk image")
	}
	if len(cfg.disks) > maxDiskSlots {
		return cfg, errorf(KindInvalidArgument, "the template's vm.cfg names %d disks; at most %d are accepted", len(cfg.disks), maxDiskSlots)
	}
	seen := map[string]bool{}
	for _, d := range cfg.disks {
		if seen[d.file] {
			return cfg, errorf(KindInvalidArgument, "the template's vm.cfg names disk image %s twice", d.file)
		}
		seen[d.file] = true
	}
	for _, v := range stringList(p[agentapi.KeyVif]) {
		bridge := ""
		for _, kv := range strings.Split(v, ",") {
			if b, found := strings.CutPrefix(strings.TrimSpace(kv), "bridge="); found {
				bridge = b
			}
		}
		cfg.bridges = append(cfg.bridges, bridge)
	}
	cfg.networkNames = stringList(p[keyOVFNetworks])
	const maxVifs = 32
	if len(cfg.bridges) > maxVifs {
		return cfg, errorf(KindInvalidArgument, "the template's vm.cfg names %d vifs; at most %d are accepted", len(cfg.bridges), maxVifs)
	}
	return cfg, nil
}

// plainLists makes every list value of params a []string, as the agent
// sends it back in create_vm or create_template: an array read from a
// vm.cfg arrives as []any, where an empty string may be nil, which does
// not travel.
func plainLists(params agentapi.VMParams) {
	for k, v := range params {
		if l, ok := v.([]any); ok {
			params[k] = stringList(l)
		}
	}
}

// stringList reads a vm.cfg list value as strings: []string, or the []any
// of strings XML-RPC decodes an array into (where an empty string may
// arrive as nil); anything else is empty.
func stringList(v any) []string {
	switch l := v.(type) {
	case []string:
		return l
	case []any:
		out := make([]string, 0, len(l))
		for _, x := range l {
			switch s := x.(type) {
			case string:
				out = append(out, s)
			case nil: // an empty <value/>, as an empty string may travel
				out = append(out, "")
			}
		}
		return out
	case string:
		return []string{l}
	}
	return nil
}
