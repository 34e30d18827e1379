package backend

import (
	"context"
	"strings"
)

// Filter narrows a list: a name or glob pattern, a status, and the objects
// a listed object must belong to. Zero fields do not filter. References may
// be names, patterns or ids; a reference that matches nothing is NotFound,
// so that a typo does not read as an empty list.
type Filter struct {
	Name       string
	Status     string
	Server     Ref
	Pool       Ref
	Repository Ref
	Tag        Ref // only objects carrying this tag (a name, pattern or id)
}

// idSet resolves a filter reference to the ids it stands for; nil means
// "no filter".
func idSet[T any](ctx context.Context, m *Manager, k kind[T], ref Ref) (map[string]bool, error) {
	if ref == (Ref{}) {
		return nil, nil
	}
	found, err := resolveAll(ctx, m, k, ref)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, f := range found {
		set[k.idOf(f)] = true
	}
	return set, nil
}

// compiled is a Filter with its references resolved.
type compiled struct {
	f                     Filter
	servers, pools, repos map[string]bool
	tagged                map[string]bool // nil: no tag filter
	scope                 scope
}

func (m *Manager) compile(ctx context.Context, f Filter) (*compiled, error) {
	c := &compiled{f: f}
	if f.Name != "" {
		if _, err := matchName(f.Name, ""); err != nil {
			return nil, err
		}
	}
	var err error
	if c.scope, err = m.scope(ctx); err != nil {
		return nil, err
	}
	if c.servers, err = idSet(ctx, m, m.serverKind(), f.Server); err != nil {
		return nil, err
	}
	if c.pools, err = idSet(ctx, m, m.poolKind(), f.Pool); err != nil {
		return nil, err
	}
	if c.repos, err = idSet(ctx, m, m.repoKind(), f.Repository); err != nil {
		return nil, err
	}
	if f.Tag != (Ref{}) {
		tags, err := resolveAll(context.WithValue(ctx, actorKey{}, system), m, m.tagKind(), f.Tag)
		if err != nil {
			return nil, err
		}
		ids := make([]string, len(tags))
		for i, t := range tags {
			ids[i] = t.ID
		}
		if c.tagged, err = m.st.Read().TaggedObjects(ctx, ids); err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "read tags", Cause: err}
		}
	}
	return c, nil
}

// match applies the filter to one object (id, name, status, memberships).
func (c *compiled) match(id, name, status, serverID, poolID, repoID string) bool {
	if !c.scope.sees(poolID) {
		return false
	}
	if c.tagged != nil && !c.tagged[id] {
		return false
	}
	if c.f.Name != "" {
		if ok, _ := matchName(c.f.Name, name); !ok {
			return false
		}
	}
	if c.f.Status != "" && !strings.EqualFold(c.f.Status, status) {
		return false
	}
	return (c.servers == nil || c.servers[serverID]) && (c.pools == nil || c.pools[poolID]) &&
		(c.repos == nil || c.repos[repoID])
}
