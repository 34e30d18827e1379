package backend

import (
	"context"
	"crypto/rand"
	"errors"
	"math/big"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"xenmanager/store"
)

// Roles a user may have.
const (
	RoleAdministrator = "Administrator"
	RoleOperator      = "Operator"
	RoleViewer        = "Viewer"
)

// Actor is who runs an operation, and from where (for the audit log and,
// later, for what they may see).
type Actor struct {
	User   string
	Role   string
	Remote string
}

// EnsureAdmin creates user admin with a random password when the database has
// no users yet, and returns that password (it is never stored in the clear).
// created is false when users already existed. persist, when not nil, is
// given the password before the user is committed; if it fails, no user is
// created, so that a password is never lost.
func (m *Manager) EnsureAdmin(ctx context.Context, persist func(password string) error) (password string, created bool, err error) {
	err = m.st.Write(ctx, func(q *store.Queries) error {
		n, err := q.CountUsers(ctx)
		if err != nil || n > 0 {
			return err
		}
		password, err = randomPassword(20)
		if err != nil {
			return err
		}
		hash, err := m.passwordSlots.generate(ctx, password, m.passwordCost)
		if err != nil {
			return err
		}
		if err := q.InsertUser(ctx, store.User{ID: NewID(TypeUser), Name: "admin", PasswordHash: string(hash),
			Role: RoleAdministrator, CreatedAt: time.Now()}); err != nil {
			return err
		}
		if persist != nil {
			if err := persist(password); err != nil {
				return err
			}
		}
		created = true
		return nil
	})
	return password, created, err
}

// Authenticate checks a user's password. Unknown users and wrong passwords
// fail alike, so that a caller cannot tell which names exist. The user's
// row is read at every login (a deleted user fails, a role change shows at
// once); the bcrypt comparison is skipped when the same password passed
// against the same stored hash within the manager's passwordCacheSeconds
// (credentialCache).
func (m *Manager) Authenticate(ctx context.Context, user, password string) (Actor, error) {
	q := m.st.Read()
	u, err := q.UserByName(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		m.creds.forget(user)
		// Spend the same time as a real comparison.
		m.passwordSlots.compare(ctx, dummyHash(), password)
		return Actor{}, errorf(KindPermission, "wrong user name or password")
	}
	if err != nil {
		return Actor{}, &Error{Kind: KindInternal, Msg: "read user", Cause: err}
	}
	var ttl time.Duration
	if s, err := q.ManagerSettings(ctx); err != nil {
		m.log.Warn("read passwordCacheSeconds; checking the password without the cache", "err", err)
	} else {
		ttl = time.Duration(s.PasswordCacheSeconds) * time.Second
	}
	if m.creds.check(ctx, m.passwordSlots, u.Name, u.PasswordHash, password, ttl) != nil {
		return Actor{}, errorf(KindPermission, "wrong user name or password")
	}
	return Actor{User: u.Name, Role: u.Role}, nil
}

// dummyHash is compared against for unknown users; built on first need so
// that start-up does not pay for it.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("not a password"), bcrypt.DefaultCost)
	return h
})

const passwordAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

func randomPassword(n int) (string, error) {
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(passwordAlphabet))))
		if err != nil {
			return "", err
		}
		b[i] = passwordAlphabet[k.Int64()]
	}
	return string(b), nil
}

// UserSetting returns a setting the user chose in an earlier session, and
// whether there was one.
func (m *Manager) UserSetting(ctx context.Context, user, key string) (string, bool) {
	v, err := m.st.Read().UserSetting(ctx, user, key)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			m.log.Warn("read user setting", "user", user, "key", key, "err", err)
		}
		return "", false
	}
	return v, true
}

// SetUserSetting remembers a user's setting for later sessions.
func (m *Manager) SetUserSetting(ctx context.Context, user, key, value string) error {
	err := m.st.Write(ctx, func(q *store.Queries) error { return q.SetUserSetting(ctx, user, key, value) })
	if err != nil {
		return &Error{Kind: KindInternal, Msg: "remember setting " + key, Cause: err}
	}
	return nil
}

// HistoryLimit is how many lines of history each user keeps.
const HistoryLimit = 1000

// AppendHistory remembers a line the user typed in an interactive session.
// Lines that hold a password are not kept.
func (m *Manager) AppendHistory(ctx context.Context, user, line string) {
	err := m.st.Write(ctx, func(q *store.Queries) error { return q.AppendHistory(ctx, user, line, HistoryLimit) })
	if err != nil {
		m.log.Warn("record history", "user", user, "err", err)
	}
}

// History returns the user's history, oldest first.
func (m *Manager) History(ctx context.Context, user string) []string {
	lines, err := m.st.Read().History(ctx, user, HistoryLimit)
	if err != nil {
		m.log.Warn("read history", "user", user, "err", err)
	}
	return lines
}
