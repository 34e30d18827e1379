package shell

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"xenmanager/backend/agentapi"
)

// failCode runs a command that must fail with code and a message holding
// each of msgs.
func (e *env) failCode(command, code string, msgs ...string) string {
	e.t.Helper()
	out, status := e.run(command)
	if status == 0 || !strings.Contains(out, "Error Msg: "+code+": ") {
		e.t.Fatalf("%q: exit %d, want %s\n%s", command, status, code, out)
	}
	for _, m := range msgs {
		if !strings.Contains(out, m) {
			e.t.Fatalf("%q: message lacks %q\n%s", command, m, out)
		}
	}
	return out
}

// domainOf finds the VM's domain on the agents: which agent (index) and its
// state; -1 when no agent has it.
func (e *env) domainOf(vmID string) (int, string) {
	e.t.Helper()
	where, state := -1, ""
	for i := range e.agents {
		domains, err := e.agentClient(i).ListVMs(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		for _, d := range domains {
			if d.UUID == vmID {
				if where >= 0 {
					e.t.Fatalf("VM %s has a domain on agents %d and %d", vmID, where, i)
				}
				where, state = i, d.State
			}
		}
	}
	return where, state
}

func TestPoolRolesOnAgents(t *testing.T) {
	e := newEnv(t, 2, 8192)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	out := e.mustRun("show ServerPool name=pool1")
	if !strings.HasSuffix(prop(out, "Master Server"), "[ovs1]") {
		t.Fatalf("master:\n%s", out)
	}
	if roles := prop(e.mustRun("show Server name=ovs1"), "Roles"); !strings.Contains(roles, "Server Pool Master") {
		t.Fatalf("ovs1 roles = %q", roles)
	}
	if roles := prop(e.mustRun("show Server name=ovs2"), "Roles"); strings.Contains(roles, "Master") || !strings.Contains(roles, "VM Server") {
		t.Fatalf("ovs2 roles = %q", roles)
	}
	poolID := prop(out, "Id")
	for i := range e.agents {
		info, err := e.agentClient(i).DiscoverServerPool(context.Background())
		// Both test agents listen on 127.0.0.1: the member list is that address.
		if err != nil || info.PoolUUID != poolID || len(info.Members) == 0 || info.Members[0] != "127.0.0.1" {
			t.Fatalf("agent %d discover_server_pool = %+v, %v", i+1, info, err)
		}
	}
	e.mustRun("edit Server name=ovs2 roles=xen")
	if roles := prop(e.mustRun("show Server name=ovs2"), "Roles"); roles != "VM Server" {
		t.Fatalf("ovs2 roles after edit = %q", roles)
	}

	// A pool with servers cannot be deleted; leaving is refused while VMs
	// run there; after leaving, the agent is in no pool.
	e.failCode("delete ServerPool name=pool1", "XM_0409E", "in use by 2 servers", "ovs1, ovs2")
	e.mustRun("create Vm name=v1 repository=repo1 memory=512; edit Vm name=v1 preferredServers=ovs2; start Vm name=v1")
	e.failCode("remove Server name=ovs2 from ServerPool name=pool1", "XM_0412E", "runs 1 VMs (v1)")
	e.failCode("restart Server name=ovs2", "XM_0412E", "runs 1 VMs (v1)")
	e.mustRun("stop Vm name=v1")
	e.mustRun("remove Server name=ovs2 from ServerPool name=pool1")
	info, err := e.agentClient(1).DiscoverServerPool(context.Background())
	if err != nil || info.PoolUUID != "" {
		t.Fatalf("after leaving: %+v, %v", info, err)
	}
	e.failCode("delete Repository name=repo1", "XM_0409E", "in use by 1 VMs (v1)")
	e.failCode("delete Server name=ovs1", "XM_0409E", "in use by ServerPool pool1")
	e.mustRun("delete Server name=ovs2")
	if out := e.mustRun("list Server"); strings.Contains(out, "ovs2") {
		t.Fatalf("ovs2 still listed:\n%s", out)
	}
}

func TestVMLifecycleAndStateTable(t *testing.T) {
	e := newEnv(t, 2, 8192)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	e.mustRun("create Vm name=web1 repository=repo1 memory=1024 cpuCount=2")
	id := prop(e.mustRun("show Vm name=web1"), "Id")
	status := func() string { return prop(e.mustRun("show Vm name=web1"), "Status") }

	e.failCode("pause Vm name=web1", "XM_0412E", "Vm web1 is Stopped; pause needs Running")
	e.failCode("resume Vm name=web1", "XM_0412E", "resume needs Suspended")
	e.mustRun("start Vm name=web1")
	if _, st := e.domainOf(id); st != agentapi.StateRunning {
		t.Fatalf("after start the agent says %q", st)
	}
	e.failCode("delete Vm name=web1", "XM_0412E", "Vm web1 is Running; delete needs Stopped")
	e.failCode("start Vm name=web1", "XM_0412E", "start needs Stopped")

	e.mustRun("pause Vm name=web1")
	if s := status(); s != "Paused" {
		t.Fatalf("after pause: %s", s)
	}
	if _, st := e.domainOf(id); st != agentapi.StatePaused {
		t.Fatalf("agent after pause: %q", st)
	}
	e.failCode("suspend Vm name=web1", "XM_0412E", "Vm web1 is Paused; suspend needs Running")
	e.mustRun("unpause Vm name=web1")
	e.mustRun("suspend Vm name=web1")
	if s := status(); s != "Suspended" {
		t.Fatalf("after suspend: %s", s)
	}
	e.mustRun("resume Vm name=web1")
	if where, st := e.domainOf(id); where < 0 || st != agentapi.StateRunning {
		t.Fatalf("after resume: agent %d state %q", where, st)
	}
	e.mustRun("restart Vm name=web1")
	if s := status(); s != "Running" {
		t.Fatalf("after restart: %s", s)
	}
	// Live edits within what it started with; others need Stopped.
	e.mustRun("edit Vm name=web1 cpuCount=1 memory=768 description='shrunk live'")
	e.failCode("edit Vm name=web1 memory=4096", "XM_0412E", "more memory needs Stopped")
	e.failCode("edit Vm name=web1 domainType=XEN_PVM", "XM_0412E", "changing domainType needs Stopped")
	e.mustRun("kill Vm name=web1")
	if where, _ := e.domainOf(id); where >= 0 || status() != "Stopped" {
		t.Fatalf("after kill the domain is on agent %d, status %s", where, status())
	}
	e.mustRun("edit Vm name=web1 memory=2048 cpuCount=2 cpuCountLimit=4 cpuPinning=0-1 highAvailability=Yes bootOrder=CDROM,DISK domainType=XEN_PVM")
	cfg, err := e.agentClient(0).GetVMConfig(context.Background(), prop(e.mustRun("show Repository name=repo1"), "Id"), id)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"memory": "2048", "maxvcpus": "4", "cpus": "0-1", "OVM_high_availability": "True", "boot": "dc", "OVM_domain_type": "xen_pvm", "OVM_description": "shrunk live"} {
		if got := fmt.Sprint(cfg[k]); got != want {
			t.Errorf("vm.cfg %s = %q, want %q", k, got, want)
		}
	}
	out := e.mustRun("show Vm name=web1")
	for k, want := range map[string]string{"Memory (MB)": "2048", "Max. Processors": "4", "CPU Pinning": "0-1", "High Availability": "Yes", "Domain Type": "XEN_PVM"} {
		if got := prop(out, k); got != want {
			t.Errorf("show Vm %s = %q, want %q", k, got, want)
		}
	}
	e.failCode("edit Vm name=web1 cpuPinning=abc", "XM_0400E", "not a CPU list")
	e.failCode("edit Vm name=web1 cpuCount=8", "XM_0400E", "above cpuCountLimit 4")
	e.failCode("edit Vm name=web1", "XM_0005E", "needs at least one of")
	e.mustRun("delete Vm name=web1")
}

func TestPlacementPolicies(t *testing.T) {
	e := newEnv(t, 2, 8192)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	e.mustRun("create Vm name=a repository=repo1 memory=512; create Vm name=b repository=repo1 memory=512")
	// Maintenance mode: nothing new is placed on ovs1.
	e.mustRun("edit Server name=ovs1 maintenanceMode=Yes")
	e.mustRun("start Vm name=a; start Vm name=b")
	for _, n := range []string{"a", "b"} {
		if srv := prop(e.mustRun("show Vm name="+n), "Server"); !strings.HasSuffix(srv, "[ovs2]") {
			t.Fatalf("Vm %s placed on %s while ovs1 is in maintenance", n, srv)
		}
	}
	e.mustRun("edit Server name=ovs1 maintenanceMode=No; stop Vm name=a")
	// Preferred servers win over free memory.
	e.mustRun("edit Vm name=a preferredServers=ovs2; start Vm name=a")
	if srv := prop(e.mustRun("show Vm name=a"), "Server"); !strings.HasSuffix(srv, "[ovs2]") {
		t.Fatalf("preferred ovs2, placed on %s", srv)
	}
	e.failCode("edit Vm name=a preferredServers=ovs9", "XM_0404E", `Server "ovs9" not found`)
	// CURRENT_SERVER keeps the VM on the server it ran on last, even when
	// another has more free memory.
	e.mustRun("stop Vm name=b; edit Vm name=b startPolicy=CURRENT_SERVER; start Vm name=b")
	if srv := prop(e.mustRun("show Vm name=b"), "Server"); !strings.HasSuffix(srv, "[ovs2]") {
		t.Fatalf("CURRENT_SERVER placed b on %s", srv)
	}
	// Restart of a server with no VMs: it goes away and comes back.
	out := e.mustRun("restart Server name=ovs1")
	if prop(out, "Status") != "Running" {
		t.Fatalf("after restart:\n%s", out)
	}
	if _, err := e.agentClient(0).Echo(context.Background(), "hi"); err != nil {
		t.Fatalf("agent after restart: %v", err)
	}
}

func TestJobsAsyncAbortAndEvents(t *testing.T) {
	e := newEnv(t, 1, 8192)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	e.mustRun("create Vm name=j1 repository=repo1 memory=256")
	out := e.mustRun("set commandMode=Asynchronous; start Vm name=j1")
	m := regexp.MustCompile(`Job Id = ([0-9a-f]{32})`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("asynchronous start gave no job id:\n%s", out)
	}
	out = e.mustRun("wait Job id=" + m[1])
	if prop(out, "Status") != "Success" || prop(out, "Progress (%)") != "100" {
		t.Fatalf("wait Job:\n%s", out)
	}
	if out := e.mustRun("list Job"); !strings.Contains(out, "name:start Vm j1") || !strings.Contains(out, "name:create Vm j1") {
		t.Fatalf("list Job:\n%s", out)
	}
	// A failed job becomes an event.
	e.failCode("start Vm name=j1", "XM_0412E")
	out = e.mustRun("getEvents")
	if !strings.Contains(out, "name:JobFailed") {
		t.Fatalf("getEvents after a failed job:\n%s", out)
	}
	evID := regexp.MustCompile(`id:([0-9a-f]{32})  name:JobFailed`).FindStringSubmatch(out)[1]
	e.mustRun("ackEvent id=" + evID)
	if out := e.mustRun("getEvents"); strings.Contains(out, evID) {
		t.Fatalf("acknowledged event still listed:\n%s", out)
	}
	if out := e.mustRun("getEvents all=Yes"); !strings.Contains(out, evID) {
		t.Fatalf("all=Yes lacks the acknowledged event:\n%s", out)
	}
	// Abort a job that waits for the host to come back.
	for i := range e.agents {
		if err := e.agentClient(i).Call(context.Background(), agentapi.MethodSimSet, nil,
			map[string]any{"latency_ms": map[string]any{agentapi.MethodStopVM: 300}}); err != nil {
			t.Fatal(err)
		}
	}
	out = e.mustRun("set commandMode=Asynchronous; stop Vm name=j1")
	id := regexp.MustCompile(`Job Id = ([0-9a-f]{32})`).FindStringSubmatch(out)[1]
	// The abort lands before the job's last check (it ends Aborted) or
	// after it, while stop_vm is in flight: then the job runs to its end
	// and abort fails saying so (TestAbortJobTooLate makes sure of that).
	out, status := e.run("abort Job id=" + id)
	switch st := prop(out, "Status"); {
	case status == 0 && st == "Aborted":
	case status != 0 && st == "Success" && strings.Contains(out, "Error Msg: XM_0409E: ") && strings.Contains(out, "was not aborted"):
	default:
		t.Fatalf("abort Job: exit %d\n%s", status, out)
	}
	// Whatever the job reached, the store and the agent agree.
	vmStatus := prop(e.mustRun("show Vm name=j1"), "Status")
	where, _ := e.domainOf(prop(e.mustRun("show Vm name=j1"), "Id"))
	if (vmStatus == "Running") != (where >= 0) {
		t.Fatalf("after abort the store says %s and the agent has the domain: %v", vmStatus, where >= 0)
	}
	e.failCode("abort Job id="+id, "XM_0412E", "abort needs Running")
	e.failCode("show Job name=x", "XM_0007E", "jobs are named by id")
}

// abort Job on a job past its last abortable point (its stop_vm call in
// flight, held there by a hung host) aborts nothing: show Job says the
// abort was asked, and once the call returns the client sees the job
// Success and abort failing with XM_0409E, naming the step the job was at.
func TestAbortJobTooLate(t *testing.T) {
	e := newEnv(t, 1, 8192)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	e.mustRun("create Vm name=late repository=repo1 memory=256; start Vm name=late")
	hang := func(on bool) {
		t.Helper()
		if err := e.agentClient(0).Call(context.Background(), agentapi.MethodSimSet, nil, map[string]any{"hang": on}); err != nil {
			t.Fatal(err)
		}
	}
	hang(true)
	out := e.mustRun("set commandMode=Asynchronous; stop Vm name=late")
	id := regexp.MustCompile(`Job Id = ([0-9a-f]{32})`).FindStringSubmatch(out)[1]
	message := func() string { return prop(e.mustRun("show Job id="+id), "Message") }
	eventually(t, "the stop job at its stop_vm call", func() bool { return message() == "stop on ovs1" })
	type outcome struct {
		out    string
		status int
	}
	aborted := make(chan outcome, 1)
	go func() {
		out, status := e.run("abort Job id=" + id)
		aborted <- outcome{out, status}
	}()
	eventually(t, "show Job to say the abort was asked", func() bool { return message() == "stop on ovs1; abort asked" })
	hang(false)
	o := <-aborted
	if o.status == 0 || !strings.Contains(o.out, "Error Msg: XM_0409E: ") ||
		!strings.Contains(o.out, `was not aborted: at step "stop on ovs1" (50%) it had no abortable point left, and it ran to its end: Success`) {
		t.Fatalf("abort Job of a job past its last abortable point: exit %d\n%s", o.status, o.out)
	}
	if prop(o.out, "Status") != "Success" {
		t.Fatalf("abort Job does not show the job as it ended:\n%s", o.out)
	}
	if st := prop(e.mustRun("show Vm name=late"), "Status"); st != "Stopped" {
		t.Fatalf("the VM whose stop was not aborted is %s", st)
	}
}

// Two sessions race on one VM: exactly one wins; the other fails naming
// the job that holds the lock, and nothing half-done is left.
func TestRaceOnOneVM(t *testing.T) {
	e := newEnv(t, 1, 8192)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	e.mustRun("create Vm name=r1 repository=repo1 memory=256")
	if err := e.agentClient(0).Call(context.Background(), agentapi.MethodSimSet, nil,
		map[string]any{"latency_ms": map[string]any{agentapi.MethodStartVM: 2500}}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var startOut, deleteOut string
	var startStatus, deleteStatus int
	started := make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		close(started)
		startOut, startStatus = e.run("start Vm name=r1")
	}()
	go func() {
		defer wg.Done()
		<-started
		// Wait until the start job holds the lock, then race it.
		for !strings.Contains(e.mustRun("list Job status=Running"), "start Vm r1") {
		}
		deleteOut, deleteStatus = e.run("set commandTimeout=1; delete Vm name=r1")
	}()
	wg.Wait()
	if startStatus != 0 {
		t.Fatalf("start lost:\n%s", startOut)
	}
	if deleteStatus != 1 || !strings.Contains(deleteOut, "is locked by job") || !strings.Contains(deleteOut, "(start Vm r1") {
		t.Fatalf("delete: exit %d, want a failure naming the start job\n%s", deleteStatus, deleteOut)
	}
	out := e.mustRun("show Vm name=r1")
	if where, _ := e.domainOf(prop(out, "Id")); prop(out, "Status") != "Running" || where != 0 {
		t.Fatalf("after the race:\n%s", out)
	}
}
