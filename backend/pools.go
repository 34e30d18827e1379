package backend

import (
	"context"
	"time"

	"xenmanager/store"
)

// CreateServerPool records a new, empty pool. Names need not be unique
// (docs/command-language.md); a duplicate name is allowed and later reads by name say so.
func (m *Manager) CreateServerPool(ctx context.Context, name, description string) (ServerPool, error) {
	if err := ValidateName("ServerPool", name); err != nil {
		return ServerPool{}, err
	}
	if err := m.authorize(ctx, PermManage); err != nil {
		return ServerPool{}, err
	}
	p := store.ServerPool{ID: NewID(TypeServerPool), Name: name, Description: description, CreatedAt: time.Now()}
	if err := m.st.Write(ctx, func(q *store.Queries) error { return q.InsertServerPool(ctx, p) }); err != nil {
		return ServerPool{}, &Error{Kind: KindInternal, Msg: "record server pool", Cause: err}
	}
	return m.ServerPool(ctx, Ref{ID: p.ID})
}

func (m *Manager) findPool(ctx context.Context, ref Ref) (store.ServerPool, error) {
	return resolve(ctx, m, m.poolKind(), ref)
}

// ServerPools lists the pools that pass f (name).
func (m *Manager) ServerPools(ctx context.Context, f Filter) ([]ServerPool, error) {
	c, err := m.compile(ctx, f)
	if err != nil {
		return nil, err
	}
	inv, err := m.inventory(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ServerPool, 0, len(inv.poolList))
	for _, p := range inv.poolList {
		if !c.match(p.ID, p.Name, "", "", p.ID, "") {
			continue
		}
		v, err := m.poolView(ctx, inv, p)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// ServerPool returns the pool ref names.
func (m *Manager) ServerPool(ctx context.Context, ref Ref) (ServerPool, error) {
	p, err := m.findPool(ctx, ref)
	if err != nil {
		return ServerPool{}, err
	}
	inv, err := m.inventory(ctx)
	if err != nil {
		return ServerPool{}, err
	}
	return m.poolView(ctx, inv, p)
}

func (m *Manager) poolView(ctx context.Context, inv *inventory, p store.ServerPool) (ServerPool, error) {
	v := ServerPool{ID: p.ID, Name: p.Name, Description: p.Description, StartPolicy: p.StartPolicy, CreatedAt: p.CreatedAt}
	for _, s := range inv.serverList {
		if s.PoolID == p.ID {
			v.Servers = append(v.Servers, NamedRef{s.ID, s.Name})
			if s.IsMaster {
				v.Master = NamedRef{s.ID, s.Name}
			}
		}
	}
	for _, r := range inv.repoList {
		if r.PoolID == p.ID {
			v.Repositories = append(v.Repositories, NamedRef{r.ID, r.Name})
		}
	}
	n, err := m.st.Read().Count(ctx, "vms", "pool_id", p.ID)
	if err != nil {
		return ServerPool{}, &Error{Kind: KindInternal, Msg: "count VMs", Cause: err}
	}
	v.VMs = n
	return v, nil
}

// EditServerPool changes a pool's name, description or start policy.
func (m *Manager) EditServerPool(ctx context.Context, ref Ref, name, description, startPolicy *string) (ServerPool, error) {
	p, err := m.findPool(ctx, ref)
	if err != nil {
		return ServerPool{}, err
	}
	if err := m.authorize(ctx, PermManage); err != nil {
		return ServerPool{}, err
	}
	if name != nil {
		if err := ValidateName("ServerPool", *name); err != nil {
			return ServerPool{}, err
		}
		p.Name = *name
	}
	if description != nil {
		p.Description = *description
	}
	if startPolicy != nil {
		if *startPolicy != PolicyBestServer && *startPolicy != PolicyCurrentServer {
			return ServerPool{}, errorf(KindInvalidArgument, "a pool's startPolicy is BEST_SERVER or CURRENT_SERVER, not %s", *startPolicy)
		}
		p.StartPolicy = *startPolicy
	}
	if err := m.st.Write(ctx, func(q *store.Queries) error { return q.UpdateServerPool(ctx, p) }); err != nil {
		return ServerPool{}, &Error{Kind: KindInternal, Msg: "record pool", Cause: err}
	}
	return m.ServerPool(ctx, Ref{ID: p.ID})
}
