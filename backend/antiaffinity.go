package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"xenmanager/store"
)

// AntiAffinityGroup is an anti-affinity group as the operator sees it: VMs
// of one pool that placement never puts two of on one server.
type AntiAffinityGroup struct {
	ID, Name, Description string
	Pool                  NamedRef
	Members               []AntiAffinityMember
	// Together are the servers where two or more members run, which a VM
	// added while it shared a server with a member leaves ("ovs1 runs
	// web1, web2"): the manager does not move running VMs to keep them
	// apart, it only never places them together.
	Together  []string
	CreatedAt time.Time
}

func (g AntiAffinityGroup) String() string { return "AntiAffinityGroup " + g.Name }

// AntiAffinityMember is a VM of a group, with where it runs.
type AntiAffinityMember struct {
	VM     NamedRef
	Status string
	Server NamedRef // empty when it runs nowhere
}

func (m *Manager) antiAffinityKind() kind[store.AntiAffinityGroup] {
	q := m.st.Read()
	return kind[store.AntiAffinityGroup]{"AntiAffinityGroup", q.AntiAffinityGroup, q.AntiAffinityGroupsByName, q.AntiAffinityGroups,
		func(x store.AntiAffinityGroup) string { return x.Name }, func(x store.AntiAffinityGroup) string { return x.ID },
		func(x store.AntiAffinityGroup) string { return x.PoolID }}
}

// Anti-affinity groups are VM placement policy inside a pool: an Operator,
// who manages the VMs of their pools (and their preferred servers), makes,
// changes and deletes the groups of those pools and puts their VMs in
// them, as an Administrator does anywhere; a Viewer reads them.

// CreateAntiAffinityGroup creates an empty group of a pool.
func (m *Manager) CreateAntiAffinityGroup(ctx context.Context, name, description string, pool Ref) (AntiAffinityGroup, error) {
	name, err := ValidateName("AntiAffinityGroup", name)
	if err != nil {
		return AntiAffinityGroup{}, err
	}
	p, err := m.findPool(ctx, pool)
	if err != nil {
		return AntiAffinityGroup{}, err
	}
	if err := m.authorize(ctx, PermVMLifecycle); err != nil {
		return AntiAffinityGroup{}, err
	}
	g := store.AntiAffinityGroup{ID: NewID(TypeAntiAffinityGroup), Name: name, PoolID: p.ID, Description: description, CreatedAt: time.Now()}
	err = m.st.Write(ctx, func(q *store.Queries) error { return q.InsertAntiAffinityGroup(ctx, g) })
	if errors.Is(err, store.ErrConflict) {
		return AntiAffinityGroup{}, errorf(KindNotFound, "ServerPool %s was deleted meanwhile", p.Name)
	}
	if err != nil {
		return AntiAffinityGroup{}, &Error{Kind: KindInternal, Msg: "record anti-affinity group", Cause: err}
	}
	return m.antiAffinityView(ctx, g)
}

// AntiAffinityGroups lists the groups that pass f (name, pool, tag).
func (m *Manager) AntiAffinityGroups(ctx context.Context, f Filter) ([]AntiAffinityGroup, error) {
	c, err := m.compile(ctx, f)
	if err != nil {
		return nil, err
	}
	rows, err := m.st.Read().AntiAffinityGroups(ctx)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read anti-affinity groups", Cause: err}
	}
	return viewsOf(rows, func(g store.AntiAffinityGroup) bool { return c.match(g.ID, g.Name, "", "", g.PoolID, "") },
		func(g store.AntiAffinityGroup) (AntiAffinityGroup, error) { return m.antiAffinityView(ctx, g) })
}

// AntiAffinityGroup returns one group.
func (m *Manager) AntiAffinityGroup(ctx context.Context, ref Ref) (AntiAffinityGroup, error) {
	g, err := resolve(ctx, m, m.antiAffinityKind(), ref)
	if err != nil {
		return AntiAffinityGroup{}, err
	}
	return m.antiAffinityView(ctx, g)
}

// antiAffinityView shows a group with its pool, its members and where
// they run, and the servers where members run together.
func (m *Manager) antiAffinityView(ctx context.Context, g store.AntiAffinityGroup) (AntiAffinityGroup, error) {
	q := m.st.Read()
	p, err := optional(q.ServerPool(ctx, g.PoolID))
	if err != nil {
		return AntiAffinityGroup{}, err
	}
	members, err := q.AntiAffinityMembers(ctx, g.ID)
	if err != nil {
		return AntiAffinityGroup{}, &Error{Kind: KindInternal, Msg: "read anti-affinity group members", Cause: err}
	}
	view := AntiAffinityGroup{ID: g.ID, Name: g.Name, Description: g.Description, Pool: NamedRef{p.ID, p.Name}, CreatedAt: g.CreatedAt,
		Members: make([]AntiAffinityMember, len(members))}
	servers := map[string]string{} // id -> name
	var order []string             // server ids with members, as first met
	onServer := map[string][]string{}
	for i, mb := range members {
		view.Members[i] = AntiAffinityMember{VM: NamedRef{mb.VMID, mb.VMName}, Status: mb.Status}
		if mb.ServerID == "" {
			continue
		}
		name, ok := servers[mb.ServerID]
		if !ok {
			s, err := optional(q.Server(ctx, mb.ServerID))
			if err != nil {
				return AntiAffinityGroup{}, err
			}
			name, servers[mb.ServerID] = s.Name, s.Name
			order = append(order, mb.ServerID)
		}
		view.Members[i].Server = NamedRef{mb.ServerID, name}
		onServer[mb.ServerID] = append(onServer[mb.ServerID], mb.VMName)
	}
	for _, id := range order {
		if vms := onServer[id]; len(vms) > 1 {
			view.Together = append(view.Together, sharing{Server: servers[id], VMs: vms}.String())
		}
	}
	return view, nil
}

// DeleteAntiAffinityGroup deletes a group with no members; one with
// members is refused, naming them (as Oracle VM does: take them out first).
func (m *Manager) DeleteAntiAffinityGroup(ctx context.Context, ref Ref) (AntiAffinityGroup, error) {
	g, err := findFor(ctx, m, m.antiAffinityKind(), ref, PermVMLifecycle)
	if err != nil {
		return AntiAffinityGroup{}, err
	}
	return jobValue[AntiAffinityGroup](m.job(ctx, actorFrom(ctx), g.PoolID, "delete AntiAffinityGroup", "delete AntiAffinityGroup "+g.Name,
		[]string{g.ID}, func(ctx context.Context, j *jobRun) (any, error) {
			view, err := m.antiAffinityView(ctx, g)
			if err != nil {
				return nil, err
			}
			if n := len(view.Members); n > 0 {
				names := make([]NamedRef, n)
				for i, mb := range view.Members {
					names[i] = mb.VM
				}
				return nil, errorf(KindConflict, "AntiAffinityGroup %s has %d members (%s); take them out first (remove Vm ... from AntiAffinityGroup ...)",
					g.Name, n, namesOf(names))
			}
			err = m.st.Write(ctx, func(q *store.Queries) error { return q.DeleteAntiAffinityGroup(ctx, g.ID) })
			if errors.Is(err, store.ErrNotFound) {
				return nil, errorf(KindNotFound, "AntiAffinityGroup %s was deleted meanwhile", g.Name)
			}
			if err != nil {
				return nil, &Error{Kind: KindInternal, Msg: "delete anti-affinity group", Cause: err}
			}
			return view, nil
		}))
}

// AddVMToAntiAffinityGroup makes a VM of the group's pool a member. A VM
// that already runs on a server with another member stays there (the
// manager does not move running VMs): the membership is recorded, a
// Warning event names the servers they share, and show AntiAffinityGroup
// lists them under Together; placement keeps them apart from then on.
func (m *Manager) AddVMToAntiAffinityGroup(ctx context.Context, vm, group Ref) (AntiAffinityGroup, error) {
	return m.changeAntiAffinity(ctx, vm, group, false)
}

// RemoveVMFromAntiAffinityGroup takes a VM out of a group.
func (m *Manager) RemoveVMFromAntiAffinityGroup(ctx context.Context, vm, group Ref) (AntiAffinityGroup, error) {
	return m.changeAntiAffinity(ctx, vm, group, true)
}

// changeAntiAffinity adds the VM to the group (or, with remove, takes it
// out) as a job that locks both, so that neither is deleted meanwhile and
// the VM is not being started or migrated while it is decided whether it
// shares a server with another member.
func (m *Manager) changeAntiAffinity(ctx context.Context, vm, group Ref, remove bool) (AntiAffinityGroup, error) {
	g, err := resolve(ctx, m, m.antiAffinityKind(), group)
	if err != nil {
		return AntiAffinityGroup{}, err
	}
	v, err := resolve(ctx, m, m.vmKind(), vm)
	if err != nil {
		return AntiAffinityGroup{}, err
	}
	if err := m.authorize(ctx, PermVMLifecycle); err != nil {
		return AntiAffinityGroup{}, err
	}
	verb, prep := "add", "to"
	if remove {
		verb, prep = "remove", "from"
	}
	if !remove && v.PoolID != g.PoolID {
		vp, err := optional(m.st.Read().ServerPool(ctx, v.PoolID))
		if err != nil {
			return AntiAffinityGroup{}, err
		}
		gp, err := optional(m.st.Read().ServerPool(ctx, g.PoolID))
		if err != nil {
			return AntiAffinityGroup{}, err
		}
		return AntiAffinityGroup{}, errorf(KindInvalidArgument, "Vm %s is in ServerPool %s; AntiAffinityGroup %s is of ServerPool %s, and only VMs of its pool may join it",
			v.Name, vp.Name, g.Name, gp.Name)
	}
	summary := fmt.Sprintf("%s Vm %s %s AntiAffinityGroup %s", verb, v.Name, prep, g.Name)
	return jobValue[AntiAffinityGroup](m.job(ctx, actorFrom(ctx), g.PoolID, verb+" Vm", summary, []string{v.ID, g.ID},
		func(ctx context.Context, j *jobRun) (any, error) {
			if remove {
				err := m.st.Write(ctx, func(q *store.Queries) error { return q.RemoveAntiAffinityMember(ctx, g.ID, v.ID) })
				if errors.Is(err, store.ErrNotFound) {
					return nil, errorf(KindInvalidState, "Vm %s is not in AntiAffinityGroup %s", v.Name, g.Name)
				}
				if err != nil {
					return nil, &Error{Kind: KindInternal, Msg: "record anti-affinity group", Cause: err}
				}
				return m.antiAffinityView(ctx, g)
			}
			if err := m.addMember(ctx, v, g); err != nil {
				return nil, err
			}
			return m.antiAffinityView(ctx, g)
		}))
}

// addMember records v in g (both locked by the caller's job) and raises a
// Warning event for each server v shares with other members of g.
func (m *Manager) addMember(ctx context.Context, v store.VM, g store.AntiAffinityGroup) error {
	members, err := m.st.Read().AntiAffinityMembers(ctx, g.ID)
	if err != nil {
		return &Error{Kind: KindInternal, Msg: "read anti-affinity group members", Cause: err}
	}
	for _, mb := range members {
		if mb.VMID == v.ID {
			return errorf(KindConflict, "Vm %s is already in AntiAffinityGroup %s", v.Name, g.Name)
		}
	}
	together, err := m.place.join(ctx, v.ID, g.ID, func() error {
		err := m.st.Write(ctx, func(q *store.Queries) error { return q.AddAntiAffinityMember(ctx, g.ID, v.ID, time.Now()) })
		if err != nil {
			return &Error{Kind: KindInternal, Msg: "record anti-affinity group member", Cause: err}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(together) > 0 {
		where := make([]string, len(together))
		for i, s := range together {
			where[i] = s.String()
		}
		msg := fmt.Sprintf("Vm %s joined AntiAffinityGroup %s while it shares a server with other members (%s); the manager does not move running VMs: migrate one of them to another server to keep them apart",
			v.Name, g.Name, strings.Join(where, "; "))
		m.log.Warn("anti-affinity group members share a server", "group", g.Name, "vm", v.Name, "servers", strings.Join(where, "; "))
		m.event(ctx, "Warning", "AntiAffinityGroupShared", "AntiAffinityGroup", g.ID, g.Name, g.PoolID, msg)
	}
	return nil
}
