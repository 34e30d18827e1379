package backend_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
	"xenmanager/store"
)

// An Operator's edit or delete of the Pending ISO they imported is checked
// again once its job holds the ISO's lock: an approval that came between
// the first check and the lock (approve takes the same lock) makes it an
// Administrator's ISO, and the Operator's change is refused, not done.
func TestCdromApprovedWhileAnOperatorsChangeWaits(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 1})
	admin, m := c.Admin(), c.Manager
	iso := make([]byte, 32768, 34000) // an ISO 9660 volume descriptor where a reader looks for one
	iso = append(append(iso, 1), "CD001\x01"...)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(iso) }))
	t.Cleanup(web.Close)
	if _, err := m.EditManager(admin, backend.EditManagerRequest{ImportAllowedNetworks: new("127.0.0.0/8")}); err != nil { // where web listens
		t.Fatal(err)
	}
	if _, err := m.CreateUser(admin, "op", "a long password", backend.RoleOperator); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AddUserToPool(admin, backend.Ref{Name: "op"}, backend.Ref{Name: managertest.Pool}); err != nil {
		t.Fatal(err)
	}
	op := backend.WithActor(context.Background(), backend.Actor{User: "op", Role: backend.RoleOperator})

	for _, change := range []struct {
		name string
		run  func(m *backend.Manager, ref backend.Ref) error
	}{
		{"delete", func(m *backend.Manager, ref backend.Ref) error {
			_, err := m.DeleteVirtualCdrom(op, ref)
			return err
		}},
		{"edit", func(m *backend.Manager, ref backend.Ref) error {
			name := "renamed"
			_, err := m.EditNamed(op, backend.RenameVirtualCdrom, ref, &name, nil)
			return err
		}},
	} {
		t.Run(change.name, func(t *testing.T) {
			cd, err := m.ImportISO(op, backend.Ref{Name: managertest.Repo}, web.URL+"/x.iso", "mine-"+change.name, "")
			if err != nil || cd.State != backend.CdromPending {
				t.Fatalf("the Operator's import: %+v, %v", cd, err)
			}
			// A job holds the ISO's lock, as approve does while it runs.
			held, release, holdEnded := make(chan struct{}), make(chan struct{}), make(chan error, 1)
			go func() {
				_, err := m.RunJob(admin, "hold the ISO", []string{cd.ID}, func(context.Context, backend.JobRun) (any, error) {
					close(held)
					<-release
					return nil, nil
				})
				holdEnded <- err
			}()
			<-held
			// The Operator's change passes its first check (the ISO is
			// Pending): its job is recorded and waits for the lock.
			recorded, result := make(chan struct{}), make(chan error, 1)
			waiting := m.With(backend.RunOptions{Observe: func(string) { close(recorded) }})
			go func() { result <- change.run(waiting, backend.Ref{ID: cd.ID}) }()
			<-recorded
			// Meanwhile an Administrator's approval is recorded.
			ctx := context.Background()
			if err := c.Store.Write(ctx, func(q *store.Queries) error { return q.SetVirtualCdromState(ctx, cd.ID, backend.CdromApproved) }); err != nil {
				t.Fatal(err)
			}
			close(release)
			if err := <-holdEnded; err != nil {
				t.Fatal(err)
			}
			err = <-result
			if backend.KindOf(err) != backend.KindPermission || !strings.Contains(err.Error(), "it is Approved") {
				t.Fatalf("the Operator's %s of an ISO approved while it waited: %v; want a permission error", change.name, err)
			}
			if got, err := m.VirtualCdrom(admin, backend.Ref{ID: cd.ID}); err != nil || got.Name != cd.Name {
				t.Fatalf("the ISO after the refused %s: %+v, %v", change.name, got, err)
			}
		})
	}
}
