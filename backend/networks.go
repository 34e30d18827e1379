package backend

import (
	"context"
	"regexp"
	"time"

	"xenmanager/store"
)

// Network is a network as the operator sees it.
type Network struct {
	ID, Name, Bridge, Description string
	Pool                          NamedRef
	Vnics                         int
	CreatedAt                     time.Time
}

func (n Network) String() string { return "Network " + n.Name }

func (m *Manager) networkKind() kind[store.Network] {
	q := m.st.Read()
	return kind[store.Network]{"Network", q.Network, q.NetworksByName, q.Networks,
		func(x store.Network) string { return x.Name }, func(x store.Network) string { return x.ID }, func(x store.Network) string { return x.PoolID }}
}

var bridgeRx = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)

// CreateNetwork records a network of a pool on a bridge the servers have.
func (m *Manager) CreateNetwork(ctx context.Context, name string, pool Ref, bridge, description string) (Network, error) {
	name, err := ValidateName("Network", name)
	if err != nil {
		return Network{}, err
	}
	if bridge == "" {
		bridge = "xenbr0"
	}
	if !bridgeRx.MatchString(bridge) {
		return Network{}, errorf(KindInvalidArgument, "bridge %q is not a Linux bridge name (1 to 15 letters, digits, _ . -)", bridge)
	}
	p, err := m.findPool(ctx, pool)
	if err != nil {
		return Network{}, err
	}
	if err := m.authorize(ctx, PermManage); err != nil {
		return Network{}, err
	}
	n := store.Network{ID: NewID(TypeNetwork), Name: name, PoolID: p.ID, Bridge: bridge, Description: description, CreatedAt: time.Now()}
	if err := m.st.Write(ctx, func(q *store.Queries) error { return q.InsertNetwork(ctx, n) }); err != nil {
		return Network{}, &Error{Kind: KindInternal, Msg: "record network", Cause: err}
	}
	return m.Network(ctx, Ref{ID: n.ID})
}

// Networks lists the networks that pass f (name, pool).
func (m *Manager) Networks(ctx context.Context, f Filter) ([]Network, error) {
	c, err := m.compile(ctx, f)
	if err != nil {
		return nil, err
	}
	rows, err := m.st.Read().Networks(ctx)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read networks", Cause: err}
	}
	return viewsOf(rows, func(n store.Network) bool { return c.match(n.ID, n.Name, "", "", n.PoolID, "") },
		func(n store.Network) (Network, error) { return m.networkView(ctx, n) })
}

// Network returns one network.
func (m *Manager) Network(ctx context.Context, ref Ref) (Network, error) {
	n, err := resolve(ctx, m, m.networkKind(), ref)
	if err != nil {
		return Network{}, err
	}
	return m.networkView(ctx, n)
}

// networkView shows a network with its pool (empty when the pool is gone)
// and how many VNICs use it; a store that fails fails the view.
func (m *Manager) networkView(ctx context.Context, n store.Network) (Network, error) {
	p, err := optional(m.st.Read().ServerPool(ctx, n.PoolID))
	if err != nil {
		return Network{}, err
	}
	count, err := counted(m.st.Read().CountWhere(ctx, "vnics.network_id", n.ID))
	if err != nil {
		return Network{}, err
	}
	return Network{ID: n.ID, Name: n.Name, Bridge: n.Bridge, Description: n.Description, Pool: NamedRef{p.ID, p.Name},
		Vnics: count, CreatedAt: n.CreatedAt}, nil
}

// DeleteNetwork deletes a network no VNIC uses.
func (m *Manager) DeleteNetwork(ctx context.Context, ref Ref) (Network, error) {
	n, err := findFor(ctx, m, m.networkKind(), ref, PermManage)
	if err != nil {
		return Network{}, err
	}
	view, err := m.networkView(ctx, n)
	if err != nil {
		return Network{}, err
	}
	if view.Vnics > 0 {
		return Network{}, errorf(KindConflict, "Network %s is in use by %d Vnics; delete them first (list Vnic)", n.Name, view.Vnics)
	}
	for _, use := range []struct{ ref, what string }{
		{"vm_template_vnics.network_id", "Vnics of VmTemplates (delete those templates first)"},
		{"vm_clone_network_mappings.network_id", "VmCloneNetworkMappings (delete them first: list VmCloneNetworkMapping)"},
	} {
		k, err := counted(m.st.Read().CountWhere(ctx, use.ref, n.ID))
		if err != nil {
			return Network{}, err
		}
		if k > 0 {
			return Network{}, errorf(KindConflict, "Network %s is in use by %d %s", n.Name, k, use.what)
		}
	}
	if err := m.st.Write(ctx, func(q *store.Queries) error { return q.DeleteNetwork(ctx, n.ID) }); err != nil {
		return Network{}, &Error{Kind: KindInternal, Msg: "delete network", Cause: err}
	}
	return view, nil
}
