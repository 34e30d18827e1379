package shell

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Networks, disks and VNICs: made through the agents, written into vm.cfg,
// and refused while in use.
func TestStorageAndNetworkObjects(t *testing.T) {
	e := newEnv(t, 1, 8192)
	repoDir := filepath.Join(t.TempDir(), "repo")
	e.setupPool(repoDir)
	e.mustRun("create Network name=public bridge=xenbr0 on ServerPool name=pool1")
	e.mustRun("create VirtualDisk name=root size=1 on Repository name=repo1; create VirtualDisk name=data size=2 on Repository name=repo1")
	diskID := prop(e.mustRun("show VirtualDisk name=root"), "Id")
	img := filepath.Join(repoDir, "VirtualDisks", diskID+".img")
	fi, err := os.Stat(img)
	if err != nil || fi.Size() != 1<<30 {
		t.Fatalf("disk image %s: %v", img, err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Blocks*512 > 1<<20 {
		t.Fatalf("a sparse 1 GiB image uses %d bytes", st.Blocks*512)
	}

	e.mustRun("create Vm name=db repository=repo1 memory=512 disks=root networks=public,public")
	out := e.mustRun("show Vm name=db")
	if prop(out, "Virtual Disks") != "root" || prop(out, "Vnics") != "db-eth0, db-eth1" {
		t.Fatalf("show Vm:\n%s", out)
	}
	vmID, repoID := prop(out, "Id"), prop(e.mustRun("show Repository name=repo1"), "Id")
	cfg, err := e.agentClient(0).GetVMConfig(context.Background(), repoID, vmID)
	if err != nil {
		t.Fatal(err)
	}
	disks := fmt.Sprint(cfg["disk"])
	if !strings.Contains(disks, "/OVS/Repositories/"+repoID+"/VirtualDisks/"+diskID+".img,xvda,w") {
		t.Fatalf("vm.cfg disk = %s", disks)
	}
	if vifs := fmt.Sprint(cfg["vif"]); strings.Count(vifs, "bridge=xenbr0") != 2 || !strings.Contains(vifs, "mac=00:21:f6:") {
		t.Fatalf("vm.cfg vif = %s", vifs)
	}

	e.failCode("delete VirtualDisk name=root", "XM_0409E", "in use by Vm db (slot 0)")
	e.failCode("delete Network name=public", "XM_0409E", "in use by 2 Vnics")
	e.failCode("delete Repository name=repo1", "XM_0409E", "in use by 2 VirtualDisks")
	e.failCode("create Vm name=db2 repository=repo1 disks=root", "XM_0409E", "in use by another VM")
	e.mustRun("start Vm name=db")
	e.failCode("add VirtualDisk name=data to Vm name=db", "XM_0412E", "adding a disk needs Stopped")
	e.mustRun("stop Vm name=db")
	e.mustRun("add VirtualDisk name=data slot=3 to Vm name=db")
	if out := e.mustRun("list VmDiskMapping vm=db"); strings.Count(out, "  id:") != 2 || !strings.Contains(out, "name:db/data") {
		t.Fatalf("mappings:\n%s", out)
	}
	cfg, _ = e.agentClient(0).GetVMConfig(context.Background(), repoID, vmID)
	if !strings.Contains(fmt.Sprint(cfg["disk"]), ",xvdd,w") {
		t.Fatalf("slot 3 is not xvdd: %v", cfg["disk"])
	}
	e.failCode("add VirtualDisk name=data to Vm name=db", "XM_0409E", "in use by Vm db")
	e.mustRun("remove VirtualDisk name=data from Vm name=db")
	e.mustRun("delete Vnic name=db-eth1")
	e.mustRun("create Vnic network=public mac=00:21:f6:aa:bb:cc on Vm name=db")
	e.failCode("create Vnic network=public mac=00:21:F6:AA:BB:CC on Vm name=db", "XM_0409E", "in use by another Vnic")
	e.failCode("create Vnic network=public mac=zz on Vm name=db", "XM_0400E", "not a MAC address")
	cfg, _ = e.agentClient(0).GetVMConfig(context.Background(), repoID, vmID)
	if vifs := fmt.Sprint(cfg["vif"]); strings.Count(vifs, "mac=") != 2 || !strings.Contains(vifs, "mac=00:21:f6:aa:bb:cc") {
		t.Fatalf("vm.cfg vif after changes = %s", vifs)
	}
	e.mustRun("delete Vm name=db")
	if out := e.mustRun("list Vnic; list VmDiskMapping"); strings.Contains(out, "  id:") {
		t.Fatalf("a deleted VM's devices remain:\n%s", out)
	}
	e.mustRun("delete VirtualDisk name=root; delete VirtualDisk name=data; delete Network name=public")
	if _, err := os.Stat(img); !os.IsNotExist(err) {
		t.Fatalf("the disk image remains: %v", err)
	}
	if out := e.mustRun("show Manager"); prop(out, "Server Pools") != "1" || prop(out, "Servers") != "1" {
		t.Fatalf("show Manager:\n%s", out)
	}
}
