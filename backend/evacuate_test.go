package backend_test

import (
	"context"
	"strings"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
)

// Entering maintenance mode live-migrates the server's running VMs to the
// other servers of the pool, one migrate job each and, with
// evacuationParallelism=1, one after the other; a paused VM stays and the
// edit fails naming it, with the server in maintenance mode all the same;
// leaving maintenance mode moves nothing back.
func TestMaintenanceModeEvacuates(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 3, MemoryMiB: 8192, CPUs: 4})
	ctx := c.Admin()
	m := c.Manager
	if info, err := m.EditManager(ctx, backend.EditManagerRequest{EvacuationParallelism: new(int64(1))}); err != nil || info.Settings.EvacuationParallelism != 1 {
		t.Fatalf("edit Manager evacuationParallelism=1: %+v, %v", info.Settings, err)
	}
	if _, err := m.EditManager(ctx, backend.EditManagerRequest{EvacuationParallelism: new(int64(0))}); backend.KindOf(err) != backend.KindInvalidArgument ||
		!strings.Contains(backend.Message(err), "evacuationParallelism 0 is out of range: use 1 to 64") {
		t.Fatalf("evacuationParallelism=0: %v", err)
	}
	// Start four VMs on ovs1: the others are in maintenance mode meanwhile
	// (with nothing on them to move).
	maintenance := func(server string, on bool) (backend.ServerEdit, error) {
		return m.EditServer(ctx, backend.Ref{Name: server}, backend.EditServerRequest{Maintenance: &on})
	}
	for _, s := range []string{"ovs2", "ovs3"} {
		if e, err := maintenance(s, true); err != nil || e.Evacuation == nil || len(e.Evacuation.Moves) != 0 {
			t.Fatalf("maintenance mode on empty %s: %+v, %v", s, e, err)
		}
	}
	names := []string{"v1", "v2", "v3", "v4"}
	for _, name := range names {
		if _, err := m.CreateVM(ctx, backend.CreateVMRequest{Name: name, Repository: backend.Ref{Name: managertest.Repo}, MemoryMiB: 512, CPUCount: 1}); err != nil {
			t.Fatal(err)
		}
		if v, err := m.StartVM(ctx, backend.Ref{Name: name}); err != nil || v.Server.Name != "ovs1" {
			t.Fatalf("start %s: on %q, %v", name, v.Server.Name, err)
		}
	}
	if _, err := m.PauseVM(ctx, backend.Ref{Name: "v4"}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"ovs2", "ovs3"} {
		if _, err := maintenance(s, false); err != nil {
			t.Fatal(err)
		}
	}

	e, err := maintenance("ovs1", true)
	if want := "Server ovs1 is in maintenance mode, but 1 of 4 VMs could not be migrated off it: Vm v4: Vm v4 is Paused and evacuation migrates running VMs"; backend.KindOf(err) != backend.KindInvalidState || !strings.Contains(backend.Message(err), want) {
		t.Fatalf("maintenance mode on ovs1 = %v; want %q", err, want)
	}
	if !e.Server.Maintenance || e.Evacuation == nil || len(e.Evacuation.Moved()) != 3 || len(e.Evacuation.Stayed()) != 1 {
		t.Fatalf("maintenance mode on ovs1: %+v", e)
	}
	// Every agent's own list: nothing running is left on ovs1, and both
	// other servers took some.
	where := domainsByServer(t, c)
	if got := strings.Join(where["ovs1"], ","); got != "v4" {
		t.Fatalf("domains left on ovs1: %q, want only the paused v4", got)
	}
	if len(where["ovs2"]) == 0 || len(where["ovs3"]) == 0 || len(where["ovs2"])+len(where["ovs3"]) != 3 {
		t.Fatalf("domains after the evacuation: %v; want v1-v3 spread over ovs2 and ovs3", where)
	}
	for _, mv := range e.Evacuation.Moved() {
		v, err := m.VM(ctx, backend.Ref{ID: mv.VM.ID})
		if err != nil || v.Server.Name != mv.To.Name || v.Status != backend.VMRunning || mv.JobID == "" {
			t.Fatalf("%s moved to %s by job %q, recorded on %s (%s), %v", mv.VM.Name, mv.To.Name, mv.JobID, v.Server.Name, v.Status, err)
		}
	}
	// One migrate job per VM, one after the other.
	var prev backend.Job
	for i, mv := range e.Evacuation.Moved() {
		j, err := m.Job(ctx, mv.JobID)
		if err != nil || j.Status != backend.JobSuccess || j.Summary != "migrate Vm "+mv.VM.Name {
			t.Fatalf("migrate job of %s: %+v, %v", mv.VM.Name, j, err)
		}
		if i > 0 && j.CreatedAt.Before(prev.EndedAt) {
			t.Fatalf("with evacuationParallelism=1, %q began at %v before %q ended at %v", j.Summary, j.CreatedAt, prev.Summary, prev.EndedAt)
		}
		prev = j
	}
	// The edit job sums it up: what left, what stayed.
	jobs, err := m.Jobs(ctx, 20)
	if err != nil {
		t.Fatal(err)
	}
	var edit backend.Job
	for _, j := range jobs {
		if j.Summary == "edit Server ovs1" && edit.ID == "" {
			edit = j // the newest
		}
	}
	if edit.Status != backend.JobFailure || !strings.Contains(edit.Result, "in maintenance mode; 3 of 4 VMs left ovs1 (v1 to ovs") ||
		!strings.Contains(edit.Result, "; stayed: v4") || !strings.Contains(edit.Error, "Vm v4 is Paused") {
		t.Fatalf("the edit job: %+v", edit)
	}
	if s, err := m.Server(ctx, backend.Ref{Name: "ovs1"}); err != nil || !s.Maintenance {
		t.Fatalf("ovs1 after an evacuation that left a VM: maintenance %v, %v", s.Maintenance, err)
	}

	// Leaving maintenance mode moves nothing back.
	if e, err := maintenance("ovs1", false); err != nil || e.Evacuation != nil || e.Server.Maintenance {
		t.Fatalf("leaving maintenance mode: %+v, %v", e, err)
	}
	if again := domainsByServer(t, c); strings.Join(again["ovs1"], ",") != "v4" {
		t.Fatalf("after leaving maintenance mode the domains are %v, were %v", again, where)
	}
}

// domainsByServer returns the VM names each agent itself lists, by server.
func domainsByServer(t *testing.T, c *managertest.Core) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for i, a := range c.Agents {
		doms, err := c.AgentClient(i).ListVMs(context.Background())
		if err != nil {
			t.Fatalf("list_vms on %s: %v", a.Hostname, err)
		}
		for _, d := range doms {
			v, err := c.Manager.VM(c.Admin(), backend.Ref{ID: d.UUID})
			if err != nil {
				t.Fatalf("domain %s on %s is no VM of the manager: %v", d.UUID, a.Hostname, err)
			}
			out[a.Hostname] = append(out[a.Hostname], v.Name)
		}
	}
	return out
}
