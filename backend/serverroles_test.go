package backend_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
)

// Server roles are enforced: a utility-only server gets no VM from
// placement nor from migrate's destServer, the repository work goes to it,
// and the VM server role is not taken from a server that runs VMs.
func TestServerRolesAreEnforced(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 2, MemoryMiB: 8192, CPUs: 4})
	ctx := c.Admin()
	m := c.Manager
	utility := "utility"
	if _, err := m.EditServer(ctx, backend.Ref{Name: "ovs2"}, backend.EditServerRequest{Roles: &utility}); err != nil {
		t.Fatalf("edit Server ovs2 roles=utility: %v", err)
	}

	// Placement: the second VM would go to ovs2 (the most free memory) if
	// roles did not count.
	for _, name := range []string{"vm1", "vm2"} {
		if _, err := m.CreateVM(ctx, backend.CreateVMRequest{Name: name, Repository: backend.Ref{Name: managertest.Repo},
			MemoryMiB: 1024, CPUCount: 1}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		v, err := m.StartVM(ctx, backend.Ref{Name: name})
		if err != nil || v.Server.Name != "ovs1" {
			t.Fatalf("start %s: on %q, %v; want it on ovs1, the only server with the VM server role", name, v.Server.Name, err)
		}
	}
	// Placement with no VM server left says why ovs2 was left out; the
	// evacuation of ovs1 too, and ovs1 is in maintenance mode all the same.
	maintenance := true
	e, err := m.EditServer(ctx, backend.Ref{Name: "ovs1"}, backend.EditServerRequest{Maintenance: &maintenance})
	if want := "Server ovs1 is in maintenance mode, but 2 of 2 VMs could not be migrated off it: Vm vm1: ServerPool pool1 has no server that can take Vm vm1: ovs2 has not the VM server role (roles: utility)"; !strings.Contains(backend.Message(err), want) ||
		!e.Server.Maintenance || e.Evacuation == nil || len(e.Evacuation.Stayed()) != 2 {
		t.Fatalf("maintenance mode on ovs1 with no other VM server = %+v, %v; want it on, and %q", e, err, want)
	}
	if _, err := m.CreateVM(ctx, backend.CreateVMRequest{Name: "vm3", Repository: backend.Ref{Name: managertest.Repo},
		MemoryMiB: 1024, CPUCount: 1}); err != nil {
		t.Fatal(err)
	}
	_, err = m.StartVM(ctx, backend.Ref{Name: "vm3"})
	if want := "ServerPool pool1 has no server that can take Vm vm3: ovs1 is in maintenance mode; ovs2 has not the VM server role (roles: utility)"; backend.KindOf(err) != backend.KindInvalidState || !strings.Contains(backend.Message(err), want) {
		t.Fatalf("start vm3 with ovs1 in maintenance = %v; want %q", err, want)
	}
	maintenance = false
	if _, err := m.EditServer(ctx, backend.Ref{Name: "ovs1"}, backend.EditServerRequest{Maintenance: &maintenance}); err != nil {
		t.Fatal(err)
	}

	// migrate to the utility server: refused, saying how to give the role.
	_, _, err = m.MigrateVM(ctx, backend.Ref{Name: "vm1"}, backend.Ref{Name: "ovs2"})
	if want := "server ovs2 has not the VM server role (roles: utility); give it with edit Server name=ovs2 roles=xen,utility"; backend.KindOf(err) != backend.KindInvalidState || !strings.Contains(backend.Message(err), want) {
		t.Fatalf("migrate vm1 destServer=ovs2 = %v; want %q", err, want)
	}
	if v, err := m.VM(ctx, backend.Ref{Name: "vm1"}); err != nil || v.Server.Name != "ovs1" || v.Status != backend.VMRunning {
		t.Fatalf("vm1 after the refused migrate: on %q (%s), %v; want Running on ovs1", v.Server.Name, v.Status, err)
	}

	// Repository work goes to the utility server (ovs1, first by name,
	// keeps only the VM server role): a failed download names the server
	// it was tried through.
	xen := "xen"
	if _, err := m.EditServer(ctx, backend.Ref{Name: "ovs1"}, backend.EditServerRequest{Roles: &xen}); err != nil {
		t.Fatalf("edit Server ovs1 roles=xen with VMs running: %v", err)
	}
	web := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(web.Close)
	if _, err := m.EditManager(ctx, backend.EditManagerRequest{ImportAllowedNetworks: new("127.0.0.0/8")}); err != nil {
		t.Fatal(err)
	}
	_, err = m.ImportISO(ctx, backend.Ref{Name: managertest.Repo}, web.URL+"/missing.iso", "iso1", "")
	if err == nil || !strings.Contains(backend.Message(err), "server ovs2") {
		t.Fatalf("importIso of a missing file = %v; want the failure of server ovs2, the utility server", err)
	}
	// With no utility server running, repository work is refused, naming
	// the role.
	if _, err := m.EditServer(ctx, backend.Ref{Name: "ovs2"}, backend.EditServerRequest{Roles: &xen}); err != nil {
		t.Fatalf("edit Server ovs2 roles=xen: %v", err)
	}
	_, err = m.ImportISO(ctx, backend.Ref{Name: managertest.Repo}, web.URL+"/missing.iso", "iso2", "")
	if want := "ServerPool pool1 has no running server with the utility role for repository work: server ovs1 has not the utility role (roles: xen); give it with edit Server name=ovs1 roles=xen,utility"; backend.KindOf(err) != backend.KindInvalidState || !strings.Contains(backend.Message(err), want) {
		t.Fatalf("importIso with no utility server = %v; want %q", err, want)
	}

	// The VM server role stays on a server that runs VMs.
	_, err = m.EditServer(ctx, backend.Ref{Name: "ovs1"}, backend.EditServerRequest{Roles: &utility})
	if want := "Server ovs1 runs 2 VMs; migrate or stop them before taking its VM server role (xen) away"; backend.KindOf(err) != backend.KindConflict || backend.Message(err) != want {
		t.Fatalf("edit Server ovs1 roles=utility with VMs running = %v; want %q", err, want)
	}
	if s, err := m.Server(ctx, backend.Ref{Name: "ovs1"}); err != nil || s.Roles != "xen" {
		t.Fatalf("ovs1 roles after the refused edit = %q, %v; want xen", s.Roles, err)
	}
	// Roles are recorded canonical, whatever their case and order.
	mixed := " Utility , XEN "
	e, err = m.EditServer(ctx, backend.Ref{Name: "ovs2"}, backend.EditServerRequest{Roles: &mixed})
	if err != nil || e.Server.Roles != "xen,utility" {
		t.Fatalf("edit Server ovs2 roles=%q = %q, %v; want xen,utility", mixed, e.Server.Roles, err)
	}
}
