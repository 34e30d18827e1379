package shell

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"xenmanager/backend/agentapi"
)

// Live migration through the SSH path: the VM ends on the destination with
// its memory verified; a corrupted copy leaves it on the source; two
// migrations racing on one VM: one wins, the other names the lock holder.
func TestMigrateVM(t *testing.T) {
	e := newEnv(t, 2, 8192)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	e.mustRun("create Vm name=m1 repository=repo1 memory=512 cpuCount=2; edit Vm name=m1 preferredServers=ovs1; start Vm name=m1")
	id := prop(e.mustRun("show Vm name=m1"), "Id")

	out := e.mustRun("migrate Vm name=m1 destServer=ovs2")
	if !strings.HasSuffix(prop(out, "Server"), "[ovs2]") || prop(out, "Converged") != "Yes" || prop(out, "Rounds") == "" {
		t.Fatalf("migrate:\n%s", out)
	}
	if where, st := e.domainOf(id); where != 1 || st != agentapi.StateRunning {
		t.Fatalf("after migrating to ovs2 the domain is on agent %d (%s)", where+1, st)
	}
	e.failCode("migrate Vm name=m1 destServer=ovs2", "XM_0400E", "already runs on ovs2")
	e.failCode("migrate Vm name=m1 destServer=ovs9", "XM_0404E")

	// A corrupted page: the destination refuses the memory; the VM stays.
	if err := e.agentClient(0).Call(context.Background(), agentapi.MethodSimSet, nil, map[string]any{"corrupt_migration": id}); err != nil {
		t.Fatal(err)
	}
	out, status := e.run("migrate Vm name=m1 destServer=ovs1")
	if status != 1 || !strings.Contains(out, "XM_0502E") {
		t.Fatalf("corrupted migration: exit %d\n%s", status, out)
	}
	if where, _ := e.domainOf(id); where != 1 || !strings.HasSuffix(prop(e.mustRun("show Vm name=m1"), "Server"), "[ovs2]") {
		t.Fatalf("after a failed migration the domain is on agent %d", where+1)
	}

	// Placement picks the destination when none is named.
	e.mustRun("migrate Vm name=m1")
	if where, _ := e.domainOf(id); where != 0 {
		t.Fatalf("placement migrated to agent %d", where+1)
	}

	// Two migrations race: exactly one wins, the other names the holder
	// (it times out waiting for the lock) or finds the VM already moved. The
	// timeout is generous so that the winner finishes on a loaded machine.
	var wg sync.WaitGroup
	outs := make([]string, 2)
	codes := make([]int, 2)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], codes[i] = e.run("set commandTimeout=60; migrate Vm name=m1 destServer=ovs2")
		}()
	}
	wg.Wait()
	wins, lockLosses := 0, 0
	for i := range outs {
		if codes[i] == 0 {
			wins++
		} else if strings.Contains(outs[i], "is locked by job") || strings.Contains(outs[i], "already runs on ovs2") {
			lockLosses++
		}
	}
	if wins != 1 || lockLosses != 1 {
		t.Fatalf("two migrations: %d won, %d lost properly\n%s\n---\n%s", wins, lockLosses, outs[0], outs[1])
	}
	if where, _ := e.domainOf(id); where != 1 {
		t.Fatalf("after the race the domain is on agent %d", where+1)
	}

	// A stopped VM: migrate records where it starts (CURRENT_SERVER).
	e.mustRun("stop Vm name=m1; edit Vm name=m1 preferredServers=''; migrate Vm name=m1 destServer=ovs1; edit Vm name=m1 startPolicy=CURRENT_SERVER; start Vm name=m1")
	if where, _ := e.domainOf(id); where != 0 {
		t.Fatalf("cold migration to ovs1, then started on agent %d", where+1)
	}
}

// Server roles over SSH: a utility-only server gets no VM from placement nor
// from migrate destServer=, and the refusal says how to give the role; the
// VM server role is not taken from a server that runs VMs.
func TestServerRolesOverSSH(t *testing.T) {
	e := newEnv(t, 2, 8192)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	e.mustRun("edit Server name=ovs2 roles=utility")
	if out := e.mustRun("show Server name=ovs2"); !strings.Contains(prop(out, "Roles"), "Utility") || strings.Contains(prop(out, "Roles"), "VM Server") {
		t.Fatalf("show Server after roles=utility:\n%s", out)
	}
	// ovs2 has the most free memory after the first start: only the role
	// keeps the second VM off it.
	e.mustRun("create Vm name=r1 repository=repo1 memory=1024; create Vm name=r2 repository=repo1 memory=1024; start Vm name=r1; start Vm name=r2")
	for _, vm := range []string{"r1", "r2"} {
		if out := e.mustRun("show Vm name=" + vm); !strings.HasSuffix(prop(out, "Server"), "[ovs1]") {
			t.Fatalf("%s placed off ovs1, the only server with the VM server role:\n%s", vm, out)
		}
	}
	e.failCode("migrate Vm name=r1 destServer=ovs2", "XM_0412E",
		"server ovs2 has not the VM server role (roles: utility); give it with edit Server name=ovs2 roles=xen,utility")
	e.failCode("edit Server name=ovs1 roles=utility", "XM_0409E",
		"Server ovs1 runs 2 VMs; migrate or stop them before taking its VM server role (xen) away")
	// Given the role back, ovs2 takes the migration.
	e.mustRun("edit Server name=ovs2 roles=xen,utility; migrate Vm name=r1 destServer=ovs2")
	if out := e.mustRun("show Vm name=r1"); !strings.HasSuffix(prop(out, "Server"), "[ovs2]") {
		t.Fatalf("r1 after migrating to ovs2 with the role back:\n%s", out)
	}
}
