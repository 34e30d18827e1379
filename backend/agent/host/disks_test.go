package host

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"xenmanager/backend/agentapi"
)

func TestVirtualDisks(t *testing.T) {
	h := newHost(t, testConfig{})
	fsLoc := t.TempDir()
	addRepo(t, h, fsLoc, "r1")
	disks := filepath.Join(fsLoc, DirDisks)

	mustOK(t, h.CreateVirtualDisk("r1", "sparse1", 10240, true))
	fi, err := os.Stat(filepath.Join(disks, "sparse1.img"))
	mustOK(t, err)
	if fi.Size() != 10240<<20 {
		t.Errorf("sparse disk is %d bytes, want 10 GiB", fi.Size())
	}
	if a := allocatedMiB(t, filepath.Join(disks, "sparse1.img")); a > 1 {
		t.Errorf("sparse disk allocates %d MiB, want none", a)
	}
	mustOK(t, h.CreateVirtualDisk("r1", "full1", 8, false))
	if a := allocatedMiB(t, filepath.Join(disks, "full1.img")); a < 8 {
		t.Errorf("non-sparse disk allocates %d MiB, want 8", a)
	}
	prog, err := h.OperationProgress("disk:full1")
	mustOK(t, err)
	if prog.State != agentapi.ProgressDone || prog.Done != 8 || prog.Total != 8 {
		t.Errorf("progress = %+v", prog)
	}
	wantFault(t, h.CreateVirtualDisk("r1", "full1", 8, true), agentapi.FaultInvalidState, "disk full1 already exists in repository r1")
	wantFault(t, h.CreateVirtualDisk("r1", "x", 0, true), agentapi.FaultInvalidArgument, "disk size 0 MiB is out of range")
	wantFault(t, h.CreateVirtualDisk("r1", "../x", 1, true), agentapi.FaultInvalidArgument, `disk id "../x" is not valid`)
	wantFault(t, h.CreateVirtualDisk("nope", "x", 1, true), agentapi.FaultNotFound, "repository nope is not known")
	if _, free, err := diskSpaceMiB(disks); err == nil && free+1024 <= MaxDiskMiB {
		wantFault(t, h.CreateVirtualDisk("r1", "huge", free+1024, false), agentapi.FaultInsufficientResources, "does not fit")
	}
	if n := countEntries(disks, false); n != 2 {
		t.Errorf("%d disks in the repository, want 2 (no temporary files left)", n)
	}
	repos, err := h.DiscoverRepositories(nil)
	mustOK(t, err)
	if repos[0].Disks != 2 {
		t.Errorf("discover_repositories counts %d disks, want 2", repos[0].Disks)
	}

	// A disk named by a domain's vm.cfg (through the mount point path) is in use.
	p := vmParams(256, 1)
	p["disk"] = []any{"file:/OVS/Repositories/r1/VirtualDisks/sparse1.img,xvda,w"}
	mustOK(t, h.CreateVM("r1", "vm1", p))
	mustOK(t, h.StartVM("r1", "vm1"))
	wantFault(t, h.DeleteVirtualDisk("r1", "sparse1"), agentapi.FaultInvalidState, "disk sparse1 of repository r1 is used by VM vm1 (running, domid 1)")
	mustOK(t, h.DeleteVirtualDisk("r1", "full1"))
	wantFault(t, h.DeleteVirtualDisk("r1", "full1"), agentapi.FaultNotFound, "disk full1 not found")
	if st := must(h.GetStatistics()); st.VMs[0].Guest.DiskTotalMiB != 10240 {
		t.Errorf("guest disk total = %d MiB, want the 10240 MiB of its image", st.VMs[0].Guest.DiskTotalMiB)
	}
	mustOK(t, h.StopVM("r1", "vm1", true))
	mustOK(t, h.DeleteVirtualDisk("r1", "sparse1"))

	// Busy while being created.
	h.mu.Lock()
	h.diskOps[diskKey("r1", "d9")] = "disk:d9"
	h.mu.Unlock()
	wantFault(t, h.CreateVirtualDisk("r1", "d9", 1, true), agentapi.FaultBusy, "being created")
	wantFault(t, h.DeleteVirtualDisk("r1", "d9"), agentapi.FaultBusy, "being created")
	wantFault(t, h.DeleteRepository("r1", false), agentapi.FaultBusy, "repository r1 is busy")
}

func TestDeleteRepository(t *testing.T) {
	h := newHost(t, testConfig{})
	fsLoc := filepath.Join(t.TempDir(), "repo")
	addRepo(t, h, fsLoc, "r1")
	link := filepath.Join(h.DataDir(), "OVS", "Repositories", "r1")
	mustOK(t, h.CreateVM("r1", "vm1", vmParams(256, 1)))
	mustOK(t, h.StartVM("r1", "vm1"))
	wantFault(t, h.DeleteRepository("r1", false), agentapi.FaultInvalidState, "VM vm1 of repository r1 is running on this server")
	mustOK(t, h.StopVM("r1", "vm1", true))
	mustOK(t, h.CreateVirtualDisk("r1", "d1", 1, true))
	wantFault(t, h.DeleteRepository("r1", true), agentapi.FaultInvalidState, "still holds 1 entries in VirtualMachines, 1 entries in VirtualDisks")
	if len(h.Repositories()) != 1 {
		t.Fatal("a refused delete forgot the repository")
	}

	// Without erase: forgotten here, files kept, can be added again.
	mustOK(t, h.DeleteRepository("r1", false))
	if len(h.Repositories()) != 0 {
		t.Errorf("repository still known: %+v", h.Repositories())
	}
	if _, err := os.Lstat(link); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("mount link still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(fsLoc, RepoMarker)); err != nil {
		t.Errorf("delete without erase removed the marker: %v", err)
	}
	wantFault(t, h.DeleteRepository("r1", false), agentapi.FaultNotFound, "repository r1 is not known")
	mustOK(t, h.AddRepository(fsLoc, "/OVS/Repositories/r1"))

	// With erase, once empty: the marker and layout go, fs_location stays.
	mustOK(t, h.DeleteVM("r1", "vm1"))
	mustOK(t, h.DeleteVirtualDisk("r1", "d1"))
	mustOK(t, h.DeleteRepository("r1", true))
	entries, err := os.ReadDir(fsLoc)
	mustOK(t, err)
	if len(entries) != 0 {
		t.Errorf("fs_location after erase holds %v, want nothing", entries)
	}
	wantFault(t, h.AddRepository(fsLoc, "/OVS/Repositories/r1"), agentapi.FaultNotFound, "no repository at")
	// The state on disk forgot it too.
	h2 := newHost(t, testConfig{DataDir: h.DataDir()})
	if len(h2.Repositories()) != 0 {
		t.Errorf("after a restart: %+v", h2.Repositories())
	}
}
