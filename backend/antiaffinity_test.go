package backend_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/managertest"
)

// antiAffinityFleet is three servers where placement, left to itself,
// puts every small VM on ovs1: a 3 GiB VM runs on each of ovs2 and ovs3,
// so ovs1 has the most free memory by far. A group web of pool1 has the
// VMs named (created Stopped, 512 MiB).
func antiAffinityFleet(t *testing.T, members ...string) *managertest.Core {
	t.Helper()
	c := managertest.Ready(t, managertest.Options{Agents: 3, MemoryMiB: 8192, CPUs: 4})
	ctx := c.Admin()
	m := c.Manager
	for _, f := range []struct{ vm, server string }{{"filler2", "ovs2"}, {"filler3", "ovs3"}} {
		createVM(t, c, f.vm, 3072)
		if _, err := m.EditVM(ctx, backend.Ref{Name: f.vm}, backend.EditVMRequest{PreferredServers: &[]backend.Ref{{Name: f.server}}}); err != nil {
			t.Fatal(err)
		}
		if v, err := m.StartVM(ctx, backend.Ref{Name: f.vm}); err != nil || v.Server.Name != f.server {
			t.Fatalf("start %s: on %q, %v; want it on %s", f.vm, v.Server.Name, err, f.server)
		}
	}
	if _, err := m.CreateAntiAffinityGroup(ctx, "web", "the web tier", backend.Ref{Name: managertest.Pool}); err != nil {
		t.Fatal(err)
	}
	for _, name := range members {
		createVM(t, c, name, 512)
		if _, err := m.AddVMToAntiAffinityGroup(ctx, backend.Ref{Name: name}, backend.Ref{Name: "web"}); err != nil {
			t.Fatalf("add Vm %s to AntiAffinityGroup web: %v", name, err)
		}
	}
	return c
}

func createVM(t *testing.T, c *managertest.Core, name string, mib int64) {
	t.Helper()
	if _, err := c.Manager.CreateVM(c.Admin(), backend.CreateVMRequest{Name: name, Repository: backend.Ref{Name: managertest.Repo},
		MemoryMiB: mib, CPUCount: 1}); err != nil {
		t.Fatalf("create Vm %s: %v", name, err)
	}
}

// serverOf is the server the VM is recorded on, and its status.
func serverOf(t *testing.T, c *managertest.Core, vm string) (server, status string) {
	t.Helper()
	v, err := c.Manager.VM(c.Admin(), backend.Ref{Name: vm})
	if err != nil {
		t.Fatal(err)
	}
	return v.Server.Name, v.Status
}

// The members of a group run on servers of their own: started at once,
// three members of a group go to three servers (placement would put them
// all on ovs1); a fourth cannot start and the error names the group and
// the member on each server; a migration onto a member's server is
// refused, and one without a destination too when every other server has
// a member; a VM taken out of the group goes anywhere again.
func TestAntiAffinityKeepsMembersApart(t *testing.T) {
	c := antiAffinityFleet(t, "web1", "web2", "web3", "web4")
	ctx := c.Admin()
	m := c.Manager

	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range 3 {
		wg.Go(func() { _, errs[i] = m.StartVM(ctx, backend.Ref{Name: fmt.Sprintf("web%d", i+1)}) })
	}
	wg.Wait()
	on := map[string]string{} // server -> member
	for i, err := range errs {
		name := fmt.Sprintf("web%d", i+1)
		if err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		s, _ := serverOf(t, c, name)
		if other, taken := on[s]; taken {
			t.Fatalf("%s and %s of AntiAffinityGroup web both run on %s", other, name, s)
		}
		on[s] = name
	}

	// A fourth member: no server is left, and the error says who is where.
	_, err := m.StartVM(ctx, backend.Ref{Name: "web4"})
	want := fmt.Sprintf("ServerPool pool1 has no server that can take Vm web4: ovs1 has Vm %s of AntiAffinityGroup web; ovs2 has Vm %s of AntiAffinityGroup web; "+
		"ovs3 has Vm %s of AntiAffinityGroup web (an AntiAffinityGroup keeps its members on different servers)", on["ovs1"], on["ovs2"], on["ovs3"])
	if backend.KindOf(err) != backend.KindInvalidState || backend.Message(err) != want {
		t.Fatalf("start web4 = %v; want InvalidState %q", err, want)
	}
	if s, status := serverOf(t, c, "web4"); s != "" || status != backend.VMStopped {
		t.Fatalf("web4 after the refused start: %s on %q; want Stopped nowhere", status, s)
	}

	// migrate onto a member's server: refused, naming the member there.
	_, _, err = m.MigrateVM(ctx, backend.Ref{Name: on["ovs1"]}, backend.Ref{Name: "ovs2"})
	want = fmt.Sprintf("Vm %s may not run on destServer ovs2: it has Vm %s of AntiAffinityGroup web (an AntiAffinityGroup keeps its members on different servers)",
		on["ovs1"], on["ovs2"])
	if backend.KindOf(err) != backend.KindInvalidState || backend.Message(err) != want {
		t.Fatalf("migrate %s destServer=ovs2 = %v; want InvalidState %q", on["ovs1"], err, want)
	}
	// migrate without destServer: placement has nowhere to put it.
	_, _, err = m.MigrateVM(ctx, backend.Ref{Name: on["ovs1"]}, backend.Ref{})
	want = fmt.Sprintf("ServerPool pool1 has no server that can take Vm %s: ovs2 has Vm %s of AntiAffinityGroup web; ovs3 has Vm %s of AntiAffinityGroup web (an AntiAffinityGroup",
		on["ovs1"], on["ovs2"], on["ovs3"])
	if backend.KindOf(err) != backend.KindInvalidState || !strings.HasPrefix(backend.Message(err), want) {
		t.Fatalf("migrate %s = %v; want InvalidState %q...", on["ovs1"], err, want)
	}
	for s, name := range on {
		if got, status := serverOf(t, c, name); got != s || status != backend.VMRunning {
			t.Fatalf("%s after the refused migrations: %s on %s; want Running on %s", name, status, got, s)
		}
	}

	// Taken out of the group, the member on ovs3 stays; web4 may then go
	// there, and nowhere else.
	g, err := m.RemoveVMFromAntiAffinityGroup(ctx, backend.Ref{Name: on["ovs3"]}, backend.Ref{Name: "web"})
	if err != nil || len(g.Members) != 3 {
		t.Fatalf("remove Vm %s from AntiAffinityGroup web = %d members, %v; want 3", on["ovs3"], len(g.Members), err)
	}
	if v, err := m.StartVM(ctx, backend.Ref{Name: "web4"}); err != nil || v.Server.Name != "ovs3" {
		t.Fatalf("start web4 = on %q, %v; want it on ovs3, the only server without a member", v.Server.Name, err)
	}
}

// A start in flight counts: while a member's start is under way on a
// server (decided, not yet recorded), another member is placed elsewhere;
// and the next candidate a start falls back to is checked again, since a
// member may have gone there since the ranking.
func TestAntiAffinityCountsStartsInFlight(t *testing.T) {
	c := antiAffinityFleet(t, "web1", "web2")
	ctx := c.Admin()
	m := c.Manager
	ids := map[string]string{} // server id -> name
	for _, n := range []string{"ovs1", "ovs2", "ovs3"} {
		s, err := m.Server(ctx, backend.Ref{Name: n})
		if err != nil {
			t.Fatal(err)
		}
		ids[s.ID] = n
	}

	// web1's start is ranked ovs1, ovs2, ovs3 (most free memory, then the
	// name). While it is in flight on ovs1, web2 starts: it must not go
	// to ovs1, and goes to ovs2. Then ovs1 refuses web1 for lack of
	// memory: the fallback may not take ovs2 (web2 is there now) and
	// takes ovs3.
	var tried []string
	var web2On string
	err := m.PlaceAndRun(ctx, backend.Ref{Name: "web1"}, func(serverID string) error {
		tried = append(tried, ids[serverID])
		if len(tried) > 1 {
			return nil
		}
		v, err := m.StartVM(ctx, backend.Ref{Name: "web2"})
		if err != nil {
			return fmt.Errorf("start web2 while web1 is in flight: %w", err)
		}
		web2On = v.Server.Name
		return agentapi.Errorf(agentapi.FaultInsufficientResources, "ovs1 is full")
	})
	if err != nil {
		t.Fatalf("start web1: %v (tried %v)", err, tried)
	}
	if web2On != "ovs2" {
		t.Fatalf("web2, started while web1's start was in flight on ovs1, went to %q; want ovs2", web2On)
	}
	if !slices.Equal(tried, []string{"ovs1", "ovs3"}) {
		t.Fatalf("web1's start tried %v; want ovs1, then ovs3 (ovs2 has web2 of the group)", tried)
	}
	if s, _ := serverOf(t, c, "web1"); s != "ovs3" {
		t.Fatalf("web1 is on %q; want ovs3", s)
	}
}

// Placement keeps the VMs in a group with the inventory, and reads the
// peers of those alone: a VM that joins a group after a start cached the
// set (when it was in none) is kept apart from the members at its next
// start, as a membership changes the store's inventory generation.
func TestAntiAffinityJoinAfterPlacementCached(t *testing.T) {
	c := antiAffinityFleet(t, "web1")
	ctx := c.Admin()
	m := c.Manager
	createVM(t, c, "web2", 512)
	for _, name := range []string{"web1", "web2"} { // web2 in no group: ovs1 for both
		if v, err := m.StartVM(ctx, backend.Ref{Name: name}); err != nil || v.Server.Name != "ovs1" {
			t.Fatalf("start %s = on %q, %v; want ovs1", name, v.Server.Name, err)
		}
	}
	if _, err := m.StopVM(ctx, backend.Ref{Name: "web2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AddVMToAntiAffinityGroup(ctx, backend.Ref{Name: "web2"}, backend.Ref{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	if v, err := m.StartVM(ctx, backend.Ref{Name: "web2"}); err != nil || v.Server.Name == "ovs1" {
		t.Fatalf("start web2, now in web with web1 on ovs1 = on %q, %v; want another server", v.Server.Name, err)
	}
}

// A VM added to a group while it shares a server with a member stays
// there (the manager does not move running VMs): the membership is
// recorded, a Warning event names the server and the members, and show
// lists the server under Together. A group with members is not deleted;
// deleting a member VM takes it out; a VM of another pool may not join.
func TestAntiAffinityMembership(t *testing.T) {
	c := antiAffinityFleet(t, "web1")
	ctx := c.Admin()
	m := c.Manager
	createVM(t, c, "web2", 512)
	for _, name := range []string{"web1", "web2"} { // both on ovs1: nothing keeps web2 off it yet
		if v, err := m.StartVM(ctx, backend.Ref{Name: name}); err != nil || v.Server.Name != "ovs1" {
			t.Fatalf("start %s = on %q, %v; want ovs1", name, v.Server.Name, err)
		}
	}
	g, err := m.AddVMToAntiAffinityGroup(ctx, backend.Ref{Name: "web2"}, backend.Ref{Name: "web"})
	if err != nil {
		t.Fatalf("add web2, which shares ovs1 with web1: %v", err)
	}
	if want := []string{"ovs1 runs web1, web2"}; !slices.Equal(g.Together, want) || len(g.Members) != 2 {
		t.Fatalf("the group after adding web2: %d members, together %q; want 2, %q", len(g.Members), g.Together, want)
	}
	events, err := m.Events(ctx, false, 20)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range events {
		if e.Kind == "AntiAffinityGroupShared" && e.Severity == "Warning" && e.ObjectType == "AntiAffinityGroup" && e.Name == "web" &&
			strings.Contains(e.Description, "Vm web2 joined AntiAffinityGroup web while it shares a server with other members (ovs1 runs web2, web1)") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no Warning event names ovs1, web1 and web2; events: %+v", events)
	}
	for s, status := range map[string]string{"web1": "ovs1", "web2": "ovs1"} {
		if got, st := serverOf(t, c, s); got != status || st != backend.VMRunning {
			t.Fatalf("%s is %s on %q after joining; want it left Running on %s", s, st, got, status)
		}
	}
	if _, err := m.AddVMToAntiAffinityGroup(ctx, backend.Ref{Name: "web2"}, backend.Ref{Name: "web"}); backend.KindOf(err) != backend.KindConflict ||
		backend.Message(err) != "Vm web2 is already in AntiAffinityGroup web" {
		t.Fatalf("add web2 again = %v; want Conflict", err)
	}

	// Delete is refused while the group has members, naming them.
	_, err = m.DeleteAntiAffinityGroup(ctx, backend.Ref{Name: "web"})
	if want := "AntiAffinityGroup web has 2 members (web1, web2); take them out first"; backend.KindOf(err) != backend.KindConflict ||
		!strings.HasPrefix(backend.Message(err), want) {
		t.Fatalf("delete the group with members = %v; want Conflict %q...", err, want)
	}
	// Deleting a member VM takes it out.
	for _, step := range []func() error{
		func() error { _, err := m.StopVM(ctx, backend.Ref{Name: "web2"}); return err },
		func() error { _, err := m.DeleteVM(ctx, backend.Ref{Name: "web2"}); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	g, err = m.AntiAffinityGroup(ctx, backend.Ref{Name: "web"})
	if err != nil || len(g.Members) != 1 || g.Members[0].VM.Name != "web1" || g.Members[0].Server.Name != "ovs1" || len(g.Together) != 0 {
		t.Fatalf("the group after web2 was deleted = %+v, %v; want web1 alone, on ovs1", g, err)
	}
	if _, err := m.RemoveVMFromAntiAffinityGroup(ctx, backend.Ref{Name: "filler2"}, backend.Ref{Name: "web"}); backend.KindOf(err) != backend.KindInvalidState ||
		backend.Message(err) != "Vm filler2 is not in AntiAffinityGroup web" {
		t.Fatalf("remove a VM that is not a member = %v", err)
	}

	// Only VMs of the group's pool may join.
	if _, err := m.CreateServerPool(ctx, "pool2", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := m.CreateAntiAffinityGroup(ctx, "db", "", backend.Ref{Name: "pool2"}); err != nil {
		t.Fatal(err)
	}
	_, err = m.AddVMToAntiAffinityGroup(ctx, backend.Ref{Name: "web1"}, backend.Ref{Name: "db"})
	if want := "Vm web1 is in ServerPool pool1; AntiAffinityGroup db is of ServerPool pool2, and only VMs of its pool may join it"; backend.KindOf(err) != backend.KindInvalidArgument ||
		backend.Message(err) != want {
		t.Fatalf("add a VM of another pool = %v; want InvalidArgument %q", err, want)
	}

	// Emptied, the group is deleted.
	if _, err := m.RemoveVMFromAntiAffinityGroup(ctx, backend.Ref{Name: "web1"}, backend.Ref{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.DeleteAntiAffinityGroup(ctx, backend.Ref{Name: "web"}); err != nil {
		t.Fatalf("delete the empty group: %v", err)
	}
	if _, err := m.AntiAffinityGroup(ctx, backend.Ref{Name: "web"}); backend.KindOf(err) != backend.KindNotFound {
		t.Fatalf("show the deleted group = %v; want NotFound", err)
	}
}

// Operators manage the groups of their pools and see no others; Viewers
// read them and change nothing.
func TestAntiAffinityPermissions(t *testing.T) {
	c := antiAffinityFleet(t, "web1")
	ctx := c.Admin()
	m := c.Manager
	if _, err := m.CreateServerPool(ctx, "pool2", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := m.CreateAntiAffinityGroup(ctx, "other", "", backend.Ref{Name: "pool2"}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct{ name, role string }{{"op", backend.RoleOperator}, {"viewer", backend.RoleViewer}} {
		if _, err := m.CreateUser(ctx, u.name, "a long password", u.role); err != nil {
			t.Fatal(err)
		}
		if _, err := m.AddUserToPool(ctx, backend.Ref{Name: u.name}, backend.Ref{Name: managertest.Pool}); err != nil {
			t.Fatal(err)
		}
	}
	op := backend.WithActor(t.Context(), backend.Actor{User: "op", Role: backend.RoleOperator})
	viewer := backend.WithActor(t.Context(), backend.Actor{User: "viewer", Role: backend.RoleViewer})

	if _, err := m.CreateAntiAffinityGroup(op, "db", "", backend.Ref{Name: managertest.Pool}); err != nil {
		t.Fatalf("an Operator creates a group of their pool: %v", err)
	}
	createVM(t, c, "db1", 512)
	if _, err := m.AddVMToAntiAffinityGroup(op, backend.Ref{Name: "db1"}, backend.Ref{Name: "db"}); err != nil {
		t.Fatalf("an Operator adds a VM of their pool: %v", err)
	}
	if _, err := m.AntiAffinityGroup(op, backend.Ref{Name: "other"}); backend.KindOf(err) != backend.KindNotFound {
		t.Fatalf("an Operator shows a group of a pool not theirs = %v; want NotFound", err)
	}
	if _, err := m.CreateAntiAffinityGroup(op, "x", "", backend.Ref{Name: "pool2"}); backend.KindOf(err) != backend.KindNotFound {
		t.Fatalf("an Operator creates a group in a pool not theirs = %v; want NotFound", err)
	}
	groups, err := m.AntiAffinityGroups(op, backend.Filter{})
	if err != nil || len(groups) != 2 || groups[0].Name != "db" || groups[1].Name != "web" {
		t.Fatalf("an Operator's list = %v, %v; want db and web", groups, err)
	}
	if names := m.ObjectNames(op, "AntiAffinityGroup", "", 10, nil); !slices.Equal(names, []string{"db", "web"}) {
		t.Fatalf("an Operator's completion of groups = %q; want db, web", names)
	}
	if names := m.ObjectNames(ctx, "AntiAffinityGroup", "o", 10, nil); !slices.Equal(names, []string{"other"}) {
		t.Fatalf("an Administrator's completion of o = %q; want other", names)
	}

	if _, err := m.AntiAffinityGroup(viewer, backend.Ref{Name: "web"}); err != nil {
		t.Fatalf("a Viewer shows a group: %v", err)
	}
	for what, err := range map[string]error{
		"create": func() error {
			_, err := m.CreateAntiAffinityGroup(viewer, "v", "", backend.Ref{Name: managertest.Pool})
			return err
		}(),
		"add": func() error {
			_, err := m.AddVMToAntiAffinityGroup(viewer, backend.Ref{Name: "filler2"}, backend.Ref{Name: "web"})
			return err
		}(),
		"remove": func() error {
			_, err := m.RemoveVMFromAntiAffinityGroup(viewer, backend.Ref{Name: "web1"}, backend.Ref{Name: "web"})
			return err
		}(),
		"delete": func() error { _, err := m.DeleteAntiAffinityGroup(viewer, backend.Ref{Name: "db"}); return err }(),
		"rename": func() error {
			_, err := m.EditNamed(viewer, backend.RenameAntiAffinityGroup, backend.Ref{Name: "db"}, new("db2"), nil)
			return err
		}(),
	} {
		if backend.KindOf(err) != backend.KindPermission {
			t.Errorf("a Viewer's %s = %v; want Permission", what, err)
		}
	}
	if _, err := m.EditNamed(op, backend.RenameAntiAffinityGroup, backend.Ref{Name: "db"}, new("db2"), new("the databases")); err != nil {
		t.Fatalf("an Operator renames a group of their pool: %v", err)
	}
	if g, err := m.AntiAffinityGroup(op, backend.Ref{Name: "db2"}); err != nil || g.Description != "the databases" || len(g.Members) != 1 {
		t.Fatalf("the renamed group = %+v, %v", g, err)
	}
}
