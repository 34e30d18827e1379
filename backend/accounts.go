package backend

import (
	"context"
	"errors"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"xenmanager/store"
)

// User is a user as the operator sees it.
type User struct {
	ID, Name, Role string
	Pools          []NamedRef
	Keys           int
	CreatedAt      time.Time
}

func (u User) String() string { return "User " + u.Name }

// SSHKey is a registered public key.
type SSHKey struct {
	ID, Name, User, Fingerprint, Type string
	CreatedAt                         time.Time
}

func (k SSHKey) String() string { return "SshKey " + k.Name }

// ValidRole reports whether role is one of the roles.
func ValidRole(role string) bool {
	return role == RoleAdministrator || role == RoleOperator || role == RoleViewer
}

const minPasswordLen = 8

func (m *Manager) hashPassword(ctx context.Context, pw string) (string, error) {
	if len(pw) < minPasswordLen {
		return "", errorf(KindInvalidArgument, "the password is too short: use at least %d characters", minPasswordLen)
	}
	h, err := m.passwordSlots.generate(ctx, pw, m.passwordCost)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "", err
	}
	if err != nil {
		return "", errorf(KindInvalidArgument, "the password cannot be used: %v", err)
	}
	return string(h), nil
}

func (m *Manager) userKind() kind[store.User] {
	q := m.st.Read()
	return kind[store.User]{"User", q.UserByID, q.UsersByName, q.Users,
		func(x store.User) string { return x.Name }, func(x store.User) string { return x.ID }, func(store.User) string { return "" }}
}

// findUser resolves a user: administrators see every user, others only
// themselves.
func (m *Manager) findUser(ctx context.Context, ref Ref) (store.User, error) {
	a := actorFrom(ctx)
	u, err := resolve(context.WithValue(ctx, actorKey{}, system), m, m.userKind(), ref)
	if err != nil {
		return store.User{}, err
	}
	if a.Role != RoleAdministrator && u.Name != a.User {
		return store.User{}, errorf(KindNotFound, "User %s not found", ref)
	}
	return u, nil
}

// CreateUser adds a user (administrators only).
func (m *Manager) CreateUser(ctx context.Context, name, password, role string) (User, error) {
	if err := m.authorize(ctx, PermManage); err != nil {
		return User{}, err
	}
	name, err := ValidateName("User", name)
	if err != nil {
		return User{}, err
	}
	if !ValidRole(role) {
		return User{}, errorf(KindInvalidArgument, "role %q is not one of Administrator, Operator, Viewer", role)
	}
	hash, err := m.hashPassword(ctx, password)
	if err != nil {
		return User{}, err
	}
	u := store.User{ID: NewID(TypeUser), Name: name, PasswordHash: hash, Role: role, CreatedAt: time.Now()}
	err = m.st.Write(ctx, func(q *store.Queries) error { return q.InsertUser(ctx, u) })
	if errors.Is(err, store.ErrConflict) {
		return User{}, errorf(KindConflict, "a user called %s exists already", name)
	}
	if err != nil {
		return User{}, &Error{Kind: KindInternal, Msg: "record user", Cause: err}
	}
	m.log.Info("user created", "user", name, "role", role, "by", actorFrom(ctx).User)
	return m.User(ctx, Ref{ID: u.ID})
}

// EditUser changes a user's role (administrators) or password (the user,
// or an administrator). The last administrator cannot stop being one.
func (m *Manager) EditUser(ctx context.Context, ref Ref, role, password *string) (User, error) {
	u, err := m.findUser(ctx, ref)
	if err != nil {
		return User{}, err
	}
	a := actorFrom(ctx)
	if role != nil || a.User != u.Name {
		if err := m.authorize(ctx, PermManage); err != nil {
			return User{}, err
		}
	}
	// Hash outside the transaction: bcrypt takes tens of milliseconds.
	var newHash string
	if password != nil {
		if newHash, err = m.hashPassword(ctx, *password); err != nil {
			return User{}, err
		}
	}
	err = m.st.Write(ctx, func(q *store.Queries) error {
		if role != nil {
			if !ValidRole(*role) {
				return errorf(KindInvalidArgument, "role %q is not one of Administrator, Operator, Viewer", *role)
			}
			if u.Role == RoleAdministrator && *role != RoleAdministrator {
				n, err := q.CountAdministrators(ctx)
				if err != nil {
					return err
				}
				if n <= 1 {
					return errorf(KindConflict, "User %s is the last Administrator; make another user Administrator first", u.Name)
				}
			}
			u.Role = *role
		}
		if password != nil {
			u.PasswordHash = newHash
		}
		return q.UpdateUser(ctx, u)
	})
	if err != nil {
		if KindOf(err) != KindInternal {
			return User{}, err
		}
		return User{}, &Error{Kind: KindInternal, Msg: "record user", Cause: err}
	}
	if password != nil {
		m.creds.forget(u.Name) // the new hash would miss it anyway; drop it now
	}
	return m.User(ctx, Ref{ID: u.ID})
}

// DeleteUser removes a user; not oneself, and not the last administrator.
func (m *Manager) DeleteUser(ctx context.Context, ref Ref) (User, error) {
	if err := m.authorize(ctx, PermManage); err != nil {
		return User{}, err
	}
	u, err := m.findUser(ctx, ref)
	if err != nil {
		return User{}, err
	}
	if u.Name == actorFrom(ctx).User {
		return User{}, errorf(KindConflict, "you cannot delete yourself (User %s)", u.Name)
	}
	view, err := m.User(ctx, Ref{ID: u.ID})
	if err != nil {
		return User{}, err
	}
	err = m.st.Write(ctx, func(q *store.Queries) error {
		if u.Role == RoleAdministrator {
			if n, err := q.CountAdministrators(ctx); err != nil || n <= 1 {
				return errorf(KindConflict, "User %s is the last Administrator", u.Name)
			}
		}
		return q.DeleteUser(ctx, u.ID)
	})
	if err != nil {
		if KindOf(err) != KindInternal {
			return User{}, err
		}
		return User{}, &Error{Kind: KindInternal, Msg: "delete user", Cause: err}
	}
	m.creds.forget(u.Name)
	return view, nil
}

// AddUserToPool lets a user see and act on a pool's objects.
func (m *Manager) AddUserToPool(ctx context.Context, user, pool Ref) (User, error) {
	return m.userPool(ctx, user, pool, true)
}

// RemoveUserFromPool takes a pool away from a user.
func (m *Manager) RemoveUserFromPool(ctx context.Context, user, pool Ref) (User, error) {
	return m.userPool(ctx, user, pool, false)
}

func (m *Manager) userPool(ctx context.Context, user, pool Ref, add bool) (User, error) {
	if err := m.authorize(ctx, PermManage); err != nil {
		return User{}, err
	}
	u, err := m.findUser(ctx, user)
	if err != nil {
		return User{}, err
	}
	p, err := m.findPool(ctx, pool)
	if err != nil {
		return User{}, err
	}
	err = m.st.Write(ctx, func(q *store.Queries) error {
		if add {
			return q.AddUserPool(ctx, u.ID, p.ID)
		}
		return q.RemoveUserPool(ctx, u.ID, p.ID)
	})
	if errors.Is(err, store.ErrNotFound) {
		return User{}, errorf(KindInvalidState, "User %s is not in ServerPool %s", u.Name, p.Name)
	}
	if err != nil {
		return User{}, &Error{Kind: KindInternal, Msg: "record pool membership", Cause: err}
	}
	return m.User(ctx, Ref{ID: u.ID})
}

// Users lists the users: all for administrators, oneself for others.
func (m *Manager) Users(ctx context.Context, f Filter) ([]User, error) {
	l, err := m.StreamUsers(ctx, f)
	return collected(ctx, l, err)
}

// User returns one user.
func (m *Manager) User(ctx context.Context, ref Ref) (User, error) {
	u, err := m.findUser(ctx, ref)
	if err != nil {
		return User{}, err
	}
	q := m.st.Read()
	inv, err := m.inventory(ctx)
	if err != nil {
		return User{}, err
	}
	keys, err := q.CountWhere(ctx, "ssh_keys.user_id", u.ID)
	if err != nil {
		return User{}, &Error{Kind: KindInternal, Msg: "count the user's keys", Cause: err}
	}
	return userView(ctx, q, inv, u, keys)
}

// userView is user u as show User and list User show it, with its keys
// counted: its pools' names come from inv.
func userView(ctx context.Context, q *store.Queries, inv *inventory, u store.User, keys int) (User, error) {
	ids, err := q.UserPoolIDs(ctx, u.Name)
	if err != nil {
		return User{}, &Error{Kind: KindInternal, Msg: "read the user's pools", Cause: err}
	}
	v := User{ID: u.ID, Name: u.Name, Role: u.Role, CreatedAt: u.CreatedAt, Keys: keys}
	for _, id := range ids {
		if p, ok := inv.pools[id]; ok {
			v.Pools = append(v.Pools, NamedRef{p.ID, p.Name})
		}
	}
	return v, nil
}

// CreateSSHKey registers a public key (authorized_keys format) for a user;
// the user may then log in with it. Users add their own keys;
// administrators add anyone's.
func (m *Manager) CreateSSHKey(ctx context.Context, user Ref, name, publicKey string) (SSHKey, error) {
	u, err := m.findUser(ctx, user)
	if err != nil {
		return SSHKey{}, err
	}
	if a := actorFrom(ctx); a.User != u.Name {
		if err := m.authorize(ctx, PermManage); err != nil {
			return SSHKey{}, err
		}
	}
	if name, err = ValidateName("SshKey", name); err != nil {
		return SSHKey{}, err
	}
	pk, _, _, _, err := gossh.ParseAuthorizedKey([]byte(publicKey))
	if err != nil {
		return SSHKey{}, errorf(KindInvalidArgument, "key is not an OpenSSH public key (such as \"ssh-ed25519 AAAA... comment\"): %v", err)
	}
	k := store.SSHKey{ID: NewID(TypeSSHKey), UserID: u.ID, Name: name, PublicKey: strings.TrimSpace(string(gossh.MarshalAuthorizedKey(pk))),
		Fingerprint: gossh.FingerprintSHA256(pk), CreatedAt: time.Now()}
	err = m.st.Write(ctx, func(q *store.Queries) error { return q.InsertSSHKey(ctx, k) })
	if errors.Is(err, store.ErrConflict) {
		return SSHKey{}, errorf(KindConflict, "the key %s is registered already", k.Fingerprint)
	}
	if err != nil {
		return SSHKey{}, &Error{Kind: KindInternal, Msg: "record key", Cause: err}
	}
	return SSHKey{ID: k.ID, Name: k.Name, User: u.Name, Fingerprint: k.Fingerprint, Type: pk.Type(), CreatedAt: k.CreatedAt}, nil
}

// SSHKeys lists the keys the actor may see (their own; all for administrators).
func (m *Manager) SSHKeys(ctx context.Context) ([]SSHKey, error) {
	l, err := m.StreamSSHKeys(ctx)
	return collected(ctx, l, err)
}

// DeleteSSHKey removes a key by id (one's own, or any for administrators).
func (m *Manager) DeleteSSHKey(ctx context.Context, id string) (SSHKey, error) {
	keys, err := m.SSHKeys(ctx)
	if err != nil {
		return SSHKey{}, err
	}
	for _, k := range keys {
		if k.ID == id {
			if err := m.st.Write(ctx, func(q *store.Queries) error { return q.DeleteSSHKey(ctx, id) }); err != nil {
				return SSHKey{}, &Error{Kind: KindInternal, Msg: "delete key", Cause: err}
			}
			return k, nil
		}
	}
	return SSHKey{}, errorf(KindNotFound, "SshKey id=%s not found", id)
}

// AuthenticateKey returns the actor a public key logs in as, checking that
// the key belongs to that user (gliderlabs/ssh may carry a key over from an
// earlier attempt: the caller checks again in the session).
func (m *Manager) AuthenticateKey(ctx context.Context, user string, key gossh.PublicKey) (Actor, error) {
	k, err := m.st.Read().SSHKeyByFingerprint(ctx, gossh.FingerprintSHA256(key))
	if err != nil || k.UserName != user {
		return Actor{}, errorf(KindPermission, "key not accepted for %s", user)
	}
	u, err := m.st.Read().UserByName(ctx, user)
	if err != nil {
		return Actor{}, errorf(KindPermission, "key not accepted for %s", user)
	}
	return Actor{User: u.Name, Role: u.Role}, nil
}

// AuditRecord is one audited command.
type AuditRecord struct {
	Seq                           int64
	User, Remote, Command, Result string
	CreatedAt                     time.Time
}

// AuditLog returns the newest audit records first (administrators only),
// after writing what waits in the spool if the database allows.
func (m *Manager) AuditLog(ctx context.Context, limit int) ([]AuditRecord, error) {
	l, err := m.StreamAuditLog(ctx, limit)
	return collected(ctx, l, err)
}
