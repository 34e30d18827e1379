package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"xenmanager/backend/agentclient"
)

// These tests run the manager and its agents as processes of their own, as
// in production, so that a server dies as a machine does: kill -9 of its
// agent.

// fleetAgent is an agent process of a fleet.
type fleetAgent struct {
	hostname, address, password, data string
	port                              string
	proc                              *agentProcess
}

// fleet is a manager process with agent processes in pool pool1, with
// repository repo1.
type fleet struct {
	t      *testing.T
	m      *manager
	agents map[string]*fleetAgent
	dir    string
}

// agentSpec is one agent of a fleet: its hostname, the address the manager
// discovers it at (127.0.0.1 or localhost: both reach it, and the pool's
// member lists tell them apart) and its memory.
type agentSpec struct {
	hostname, address string
	memoryMiB         int
}

// startFleet starts the agents, in order, and a manager whose heartbeat
// runs every second, and sets up pool1 with them (the first added, the
// master) and repo1.
func startFleet(t *testing.T, specs ...agentSpec) *fleet {
	t.Helper()
	needTools(t)
	f := &fleet{t: t, agents: map[string]*fleetAgent{}, dir: t.TempDir()}
	var script strings.Builder
	for _, s := range specs {
		a := &fleetAgent{hostname: s.hostname, address: s.address, password: s.hostname + "-secret",
			data: filepath.Join(f.dir, s.hostname)}
		f.agents[s.hostname] = a
		a.start(t, s.memoryMiB)
		fmt.Fprintf(&script, "discoverServer ipAddress=%s port=%s password=%s\n", a.address, a.port, a.password)
	}
	data := filepath.Join(f.dir, "data")
	f.m = startManagerWith(t, data, nil, "--listen", "127.0.0.1:0", "--data", data, "--heartbeat-interval", "1s")
	script.WriteString("create ServerPool name=pool1\n")
	for _, s := range specs {
		fmt.Fprintf(&script, "add Server name=%s to ServerPool name=pool1\n", s.hostname)
	}
	fmt.Fprintf(&script, "create Repository name=repo1 fsLocation=%s on ServerPool name=pool1\n", filepath.Join(f.dir, "repo"))
	f.must(script.String())
	return f
}

// start runs the agent over its data directory (again, after a kill: the
// same server, rebooted).
func (a *fleetAgent) start(t *testing.T, memoryMiB int) {
	t.Helper()
	a.proc = startAgentProcess(t, a.data, a.password, "--hostname", a.hostname,
		"--memory-mib", strconv.Itoa(memoryMiB), "--cpus", "4")
	a.port = a.proc.port
}

// kill kills the agent's process as a dead machine stops: SIGKILL, no
// goodbye.
func (a *fleetAgent) kill(t *testing.T) {
	t.Helper()
	if err := a.proc.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill -9 agent %s: %v", a.hostname, err)
	}
	<-a.proc.waited
}

// client is a client of the agent of its own, for what the test asks an
// agent directly (its domains, its pool).
func (a *fleetAgent) client(t *testing.T) *agentclient.Client {
	t.Helper()
	port, _ := strconv.Atoi(a.port)
	c, err := agentclient.New(agentclient.Config{Address: "127.0.0.1", Port: port, Password: a.password})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// domains are the VM ids of the domains the agent itself lists.
func (a *fleetAgent) domains(t *testing.T) []string {
	t.Helper()
	doms, err := a.client(t).ListVMs(context.Background())
	if err != nil {
		t.Fatalf("list_vms on %s: %v", a.hostname, err)
	}
	var ids []string
	for _, d := range doms {
		ids = append(ids, d.UUID)
	}
	slices.Sort(ids)
	return ids
}

// run runs commands as one exec request.
func (f *fleet) run(commands string) (string, int) {
	f.t.Helper()
	return f.m.ssh("", false, commands)
}

// must runs a script that must succeed.
func (f *fleet) must(script string) string {
	f.t.Helper()
	out, status := f.m.ssh(script, false)
	if status != 0 {
		f.t.Fatalf("exit %d:\n%s", status, out)
	}
	return out
}

// events are the events in the Json mode, whose rows carry each event's
// description.
func (f *fleet) events() string {
	f.t.Helper()
	return f.must("set outputMode=Json; getEvents")
}

// vmID is the id of the VM called name.
func (f *fleet) vmID(name string) string {
	f.t.Helper()
	return field(f.must("show Vm name="+name), "Id")
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline: what it waits for depends on heartbeats, whose timing a busy
// machine stretches.
func (f *fleet) waitFor(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: not within 90 s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Entering maintenance mode evacuates a server: three running VMs move to
// the two other servers (each agent's own domain list says so), one migrate
// job each; a VM that no server has room for stays, the edit fails naming
// it and why, and the server is in maintenance mode all the same; leaving
// maintenance mode moves nothing back.
func TestOpenSSHMaintenanceModeEvacuates(t *testing.T) {
	f := startFleet(t, agentSpec{"ovs1", "127.0.0.1", 16384}, agentSpec{"ovs2", "127.0.0.1", 4096}, agentSpec{"ovs3", "127.0.0.1", 4096})
	ovs1, ovs2, ovs3 := f.agents["ovs1"], f.agents["ovs2"], f.agents["ovs3"]
	var script strings.Builder
	for _, name := range []string{"w1", "w2", "w3"} {
		fmt.Fprintf(&script, "create Vm name=%s repository=repo1 memory=1024\nedit Vm name=%s preferredServers=ovs1\nstart Vm name=%s\n", name, name, name)
	}
	f.must(script.String())
	ids := []string{f.vmID("w1"), f.vmID("w2"), f.vmID("w3")}
	slices.Sort(ids)
	if got := ovs1.domains(t); !slices.Equal(got, ids) {
		t.Fatalf("ovs1 runs %v before the evacuation, want %v", got, ids)
	}

	out := f.must("edit Server name=ovs1 maintenanceMode=Yes")
	if field(out, "Maintenance Mode") != "Yes" || !strings.Contains(out, "Evacuated Vm 3 = ") || strings.Contains(out, "Stayed Vm") {
		t.Fatalf("edit Server maintenanceMode=Yes:\n%s", out)
	}
	on2, on3 := ovs2.domains(t), ovs3.domains(t)
	if got := ovs1.domains(t); len(got) != 0 || len(on2) == 0 || len(on3) == 0 || !slices.Equal(slices.Sorted(slices.Values(append(on2, on3...))), ids) {
		t.Fatalf("after the evacuation ovs1 runs %v, ovs2 %v, ovs3 %v; want all of %v on ovs2 and ovs3", got, on2, on3, ids)
	}
	jobs := f.must("list Job")
	for _, name := range []string{"w1", "w2", "w3"} {
		if !strings.Contains(jobs, "name:migrate Vm "+name) {
			t.Fatalf("no migrate job for %s:\n%s", name, jobs)
		}
		if srv := field(f.must("show Vm name="+name), "Server"); strings.HasSuffix(srv, "[ovs1]") {
			t.Fatalf("%s recorded on %s after the evacuation", name, srv)
		}
	}

	// Leaving maintenance mode moves nothing back; big fits only on ovs1.
	f.must("edit Server name=ovs1 maintenanceMode=No\ncreate Vm name=big repository=repo1 memory=8192\nedit Vm name=big preferredServers=ovs1\nstart Vm name=big")
	if got := ovs1.domains(t); !slices.Equal(got, []string{f.vmID("big")}) {
		t.Fatalf("ovs1 runs %v after leaving maintenance mode and starting big, want big alone", got)
	}
	out, status := f.run("edit Server name=ovs1 maintenanceMode=Yes")
	want := "Error Msg: XM_0507E: Server ovs1 is in maintenance mode, but 1 of 1 VMs could not be migrated off it: Vm big: no server of ServerPool pool1 can run Vm big (8192 MiB, 1 vCPUs): the most free memory is"
	if status != 1 || !strings.Contains(out, want) || !strings.HasPrefix(field(out, "Stayed Vm 1"), "big: no server of ServerPool pool1 can run Vm big") {
		t.Fatalf("evacuating big: exit %d, want 1 and %q\n%s", status, want, out)
	}
	if got := field(f.must("show Server name=ovs1"), "Maintenance Mode"); got != "Yes" {
		t.Fatalf("ovs1 after a failed evacuation: Maintenance Mode = %s, want Yes", got)
	}
	if got := ovs1.domains(t); !slices.Equal(got, []string{f.vmID("big")}) {
		t.Fatalf("ovs1 runs %v after big could not leave, want big", got)
	}
	if events := f.events(); !strings.Contains(events, "job migrate Vm big failed: no server of ServerPool pool1 can run Vm big") {
		t.Fatalf("no event for big's migrate job:\n%s", events)
	}
}

// A dead server (its agent killed with SIGKILL) is recovered from by hand:
// the pool master moves off it by itself; its VMs are recorded stopped on
// the operator's word (stop Vm force=Yes, here selecting them by their
// server; on a live server it is kill);
// it is removed from its pool (the other members' migration lists follow)
// and deleted without its agent; and when the machine comes back, still
// believing it is the pool's master, it is discovered and added to the
// pool again.
func TestOpenSSHDeadServerRecovery(t *testing.T) {
	f := startFleet(t, agentSpec{"ovs1", "localhost", 8192}, agentSpec{"ovs2", "127.0.0.1", 8192}, agentSpec{"ovs3", "127.0.0.1", 8192})
	ovs1, ovs2 := f.agents["ovs1"], f.agents["ovs2"]
	f.must(`create Vm name=d1 repository=repo1 memory=512
edit Vm name=d1 preferredServers=ovs1
start Vm name=d1
create Vm name=d2 repository=repo1 memory=512
edit Vm name=d2 preferredServers=ovs1
start Vm name=d2
create Vm name=d3 repository=repo1 memory=512
edit Vm name=d3 preferredServers=ovs2
start Vm name=d3
`)
	if master := field(f.must("show ServerPool name=pool1"), "Master Server"); !strings.HasSuffix(master, "[ovs1]") {
		t.Fatalf("pool1's master is %q, want ovs1, the first added", master)
	}
	if members := poolMembers(t, ovs2); !slices.Contains(members, "localhost") {
		t.Fatalf("ovs2's pool members %v lack ovs1's address", members)
	}

	ovs1.kill(t)
	f.waitFor("ovs1 Unreachable", func() bool { return field(f.must("show Server name=ovs1"), "Status") == "Unreachable" })
	f.waitFor("pool1's master off ovs1", func() bool {
		return !strings.HasSuffix(field(f.must("show ServerPool name=pool1"), "Master Server"), "[ovs1]")
	})
	newMaster := field(f.must("show ServerPool name=pool1"), "Master Server")
	if !strings.HasSuffix(newMaster, "[ovs2]") && !strings.HasSuffix(newMaster, "[ovs3]") {
		t.Fatalf("pool1's master after ovs1 died: %q", newMaster)
	}
	newName := newMaster[strings.LastIndex(newMaster, "[")+1 : len(newMaster)-1]
	if events := f.events(); !strings.Contains(events, "the master of ServerPool pool1 moved from ovs1 (it is Unreachable) to "+newName) {
		t.Fatalf("no event naming the old and the new master:\n%s", events)
	}

	// Neither a plain stop nor removing the server while it holds VMs.
	if out, status := f.run("stop Vm name=d1"); status == 0 || !strings.Contains(out, "its server ovs1 is unreachable") || !strings.Contains(out, "force=Yes") {
		t.Fatalf("stop Vm of a dead server's VM: exit %d\n%s", status, out)
	}
	out, status := f.run("remove Server name=ovs1 force=Yes from ServerPool name=pool1")
	if want := "Server ovs1 is Unreachable but 2 VMs are still recorded on it (d1, d2)"; status == 0 || !strings.Contains(out, want) {
		t.Fatalf("remove a dead server with VMs: exit %d, want %q\n%s", status, want, out)
	}
	if out, status := f.run("delete Server name=ovs1 force=Yes"); status == 0 || !strings.Contains(out, "remove Server id=") {
		t.Fatalf("delete a dead server still in its pool: exit %d\n%s", status, out)
	}

	// stop force=Yes: on the dead server, recorded without its agent, an
	// event naming who said so; on a live server, kill.
	out = f.must("stop Vm server=ovs1 multiple=Yes force=Yes")
	if !strings.Contains(out, "name:d1  result:Success") || !strings.Contains(out, "name:d2  result:Success") || strings.Contains(out, "name:d3") {
		t.Fatalf("stop Vm server=ovs1 multiple=Yes force=Yes:\n%s", out)
	}
	for _, name := range []string{"d1", "d2"} {
		if st := field(f.must("show Vm name="+name), "Status"); st != "Stopped" {
			t.Fatalf("%s after stop force=Yes: %s", name, st)
		}
	}
	if events := f.events(); !strings.Contains(events, "Vm d1 recorded Stopped without reaching its server ovs1 (Unreachable): user admin stated that the server is off") {
		t.Fatalf("no event naming who stated the server is off:\n%s", events)
	}
	d3 := f.vmID("d3")
	if got := ovs2.domains(t); !slices.Contains(got, d3) {
		t.Fatalf("ovs2 runs %v, want d3 %s among them", got, d3)
	}
	f.must("stop Vm name=d3 force=Yes")
	if got := ovs2.domains(t); slices.Contains(got, d3) {
		t.Fatalf("d3 still runs on ovs2 after stop force=Yes: %v", got)
	}

	// Remove and delete it without its agent; the other members' lists
	// of who may send them migrations lose its address.
	out = f.must("remove Server name=ovs1 force=Yes from ServerPool name=pool1\nshow Server name=ovs1")
	if pool := field(out, "Server Pool"); pool != "" {
		t.Fatalf("ovs1 after remove force=Yes is in %q", pool)
	}
	for _, name := range []string{"ovs2", "ovs3"} {
		if members := poolMembers(t, f.agents[name]); slices.Contains(members, "localhost") {
			t.Fatalf("%s's pool members %v still name the removed ovs1", name, members)
		}
	}
	f.must("delete Server name=ovs1 force=Yes")
	if out := f.must("list Server"); strings.Contains(out, "name:ovs1") {
		t.Fatalf("ovs1 listed after delete force=Yes:\n%s", out)
	}

	// The machine comes back (its agent restarted on its data: a rebooted
	// host) still believing it is pool1's master; it is discovered and added
	// again, as a member, and runs VMs.
	ovs1.start(t, 8192)
	if info, err := ovs1.client(t).DiscoverServerPool(context.Background()); err != nil || info.Alias != "pool1" || info.Master != "ovs1" {
		t.Fatalf("the restarted ovs1 believes it is in pool %+v (%v); want pool1's master", info, err)
	}
	f.must(fmt.Sprintf("discoverServer ipAddress=localhost port=%s password=%s\nadd Server name=ovs1 to ServerPool name=pool1\nedit Vm name=d1 preferredServers=ovs1\nstart Vm name=d1",
		ovs1.port, ovs1.password))
	if got := ovs1.domains(t); !slices.Equal(got, []string{f.vmID("d1")}) {
		t.Fatalf("the rediscovered ovs1 runs %v, want d1", got)
	}
	if info, err := ovs1.client(t).DiscoverServerPool(context.Background()); err != nil || info.Alias != "pool1" || info.Master != "" {
		t.Fatalf("the rediscovered ovs1 is in pool %+v (%v); want a member of pool1", info, err)
	}
}

// poolMembers are the addresses the agent accepts migrations from.
func poolMembers(t *testing.T, a *fleetAgent) []string {
	t.Helper()
	info, err := a.client(t).DiscoverServerPool(context.Background())
	if err != nil {
		t.Fatalf("discover_server_pool on %s: %v", a.hostname, err)
	}
	return info.Members
}
