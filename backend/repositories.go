package backend

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

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
	if err := ValidateName("Repository", req.Name); err != nil {
		return Repository{}, err
	}
	loc := req.FSLocation
	if !strings.HasPrefix(loc, "/") || path.Clean(loc) != loc || strings.ContainsAny(loc, "\x00\n") {
		return Repository{}, errorf(KindInvalidArgument, "fsLocation %q must be a clean absolute path (such as /srv/repo1)", loc)
	}
	p, err := m.findPool(ctx, req.Pool)
	if err != nil {
		return Repository{}, err
	}
	if err := m.authorize(ctx, PermManage); err != nil {
		return Repository{}, err
	}
	return jobValue[Repository](m.job(ctx, actorFrom(ctx), p.ID, "create Repository "+req.Name, []string{"pool:" + p.ID},
		func(ctx context.Context, j *jobRun) (any, error) { return m.createRepository(ctx, req, p, loc) }))
}

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
	c, err := m.compile(ctx, f)
	if err != nil {
		return nil, err
	}
	inv, err := m.inventory(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Repository, 0, len(inv.repoList))
	for _, r := range inv.repoList {
		if !c.match(r.ID, r.Name, "", "", r.PoolID, r.ID) {
			continue
		}
		v, err := m.repoView(ctx, inv, r)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Repository returns the repository ref names.
func (m *Manager) Repository(ctx context.Context, ref Ref) (Repository, error) {
	r, err := m.findRepository(ctx, ref)
	if err != nil {
		return Repository{}, err
	}
	inv, err := m.inventory(ctx)
	if err != nil {
		return Repository{}, err
	}
	return m.repoView(ctx, inv, r)
}

func (m *Manager) repoView(ctx context.Context, inv *inventory, r store.Repository) (Repository, error) {
	n, err := m.st.Read().Count(ctx, "vms", "repo_id", r.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Repository{}, &Error{Kind: KindInternal, Msg: "count VMs", Cause: err}
	}
	return Repository{ID: r.ID, Name: r.Name, Pool: inv.poolRef(r.PoolID), FSLocation: r.FSLocation,
		MountPoint: r.MountPoint, VMs: n, CreatedAt: r.CreatedAt}, nil
}
