package backend_test

import (
	"strings"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
)

// Authenticate remembers a verified password for passwordCacheSeconds
// (300 by default; edit Manager sets it, Administrators only, 0 to 86400),
// forgets it when the password changes or the user is deleted, and with 0
// pays bcrypt at every login.
func TestAuthenticatePasswordCache(t *testing.T) {
	c := managertest.Open(t, managertest.Options{})
	m, ctx := c.Manager, c.Admin()
	info, err := m.Info(ctx)
	if err != nil || info.Settings.PasswordCacheSeconds != backend.DefaultPasswordCacheSeconds {
		t.Fatalf("passwordCacheSeconds of a new database: %+v, %v; want %d", info.Settings, err, backend.DefaultPasswordCacheSeconds)
	}
	op := backend.WithActor(t.Context(), backend.Actor{User: "op", Role: backend.RoleOperator})
	if _, err := m.EditManager(op, backend.EditManagerRequest{PasswordCacheSeconds: new(int64(0))}); backend.KindOf(err) != backend.KindPermission {
		t.Fatalf("an Operator's edit Manager passwordCacheSeconds = %v, want a permission error", err)
	}
	for _, bad := range []int64{-1, backend.MaxPasswordCacheSeconds + 1} {
		_, err := m.EditManager(ctx, backend.EditManagerRequest{PasswordCacheSeconds: &bad})
		if backend.KindOf(err) != backend.KindInvalidArgument || !strings.Contains(backend.Message(err), "passwordCacheSeconds") {
			t.Fatalf("edit Manager passwordCacheSeconds=%d: %v, want an invalid argument", bad, err)
		}
	}
	if _, err := m.CreateUser(ctx, "alice", "correct horse", backend.RoleOperator); err != nil {
		t.Fatal(err)
	}
	login := func(user, password string, ok bool, bcrypts int64) {
		t.Helper()
		before := m.PasswordBcrypts()
		a, err := m.Authenticate(t.Context(), user, password)
		if ok && (err != nil || a.User != user) || !ok && backend.KindOf(err) != backend.KindPermission {
			t.Fatalf("login %s/%s = %+v, %v; want ok %v", user, password, a, err, ok)
		}
		if got := m.PasswordBcrypts() - before; got != bcrypts {
			t.Fatalf("login %s/%s paid %d bcrypts, want %d", user, password, got, bcrypts)
		}
	}
	login("alice", "correct horse", true, 1)
	login("alice", "correct horse", true, 0)
	login("alice", "wrong horse", false, 1)
	login("alice", "correct horse", true, 0)

	// A role change shows at the next login, cached or not.
	if _, err := m.EditUser(ctx, backend.Ref{Name: "alice"}, new(backend.RoleViewer), nil); err != nil {
		t.Fatal(err)
	}
	if a, err := m.Authenticate(t.Context(), "alice", "correct horse"); err != nil || a.Role != backend.RoleViewer {
		t.Fatalf("login after a role change = %+v, %v; want a Viewer", a, err)
	}

	// A new password: the old one fails (after bcrypt), the new one is
	// checked once and then remembered.
	if _, err := m.EditUser(ctx, backend.Ref{Name: "alice"}, nil, new("battery staple")); err != nil {
		t.Fatal(err)
	}
	login("alice", "correct horse", false, 1)
	login("alice", "battery staple", true, 1)
	login("alice", "battery staple", true, 0)

	// Disabled: every login pays.
	if info, err := m.EditManager(ctx, backend.EditManagerRequest{PasswordCacheSeconds: new(int64(0))}); err != nil ||
		info.Settings.PasswordCacheSeconds != 0 {
		t.Fatalf("edit Manager passwordCacheSeconds=0 = %+v, %v", info.Settings, err)
	}
	login("alice", "battery staple", true, 1)
	login("alice", "battery staple", true, 1)
	if _, err := m.EditManager(ctx, backend.EditManagerRequest{PasswordCacheSeconds: new(int64(60))}); err != nil {
		t.Fatal(err)
	}
	login("alice", "battery staple", true, 1)
	login("alice", "battery staple", true, 0)

	// A deleted user fails at once, and one created again under the name
	// is checked against its own password.
	if _, err := m.DeleteUser(ctx, backend.Ref{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	login("alice", "battery staple", false, 0) // an unknown user: the dummy hash, not counted
	if _, err := m.CreateUser(ctx, "alice", "another horse", backend.RoleOperator); err != nil {
		t.Fatal(err)
	}
	login("alice", "battery staple", false, 1)
	login("alice", "another horse", true, 1)
}
