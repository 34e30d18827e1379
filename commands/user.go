package commands

import (
	"context"
	"strconv"
	"strings"

	"xenmanager/backend"
)

// userType is the User: who logs in, with a role and the pools they may
// see.
var userType = &objectType{
	Name: "User",
	List: &Spec{Help: "List users (yourself unless you are an Administrator).", Attrs: []Attr{filterName},
		Run: streamedBy((*backend.Manager).StreamUsers, userRow)},
	Show:       shownBy((*backend.Manager).User, userFields),
	ShowFields: fieldsOf(userFields),
	ListFields: rowFieldsOf(userRow),
}

var roles = []string{backend.RoleAdministrator, backend.RoleOperator, backend.RoleViewer}

func userRow(u backend.User) Row {
	pools := make([]string, len(u.Pools))
	for i, p := range u.Pools {
		pools[i] = p.Name
	}
	return Row{ID: u.ID, Name: u.Name, Fields: []Field{strField("role", "role", u.Role),
		refsField("serverPools", "serverPools", u.Pools).withText(strings.Join(pools, ","))}}
}

// userFields print the user's pools one line each in the text form
// (Server Pool 1 ...) and as an array in the machine form.
func userFields(u backend.User) []Field {
	fields := []Field{strField("Name", "name", u.Name), strField("Id", "id", u.ID), strField("Role", "role", u.Role)}
	for i, p := range u.Pools {
		fields = append(fields, refField("Server Pool "+strconv.Itoa(i+1), "", p).textOnly())
	}
	return append(fields, refsField("", "serverPools", u.Pools).machineOnly(), intField("SSH Keys", "sshKeyCount", int64(u.Keys)),
		timeField("Created", "created", u.CreatedAt))
}

func createUserSpec() *Spec {
	return &Spec{
		Type: "User", Help: "Create a user who logs in with a password (and, later, SSH keys).",
		Attrs: []Attr{
			{Name: "name", Kind: AttrString, Required: true, Help: "the login name"},
			{Name: "password", Kind: AttrSecret, Required: true, Help: "at least 8 characters"},
			{Name: "role", Kind: AttrEnum, Enum: roles, Default: backend.RoleViewer, Help: "Administrator: everything; Operator: VM lifecycle in their pools; Viewer: read their pools"},
		},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			u, err := x.Backend.CreateUser(ctx, x.Str("name"), x.Str("password"), x.Str("role"))
			return rowOf(u.ID, u.Name, err)
		},
	}
}

func editUserSpec() *Spec {
	return &Spec{
		Type: "User", Instance: true, Help: "Change a user's role (Administrators) or password (yourself, or Administrators).",
		Attrs: []Attr{
			{Name: "role", Kind: AttrEnum, Enum: roles, Help: "what the user may do"},
			{Name: "password", Kind: AttrSecret, Help: "a new password (at least 8 characters)"},
		},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			if err := needSomething(x); err != nil {
				return nil, err
			}
			u, err := x.Backend.EditUser(ctx, x.Ref(), optStr(x, "role"), optStr(x, "password"))
			if err != nil {
				return nil, err
			}
			return &Result{Fields: userFields(u)}, nil
		},
	}
}

func deleteUserSpec() *Spec {
	return &Spec{
		Type: "User", Instance: true, Help: "Delete a user (not yourself, not the last Administrator).",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			u, err := x.Backend.DeleteUser(ctx, x.Ref())
			return rowOf(u.ID, u.Name, err)
		},
	}
}

func addUserSpec() *Spec {
	return &Spec{
		Type: "User", Instance: true,
		Help:   "Let a user see and act on a server pool's objects (Administrators see every pool).",
		Clause: &Clause{Prep: "to", Types: []string{"ServerPool"}, Required: true},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			u, err := x.Backend.AddUserToPool(ctx, x.Ref(), x.TargetRef())
			return rowOf(u.ID, u.Name, err)
		},
	}
}

func removeUserSpec() *Spec {
	return &Spec{
		Type: "User", Instance: true,
		Help:   "Take a server pool away from a user.",
		Clause: &Clause{Prep: "from", Types: []string{"ServerPool"}, Required: true},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			u, err := x.Backend.RemoveUserFromPool(ctx, x.Ref(), x.TargetRef())
			return rowOf(u.ID, u.Name, err)
		},
	}
}
