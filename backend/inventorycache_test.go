package backend_test

import (
	"path/filepath"
	"testing"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
	"xenmanager/store/pgtest"
)

// renameInventory renames the pool, the repository and the server of
// managertest's fleet through c, each with its own command.
func renameInventory(t *testing.T, c *managertest.Core, suffix string) {
	t.Helper()
	ctx := c.Admin()
	pool, repo, server := managertest.Pool+suffix, managertest.Repo+suffix, "ovs1"+suffix
	if _, err := c.Manager.EditServerPool(ctx, backend.Ref{Name: managertest.Pool}, backend.PoolEdit{Name: &pool}); err != nil {
		t.Fatalf("rename the pool: %v", err)
	}
	if _, err := c.Manager.EditNamed(ctx, backend.RenameRepository, backend.Ref{Name: managertest.Repo}, &repo, nil); err != nil {
		t.Fatalf("rename the repository: %v", err)
	}
	if _, err := c.Manager.EditServer(ctx, backend.Ref{Name: "ovs1"}, backend.EditServerRequest{Name: &server}); err != nil {
		t.Fatalf("rename the server: %v", err)
	}
}

// shownNames is the pool, repository and server show Vm names for vm.
func shownNames(t *testing.T, c *managertest.Core, vm string) [3]string {
	t.Helper()
	v, err := c.Manager.VM(c.Admin(), backend.Ref{Name: vm})
	if err != nil {
		t.Fatal(err)
	}
	return [3]string{v.Pool.Name, v.Repository.Name, v.Server.Name}
}

// show Vm keeps the names of pools, servers and repositories between
// commands (the inventory cache); a rename of any of them shows at the
// next command, on the manager that made it and, on a shared database, on
// another manager once the change's notification reaches it.
func TestShowFollowsRenamesOfTheInventory(t *testing.T) {
	t.Run("one manager", func(t *testing.T) {
		c := managertest.Ready(t, managertest.Options{Agents: 1})
		createVM(t, c, "web1", 256)
		if _, err := c.Manager.StartVM(c.Admin(), backend.Ref{Name: "web1"}); err != nil {
			t.Fatal(err)
		}
		if got, want := shownNames(t, c, "web1"), [3]string{"pool1", "repo1", "ovs1"}; got != want {
			t.Fatalf("show Vm names %v, want %v", got, want)
		}
		renameInventory(t, c, "-b")
		if got, want := shownNames(t, c, "web1"), [3]string{"pool1-b", "repo1-b", "ovs1-b"}; got != want {
			t.Fatalf("after the renames show Vm names %v, want %v", got, want)
		}
	})
	t.Run("two managers on PostgreSQL", func(t *testing.T) {
		dsn := pgtest.Database(t)
		key := filepath.Join(t.TempDir(), "secret.key")
		a := managertest.Ready(t, managertest.Options{Database: dsn, SecretKeyFile: key, Agents: 1})
		b := managertest.Open(t, managertest.Options{Database: dsn, SecretKeyFile: key})
		createVM(t, a, "web1", 256)
		if _, err := a.Manager.StartVM(a.Admin(), backend.Ref{Name: "web1"}); err != nil {
			t.Fatal(err)
		}
		if got, want := shownNames(t, b, "web1"), [3]string{"pool1", "repo1", "ovs1"}; got != want {
			t.Fatalf("b's show Vm names %v, want %v", got, want)
		}
		renameInventory(t, a, "-b")
		want := [3]string{"pool1-b", "repo1-b", "ovs1-b"}
		// The notification of each commit reaches b in a round trip's
		// time; 10 s bounds it on a loaded machine.
		deadline := time.Now().Add(10 * time.Second)
		for got := shownNames(t, b, "web1"); got != want; got = shownNames(t, b, "web1") {
			if time.Now().After(deadline) {
				t.Fatalf("10 s after the renames on a, b's show Vm names %v, want %v", got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// Placement takes a pool's servers from the inventory: a server put into
// maintenance after a start has cached the pool's placement is left out of
// the next start's choice, and one taken out of it is chosen again.
func TestPlacementFollowsTheInventory(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 2})
	for _, name := range []string{"p1", "p2", "p3", "p4", "p5"} {
		createVM(t, c, name, 256)
	}
	if _, err := c.Manager.StartVM(c.Admin(), backend.Ref{Name: "p1"}); err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	for _, step := range []struct {
		maintenance *bool
		vms         []string
		want        string // the server every start must pick; "" for either
	}{
		{&yes, []string{"p2", "p3"}, "ovs2"},
		{&no, []string{"p4", "p5"}, ""},
	} {
		if _, err := c.Manager.EditServer(c.Admin(), backend.Ref{Name: "ovs1"}, backend.EditServerRequest{Maintenance: step.maintenance}); err != nil {
			t.Fatalf("edit Server ovs1 maintenance=%v: %v", *step.maintenance, err)
		}
		for _, vm := range step.vms {
			if _, err := c.Manager.StartVM(c.Admin(), backend.Ref{Name: vm}); err != nil {
				t.Fatalf("start %s (ovs1 maintenance=%v): %v", vm, *step.maintenance, err)
			}
			if server, _ := serverOf(t, c, vm); step.want != "" && server != step.want {
				t.Fatalf("%s started on %s with ovs1 in maintenance, want %s", vm, server, step.want)
			}
		}
	}
	// Out of maintenance, ovs1 is a candidate again: with p2-p5 counted on
	// ovs2 (or p4, p5 spread), the least loaded server is ovs1 at least once.
	on := map[string]int{}
	for _, vm := range []string{"p1", "p2", "p3", "p4", "p5"} {
		s, _ := serverOf(t, c, vm)
		on[s]++
	}
	if on["ovs1"] == 0 {
		t.Fatalf("after ovs1 left maintenance no VM was placed there: %v", on)
	}
}
