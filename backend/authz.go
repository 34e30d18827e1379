package backend

import (
	"context"
)

type actorKey struct{}

// WithActor returns a context whose operations run on behalf of a; the
// backend checks a's role and pools on every operation.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// system is the actor of operations the manager runs itself (start-up,
// the demo fleet, reconciliation).
var system = Actor{User: "system", Role: RoleAdministrator}

// AsSystem returns a context whose operations run as the manager itself,
// with every right: for start-up work such as the demo fleet.
func AsSystem(ctx context.Context) context.Context { return WithActor(ctx, system) }

// nobody is who runs an operation whose context names no actor: a caller
// that forgot WithActor gets no rights rather than every right.
var nobody = Actor{User: "(no user)", Role: ""}

func actorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok {
		return a
	}
	return nobody
}

// CurrentActor looks the user up again (their role may have changed, or
// they may have been deleted, since the session logged in) and returns the
// actor to run the next command as; a deleted user is refused. The roles
// come with the inventory, read again after any write to the users (on a
// shared database, once another manager's write is notified).
func (m *Manager) CurrentActor(ctx context.Context, a Actor) (Actor, error) {
	inv, err := m.inventory(ctx)
	if err != nil {
		return Actor{}, err
	}
	role, ok := inv.roles[a.User]
	if !ok {
		return Actor{}, errorf(KindPermission, "user %s no longer exists", a.User)
	}
	a.Role = role
	return a, nil
}

// Permission is what an operation needs.
type Permission int

// Permissions, each including the ones before it for the roles that have it.
const (
	PermRead        Permission = iota // list, show
	PermVMLifecycle                   // create, edit, start, stop... VMs
	PermManage                        // servers, pools, repositories, users, the manager's settings
)

func (p Permission) String() string {
	switch p {
	case PermVMLifecycle:
		return "manage VMs"
	case PermManage:
		return "manage servers, pools, repositories, users and the manager's settings"
	}
	return "read"
}

func roleAllows(role string, p Permission) bool {
	switch role {
	case RoleAdministrator:
		return true
	case RoleOperator:
		return p <= PermVMLifecycle
	case RoleViewer:
		return p == PermRead
	}
	return false
}

// scope is what an actor may see: every pool (administrators) or the pools
// the user belongs to.
type scope struct {
	all   bool
	pools map[string]bool
}

func (m *Manager) scope(ctx context.Context) (scope, error) {
	a := actorFrom(ctx)
	if a.Role == RoleAdministrator {
		return scope{all: true}, nil
	}
	ids, err := m.st.Read().UserPoolIDs(ctx, a.User)
	if err != nil {
		return scope{}, &Error{Kind: KindInternal, Msg: "read the user's pools", Cause: err}
	}
	set := map[string]bool{}
	for _, id := range ids {
		set[id] = true
	}
	return scope{pools: set}, nil
}

// sees reports whether an object of poolID ("" for objects in no pool) is
// visible in this scope.
func (s scope) sees(poolID string) bool { return s.all || (poolID != "" && s.pools[poolID]) }

// authorize checks that the actor may do what needs p, on an object in
// poolID ("" for objects in no pool or for the whole manager). Objects the
// actor may not see read as not found, so the caller checks visibility
// first; authorize reports a permission failure.
func (m *Manager) authorize(ctx context.Context, p Permission) error {
	return m.authorizeTo(ctx, p, p.String())
}

// authorizeTo is authorize with what the refused actor may not do said in
// the words of the operation ("create, rename or delete tags, which every
// pool shares") rather than of the permission.
func (m *Manager) authorizeTo(ctx context.Context, p Permission, what string) error {
	a := actorFrom(ctx)
	if !roleAllows(a.Role, p) {
		return errorf(KindPermission, "user %s (%s) may not %s", a.User, a.Role, what)
	}
	return nil
}
