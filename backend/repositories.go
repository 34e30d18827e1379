package backend

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/store"
)

// MountRoot is where a server sees the pool's repositories, one directory
// per repository id, as on Oracle VM servers.
const MountRoot = "/OVS/Repositories"

// CreateRepositoryRequest describes a new repository.
type CreateRepositoryRequest struct {
	Name       string
	FSLocation string // the shared export; for simulated servers a local directory
	Pool       Ref
}

// CreateRepository lays out a repository at FSLocation through the pool's
// servers (the first creates it, each makes it known) and records it.
func (m *Manager) CreateRepository(ctx context.Context, req CreateRepositoryRequest) (Repository, error) {
	var err error
	if req.Name, err = ValidateName("Repository", req.Name); err != nil {
		return Repository{}, err
	}
	loc := req.FSLocation
	if !strings.HasPrefix(loc, "/") || path.Clean(loc) != loc || strings.ContainsAny(loc, "\x00\n") {
		return Repository{}, errorf(KindInvalidArgument, "fsLocation %q must be a clean absolute path (such as /srv/repo1)", loc)
	}
	if data := m.dataDir(); loc == data || loc == "/" || strings.HasPrefix(data, loc+"/") {
		return Repository{}, errorf(KindInvalidArgument,
			"fsLocation %s holds the manager's data directory %s (its database and keys), which a repository's erase would remove; choose a directory that does not contain it", loc, data)
	}
	p, err := m.findPool(ctx, req.Pool)
	if err != nil {
		return Repository{}, err
	}
	if err := m.authorize(ctx, PermManage); err != nil {
		return Repository{}, err
	}
	return jobValue[Repository](m.job(ctx, actorFrom(ctx), p.ID, "create Repository", "create Repository "+req.Name, []string{"pool:" + p.ID},
		func(ctx context.Context, j *jobRun) (any, error) { return m.createRepository(ctx, req, p, loc) }))
}

// dataDir is the absolute directory of the manager's keys (and SQLite
// database).
func (m *Manager) dataDir() string { return m.data }

func (m *Manager) createRepository(ctx context.Context, req CreateRepositoryRequest, p store.ServerPool, loc string) (Repository, error) {
	servers, err := m.st.Read().ServersInPool(ctx, p.ID)
	if err != nil {
		return Repository{}, &Error{Kind: KindInternal, Msg: "read servers", Cause: err}
	}
	if len(servers) == 0 {
		return Repository{}, errorf(KindInvalidState, "ServerPool %s has no servers to create the repository through; add one first (add Server <name> to ServerPool %s)", p.Name, p.Name)
	}
	r := store.Repository{ID: NewID(TypeRepository), Name: req.Name, PoolID: p.ID, FSLocation: loc, CreatedAt: time.Now()}
	r.MountPoint = MountRoot + "/" + r.ID
	for i, s := range servers {
		c, err := m.clients.get(s)
		if err != nil {
			return Repository{}, err
		}
		if i == 0 {
			err = c.CreateRepository(ctx, r.FSLocation, r.MountPoint, r.ID, r.Name)
		} else {
			err = c.AddRepository(ctx, r.FSLocation, r.MountPoint)
		}
		if err != nil {
			return Repository{}, agentError(fmt.Sprintf("create Repository %s", r.Name), s.Name, err)
		}
	}
	if err := m.st.Write(ctx, func(q *store.Queries) error { return q.InsertRepository(ctx, r) }); err != nil {
		return Repository{}, &Error{Kind: KindInternal, Msg: "record repository", Cause: err}
	}
	return m.Repository(ctx, Ref{ID: r.ID})
}

func (m *Manager) findRepository(ctx context.Context, ref Ref) (store.Repository, error) {
	return resolve(ctx, m, m.repoKind(), ref)
}

// Repositories lists the repositories that pass f (name, pool).
func (m *Manager) Repositories(ctx context.Context, f Filter) ([]Repository, error) {
	c, inv, err := m.listing(ctx, f)
	if err != nil {
		return nil, err
	}
	return viewsOf(inv.repoList, func(r store.Repository) bool { return c.match(r.ID, r.Name, "", "", r.PoolID, r.ID) },
		func(r store.Repository) (Repository, error) { return m.repoView(ctx, inv, r) })
}

// Repository returns the repository ref names.
func (m *Manager) Repository(ctx context.Context, ref Ref) (Repository, error) {
	return show(ctx, m, m.repoKind(), ref, func(inv *inventory, r store.Repository) (Repository, error) { return m.repoView(ctx, inv, r) })
}

func (m *Manager) repoView(ctx context.Context, inv *inventory, r store.Repository) (Repository, error) {
	n, err := m.st.Read().Count(ctx, "vms", "repo_id", r.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Repository{}, &Error{Kind: KindInternal, Msg: "count VMs", Cause: err}
	}
	return Repository{ID: r.ID, Name: r.Name, Pool: inv.poolRef(r.PoolID), FSLocation: r.FSLocation,
		MountPoint: r.MountPoint, VMs: n, CreatedAt: r.CreatedAt}, nil
}

// DeleteRepository forgets a repository without VMs: every server of its
// pool unmounts it (delete_repository without erase: the files stay).
func (m *Manager) DeleteRepository(ctx context.Context, ref Ref) (Repository, error) {
	r, err := findFor(ctx, m, m.repoKind(), ref, PermManage)
	if err != nil {
		return Repository{}, err
	}
	return jobValue[Repository](m.job(ctx, actorFrom(ctx), r.PoolID, "delete Repository", "delete Repository "+r.Name, []string{"pool:" + r.PoolID}, func(ctx context.Context, j *jobRun) (any, error) {
		view, err := m.Repository(ctx, Ref{ID: r.ID})
		if err != nil {
			return nil, err
		}
		// The servers to unmount it from are read before the record goes, so
		// that a failing store stops the job before anything changed (the pool
		// lock keeps the members as they are until the job ends).
		servers, err := m.st.Read().ServersInPool(ctx, r.PoolID)
		if err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "read servers", Cause: err}
		}
		// Check and delete the record in one transaction, so that a VM or disk
		// created meanwhile either lands before (and the delete is refused) or
		// fails on the missing repository; only then unmount it.
		err = m.st.Write(ctx, func(q *store.Queries) error {
			if err := clearHARepository(ctx, q, r); err != nil {
				return err
			}
			if n, err := q.CountWhere(ctx, "virtual_disks.repo_id", r.ID); err != nil || n > 0 {
				if err != nil {
					return err
				}
				return errorf(KindConflict, "Repository %s is in use by %d VirtualDisks; delete them first (list VirtualDisk repository=%s)", r.Name, n, r.Name)
			}
			if n, err := q.CountWhere(ctx, "virtual_cdroms.repo_id", r.ID); err != nil || n > 0 {
				if err != nil {
					return err
				}
				return errorf(KindConflict, "Repository %s is in use by %d VirtualCdroms; delete them first (list VirtualCdrom repository=%s)", r.Name, n, r.Name)
			}
			for _, use := range []struct{ ref, what, how string }{
				{"vm_templates.repo_id", "VmTemplates", "delete them first (list VmTemplate repository=" + r.Name + ")"},
				{"vm_template_disks.repo_id", "disks of VmTemplates", "delete those templates first"},
				{"vm_clone_storage_mappings.repo_id", "VmCloneStorageMappings", "delete them first (list VmCloneStorageMapping)"},
			} {
				if n, err := q.CountWhere(ctx, use.ref, r.ID); err != nil || n > 0 {
					if err != nil {
						return err
					}
					return errorf(KindConflict, "Repository %s is in use by %d %s; %s", r.Name, n, use.what, use.how)
				}
			}
			n, err := q.Count(ctx, "vms", "repo_id", r.ID)
			if err != nil {
				return err
			}
			if n > 0 {
				vms, err := m.ListVMs(ctx, Filter{Repository: Ref{ID: r.ID}})
				if err != nil {
					return err
				}
				names := make([]NamedRef, len(vms))
				for i, v := range vms {
					names[i] = NamedRef{v.ID, v.Name}
				}
				return errorf(KindConflict, "Repository %s is in use by %d VMs (%s); delete or move them first", r.Name, n, namesOf(names))
			}
			return q.DeleteRepository(ctx, r.ID)
		})
		if err != nil {
			if KindOf(err) != KindInternal {
				return nil, err
			}
			return nil, &Error{Kind: KindInternal, Msg: "delete repository record", Cause: err}
		}
		for _, s := range servers {
			c, err := m.clients.get(s)
			if err != nil {
				continue
			}
			if err := c.DeleteRepository(ctx, r.ID, false); err != nil {
				if f, ok := agentapi.AsFault(err); !ok || f.Code != agentapi.FaultNotFound {
					m.log.Warn("a server did not unmount the deleted repository", "repository", r.Name, "server", s.Name, "err", err)
				}
			}
		}
		return view, nil
	}))
}

// RepositoryState is a repository as a server of its pool sees it, beside
// what the manager records of it.
type RepositoryState struct {
	Repository                              Repository
	Server                                  NamedRef // the server asked
	TotalMiB, FreeMiB                       int64
	VMFiles, DiskFiles, ISOFiles, Templates int64 // as the server counts them
	RecordedDisks, RecordedISOs             int   // as the manager records them (VMs: Repository.VMs)
	// RecordedTemplates and RecordedTemplateDisks are the templates and
	// template disks the manager records there: the disk files the server
	// counts are the VirtualDisks' and the templates' together.
	RecordedTemplates, RecordedTemplateDisks int
}

// RefreshRepository asks a server of the repository's pool how it sees the
// repository (discover_repositories): its size, free space and the files
// in it, beside the manager's own counts, so that an operator sees whether
// the two agree.
func (m *Manager) RefreshRepository(ctx context.Context, ref Ref) (RepositoryState, error) {
	r, err := m.findRepository(ctx, ref)
	if err != nil {
		return RepositoryState{}, err
	}
	srv, c, err := m.utilityServer(ctx, r.PoolID)
	if errors.Is(err, errNoServer) {
		return RepositoryState{}, errorf(KindInvalidState, "the pool of Repository %s has no running server to ask", r.Name)
	}
	if err != nil {
		return RepositoryState{}, err
	}
	seen, err := c.DiscoverRepositories(ctx, r.ID)
	if err != nil {
		return RepositoryState{}, agentError("refresh Repository "+r.Name, srv.Name, err)
	}
	if len(seen) == 0 {
		return RepositoryState{}, errorf(KindNotFound, "server %s does not know Repository %s (%s); present it again with a server of the pool", srv.Name, r.Name, r.ID)
	}
	view, err := m.Repository(ctx, Ref{ID: r.ID})
	if err != nil {
		return RepositoryState{}, err
	}
	q := m.st.Read()
	disks, err := counted(q.CountWhere(ctx, "virtual_disks.repo_id", r.ID))
	if err != nil {
		return RepositoryState{}, err
	}
	isos, err := counted(q.CountWhere(ctx, "virtual_cdroms.repo_id", r.ID))
	if err != nil {
		return RepositoryState{}, err
	}
	templates, err := counted(q.CountWhere(ctx, "vm_templates.repo_id", r.ID))
	if err != nil {
		return RepositoryState{}, err
	}
	templateDisks, err := counted(q.CountWhere(ctx, "vm_template_disks.repo_id", r.ID))
	if err != nil {
		return RepositoryState{}, err
	}
	a := seen[0]
	return RepositoryState{Repository: view, Server: NamedRef{srv.ID, srv.Name}, TotalMiB: a.TotalMiB, FreeMiB: a.FreeMiB,
		VMFiles: a.VMs, DiskFiles: a.Disks, ISOFiles: a.ISOs, Templates: a.Templates, RecordedDisks: disks, RecordedISOs: isos,
		RecordedTemplates: templates, RecordedTemplateDisks: templateDisks}, nil
}

// clearHARepository lets the repository r go from its pool's HA settings
// when high availability is off there, and refuses its deletion while it
// is on (its servers keep their leases in it).
func clearHARepository(ctx context.Context, q *store.Queries, r store.Repository) error {
	p, err := q.ServerPool(ctx, r.PoolID)
	if err != nil || p.HA.RepositoryID != r.ID {
		return err
	}
	if p.HA.Enabled {
		return errorf(KindConflict, "Repository %s is the HA repository of ServerPool %s, where its servers keep their leases: name another first ('edit ServerPool %s haRepository=...') or turn high availability off", r.Name, p.Name, p.Name)
	}
	p.HA.RepositoryID = ""
	return q.UpdateServerPoolHA(ctx, p.ID, p.HA)
}
