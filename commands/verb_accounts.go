package commands

import (
	"context"
	"strconv"
	"strings"

	"xenmanager/backend"
)

var roles = []string{backend.RoleAdministrator, backend.RoleOperator, backend.RoleViewer}

func userProps(u backend.User) []Prop {
	props := []Prop{{"Name", u.Name}, {"Id", u.ID}, {"Role", u.Role}}
	for i, p := range u.Pools {
		props = append(props, Prop{"Server Pool " + strconv.Itoa(i+1), ref(p)})
	}
	return append(props, Prop{"SSH Keys", strconv.Itoa(u.Keys)}, Prop{"Created", u.CreatedAt.Format(timeLayout)})
}

func keyProps(k backend.SSHKey) []Prop {
	return []Prop{{"Name", k.Name}, {"Id", k.ID}, {"User", k.User}, {"Type", k.Type}, {"Fingerprint", k.Fingerprint},
		{"Created", k.CreatedAt.Format(timeLayout)}}
}

// createUserSpec and createSSHKeySpec are the create verb's declarations for
// accounts.
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

func createSSHKeySpec() *Spec {
	return &Spec{
		Type: "SshKey", Help: "Register a public key a user may log in with (your own; Administrators for anyone).",
		Attrs: []Attr{
			{Name: "name", Kind: AttrString, Required: true, Help: "a name for the key"},
			{Name: "key", Kind: AttrString, Required: true, Help: "the public key as in authorized_keys, quoted: \"ssh-ed25519 AAAA... comment\""},
			{Name: "user", Kind: AttrObject, Object: "User", Help: "whose key it is (default: yourself)"},
		},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			user := x.Actor.User // yourself, unless user= names another
			if u := optStr(x, "user"); u != nil {
				user = *u
			}
			k, err := x.Backend.CreateSSHKey(ctx, objectRef(user), x.Str("name"), x.Str("key"))
			return rowOf(k.ID, k.Name, err)
		},
	}
}

func runListUsers(ctx context.Context, x *Exec) (*Result, error) {
	users, err := x.Backend.Users(ctx, backend.Filter{Name: x.Str("name")})
	if err != nil {
		return nil, err
	}
	res := &Result{Rows: []Row{}}
	for _, u := range users {
		pools := make([]string, len(u.Pools))
		for i, p := range u.Pools {
			pools[i] = p.Name
		}
		res.Rows = append(res.Rows, Row{ID: u.ID, Name: u.Name, Cols: []Prop{{"role", u.Role}, {"serverPools", strings.Join(pools, ",")}}})
	}
	return res, nil
}

func runShowUser(ctx context.Context, x *Exec) (*Result, error) {
	u, err := x.Backend.User(ctx, x.Ref())
	if err != nil {
		return nil, err
	}
	return &Result{Props: userProps(u)}, nil
}

func runListKeys(ctx context.Context, x *Exec) (*Result, error) {
	keys, err := x.Backend.SSHKeys(ctx)
	if err != nil {
		return nil, err
	}
	res := &Result{Rows: []Row{}}
	for _, k := range keys {
		res.Rows = append(res.Rows, Row{ID: k.ID, Name: k.Name, Cols: []Prop{{"user", k.User}, {"type", k.Type}, {"fingerprint", k.Fingerprint}}})
	}
	return res, nil
}

func runShowKey(ctx context.Context, x *Exec) (*Result, error) {
	keys, err := x.Backend.SSHKeys(ctx)
	if err != nil {
		return nil, err
	}
	var found []backend.SSHKey
	for _, k := range keys {
		if x.Cmd.Instance.ByID && k.ID == x.Cmd.Instance.Value || !x.Cmd.Instance.ByID && k.Name == x.Cmd.Instance.Value {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 0:
		return nil, &backend.Error{Kind: backend.KindNotFound, Msg: "SshKey " + x.Cmd.Instance.String() + " not found"}
	case 1:
		return &Result{Props: keyProps(found[0])}, nil
	}
	ids := make([]string, len(found))
	for i, k := range found {
		ids[i] = k.ID
	}
	return nil, &backend.Error{Kind: backend.KindAmbiguous, Msg: "several SshKey objects are called " + x.Cmd.Instance.Value + " (" + strings.Join(ids, ", ") + "); name one with id="}
}

// auditLimit bounds the records of getAuditLog and list AuditRecord.
var auditLimit = Attr{Name: "limit", Kind: AttrInt, Min: 1, Max: 100000, Default: "100", Help: "how many records at most"}

func runListAudit(ctx context.Context, x *Exec) (*Result, error) {
	recs, err := x.Backend.AuditLog(ctx, int(x.Int("limit")))
	if err != nil {
		return nil, err
	}
	res := &Result{Rows: []Row{}}
	for _, r := range recs {
		res.Rows = append(res.Rows, Row{ID: strconv.FormatInt(r.Seq, 10), Name: r.Command, Cols: []Prop{{"user", r.User},
			{"remote", r.Remote}, {"result", r.Result}, {"time", r.CreatedAt.Format(timeLayout)}}})
	}
	return res, nil
}

func verbGetAuditLog() *VerbInfo {
	return &VerbInfo{Name: "getAuditLog", Help: "Show the audit log (Administrators).", Specs: []*Spec{{
		Help:  "List the newest audited commands: who, from where, what, the result, when.",
		Attrs: []Attr{auditLimit},
		Run:   runListAudit,
	}}}
}

func runListTags(ctx context.Context, x *Exec) (*Result, error) {
	tags, err := x.Backend.Tags(ctx, backend.Filter{Name: x.Str("name")})
	if err != nil {
		return nil, err
	}
	res := &Result{Rows: []Row{}}
	for _, t := range tags {
		res.Rows = append(res.Rows, Row{ID: t.ID, Name: t.Name, Cols: []Prop{{"objects", strconv.Itoa(t.Objects)}, {"description", t.Description}}})
	}
	return res, nil
}

func runShowTag(ctx context.Context, x *Exec) (*Result, error) {
	t, err := x.Backend.Tag(ctx, x.Ref())
	if err != nil {
		return nil, err
	}
	return &Result{Props: []Prop{{"Name", t.Name}, {"Id", t.ID}, {"Description", t.Description}, {"Objects", strconv.Itoa(t.Objects)}}}, nil
}
