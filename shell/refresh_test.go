package shell

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// refresh re-reads the agents: a domain stopped behind the manager's back
// is recorded Stopped, a repository's files are counted, and a pool's
// servers are refreshed at once, one line each, failing when one is down.
func TestRefresh(t *testing.T) {
	e := newEnv(t, 2, 8192)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	e.mustRun("create Vm name=r1 repository=repo1 memory=256; start Vm name=r1")
	out := e.mustRun("show Vm name=r1")
	vmID, repoID := prop(out, "Id"), prop(e.mustRun("show Repository name=repo1"), "Id")
	where, _ := e.domainOf(vmID)
	if where < 0 {
		t.Fatalf("r1 runs nowhere:\n%s", out)
	}
	// Behind the manager's back: the domain is destroyed on its server.
	if err := e.agentClient(where).StopVM(context.Background(), repoID, vmID, true); err != nil {
		t.Fatal(err)
	}
	server := fmt.Sprintf("ovs%d", where+1)
	out = e.mustRun("refresh Server name=" + server)
	if prop(out, "Vms Changed") != "1" || prop(out, "Name") != server || prop(out, "Status") != "Running" {
		t.Fatalf("refresh Server:\n%s", out)
	}
	if st := prop(e.mustRun("show Vm name=r1"), "Status"); st != "Stopped" {
		t.Fatalf("after refresh the VM is %s, want Stopped", st)
	}

	e.mustRun("create VirtualDisk name=d1 size=1 on Repository name=repo1")
	out = e.mustRun("refresh Repository name=repo1")
	if prop(out, "Vm Files") != "1" || prop(out, "Vms Recorded") != "1" || prop(out, "Disk Files") != "1" ||
		prop(out, "VirtualDisks Recorded") != "1" || prop(out, "Total (MiB)") == "0" {
		t.Fatalf("refresh Repository:\n%s", out)
	}
	// A template's disk is a disk file the VirtualDisks do not count.
	e.mustRun("add VirtualDisk name=d1 to Vm name=r1; clone Vm name=r1 destType=VmTemplate destName=t1")
	out = e.mustRun("refresh Repository name=repo1")
	if prop(out, "Disk Files") != "2" || prop(out, "VirtualDisks Recorded") != "1" || prop(out, "Template Disks Recorded") != "1" ||
		prop(out, "Templates") != "1" || prop(out, "VmTemplates Recorded") != "1" {
		t.Fatalf("refresh Repository with a template:\n%s", out)
	}

	if out := e.mustRun("refresh ServerPool name=pool1"); strings.Count(out, "Success (0 Vms changed)") != 2 {
		t.Fatalf("refresh ServerPool:\n%s", out)
	}
	e.mustRun(`create User name=viewer password=viewer-pw-1 role=Viewer; add User name=viewer to ServerPool name=pool1`)
	if out, st := e.runAs("viewer", "viewer-pw-1", "refresh Server name=ovs1"); st != 3 {
		t.Fatalf("a Viewer's refresh: exit %d\n%s", st, out)
	}
	// One server down: its line says why, the command fails, the other is refreshed.
	e.agents[1].Shutdown(context.Background())
	out = e.failCode("refresh ServerPool name=pool1", "XM_0503E", "1 of 2 objects failed")
	if !strings.Contains(out, "Success (0 Vms changed)") || !strings.Contains(out, "name:ovs2") {
		t.Fatalf("refresh ServerPool with a server down:\n%s", out)
	}
	e.failCode("refresh Server name=ovs2", "XM_0503E", "does not answer")
	e.failCode("refresh Server name=nosuch", "XM_0404E")
}
