package xensim

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"xenmanager/backend/agent/host"
	"xenmanager/backend/agentapi"
)

func domainOf(t *testing.T, h *testHost, vmID string) agentapi.Domain {
	t.Helper()
	d, err := h.ListVM("r1", vmID)
	mustOK(t, err)
	return d
}

func TestConfigureVM(t *testing.T) {
	h := newHost(t, testConfig{MemoryMiB: 8192, CPUs: 4}) // 7168 MiB for domains
	addRepo(t, h, t.TempDir(), "r1")
	p := vmParams(1024, 1)
	p["maxmem"], p["maxvcpus"] = int64(4096), int64(2)
	mustOK(t, h.CreateVM("r1", "vm1", p))

	// Stopped: only vm.cfg changes; keys not given stay.
	mustOK(t, h.ConfigureVM("r1", "vm1", agentapi.VMParams{"OVM_description": "web server", "memory": "2048"}))
	cfg, err := h.GetVMConfig("r1", "vm1")
	mustOK(t, err)
	if cfg.String("OVM_description") != "web server" || cfg["memory"] != int64(2048) || cfg["name"] != "web" || cfg["maxmem"] != int64(4096) {
		t.Errorf("merged vm.cfg = %#v", cfg)
	}
	wantFault(t, h.ConfigureVM("r1", "vm1", agentapi.VMParams{"memory": 0}), agentapi.FaultInvalidArgument, "params.memory must be a positive integer")
	wantFault(t, h.ConfigureVM("r1", "vm1", agentapi.VMParams{"maxmem": 1024}), agentapi.FaultInvalidArgument, "maxmem 1024 MiB is below memory 2048 MiB")
	wantFault(t, h.ConfigureVM("r1", "nope", agentapi.VMParams{"memory": 1}), agentapi.FaultNotFound, "VM nope not found")

	// Running: memory and vcpus change live within the limits.
	mustOK(t, h.StartVM("r1", "vm1"))
	mustOK(t, h.ConfigureVM("r1", "vm1", agentapi.VMParams{"memory": 3072, "vcpus": 2}))
	if d := domainOf(t, h, "vm1"); d.MemoryMiB != 3072 || d.VCPUs != 2 {
		t.Errorf("live domain = %+v, want 3072 MiB and 2 vCPUs", d)
	}
	if got := h.FreeMemoryMiB(); got != 7168-3072 {
		t.Errorf("free = %d, want %d", got, 7168-3072)
	}
	wantFault(t, h.ConfigureVM("r1", "vm1", agentapi.VMParams{"memory": 5000, "maxmem": 8000}), agentapi.FaultInvalidState, "runs with maxmem 4096 MiB")
	wantFault(t, h.ConfigureVM("r1", "vm1", agentapi.VMParams{"vcpus": 3, "maxvcpus": 4}), agentapi.FaultInvalidState, "runs with maxvcpus 2")
	if cfg, _ := h.GetVMConfig("r1", "vm1"); cfg["maxmem"] != int64(4096) {
		t.Errorf("a refused configure_vm changed vm.cfg: %#v", cfg)
	}
	// Growth must fit the free memory.
	mustOK(t, h.CreateVM("r1", "big", vmParams(3584, 1)))
	mustOK(t, h.StartVM("r1", "big")) // 512 MiB left
	wantFault(t, h.ConfigureVM("r1", "vm1", agentapi.VMParams{"memory": 4096}), agentapi.FaultInsufficientResources, "cannot grow by 1024 MiB to 4096 MiB: 512 MiB free")
	mustOK(t, h.ConfigureVM("r1", "vm1", agentapi.VMParams{"memory": 1024})) // shrinking always fits
	if got := h.FreeMemoryMiB(); got != 2560 {
		t.Errorf("free after shrinking = %d, want 2560", got)
	}

	mustOK(t, h.ConfigureVMHA("r1", "vm1", true))
	if cfg, _ := h.GetVMConfig("r1", "vm1"); cfg[agentapi.KeyHA] != true || cfg["memory"] != int64(1024) {
		t.Errorf("after configure_vm_ha: %#v", cfg)
	}
}

func TestPauseRebootVM(t *testing.T) {
	clock := newClock(time.Unix(1_700_000_000, 0))
	h := newHost(t, testConfig{MemoryMiB: 8192, CPUs: 4, Now: clock.Now})
	fsLoc := t.TempDir()
	addRepo(t, h, fsLoc, "r1")
	mustOK(t, h.CreateVM("r1", "vm1", vmParams(1024, 2)))
	wantFault(t, h.PauseVM("r1", "vm1"), agentapi.FaultNotFound, "not running")
	mustOK(t, h.StartVM("r1", "vm1"))
	wantFault(t, h.UnpauseVM("r1", "vm1"), agentapi.FaultInvalidState, "VM vm1 is running (domid 1) and cannot be unpaused")

	clock.Advance(10 * time.Second)
	mustOK(t, h.PauseVM("r1", "vm1"))
	wantFault(t, h.PauseVM("r1", "vm1"), agentapi.FaultInvalidState, "is paused")
	wantFault(t, h.RebootVM("r1", "vm1", 30), agentapi.FaultInvalidState, "cannot be rebooted")
	clock.Advance(time.Hour)
	d := domainOf(t, h, "vm1")
	if d.State != agentapi.StatePaused || d.CPUTimeS != 10*2*cpuLoad {
		t.Errorf("paused domain = %+v, want its CPU time frozen at %v", d, 10*2*cpuLoad)
	}
	if h.FreeMemoryMiB() != 7168-1024 {
		t.Errorf("a paused domain must keep its memory")
	}
	mustOK(t, h.UnpauseVM("r1", "vm1"))
	clock.Advance(10 * time.Second)
	if d := domainOf(t, h, "vm1"); d.State != agentapi.StateRunning || d.CPUTimeS != 20*2*cpuLoad {
		t.Errorf("unpaused domain = %+v", d)
	}

	// A reboot boots a new domain from the current vm.cfg.
	mustOK(t, h.ConfigureVM("r1", "vm1", agentapi.VMParams{"maxmem": 2048}))
	wantFault(t, h.RebootVM("r1", "vm1", -1), agentapi.FaultInvalidArgument, "wait must not be negative")
	mustOK(t, h.RebootVM("r1", "vm1", 60))
	d = domainOf(t, h, "vm1")
	if d.DomID != 2 || d.State != agentapi.StateRunning || d.CPUTimeS != 0 {
		t.Errorf("rebooted domain = %+v, want domid 2, running, no CPU time", d)
	}
	mustOK(t, h.ConfigureVM("r1", "vm1", agentapi.VMParams{"memory": 2048})) // the new maxmem applies
	// Another server of the pool, sharing the repository, where vm1 does not
	// run, makes it too big for this one.
	other := newHost(t, testConfig{Hostname: "xen2"})
	addRepo(t, other, fsLoc, "r1")
	mustOK(t, other.ConfigureVM("r1", "vm1", agentapi.VMParams{"memory": 7168 + 100, "maxmem": 8000}))
	wantFault(t, h.RebootVM("r1", "vm1", 0), agentapi.FaultInsufficientResources, "needs 7268 MiB to boot again, 7168 MiB free")
	wantFault(t, h.RebootVM("r1", "ghost", 0), agentapi.FaultNotFound, "VM ghost not found")
}

func TestSaveRestoreVM(t *testing.T) {
	clock := newClock(time.Unix(1_700_000_000, 0))
	h := newHost(t, testConfig{MemoryMiB: 8192, CPUs: 4, Now: clock.Now})
	fsLoc := t.TempDir()
	addRepo(t, h, fsLoc, "r1")
	p := vmParams(64, 2)
	p["uuid"] = "u-vm1"
	mustOK(t, h.CreateVM("r1", "vm1", p))
	wantFault(t, h.SaveVM("r1", "vm1", false), agentapi.FaultNotFound, "not running")
	wantFault(t, h.RestoreVM("r1", "vm1", false), agentapi.FaultNotFound, "has no saved state")
	mustOK(t, h.StartVM("r1", "vm1"))
	clock.Advance(100 * time.Second)

	saveFile := filepath.Join(fsLoc, host.DirVMs, "vm1", "save.img")
	// A checkpoint keeps the domain running.
	mustOK(t, h.SaveVM("r1", "vm1", true))
	if d := domainOf(t, h, "vm1"); d.State != agentapi.StateRunning {
		t.Errorf("after a checkpoint: %+v, want running", d)
	}
	wantFault(t, h.RestoreVM("r1", "vm1", false), agentapi.FaultInvalidState, "VM vm1 is running on this server (domid 1); restore_vm needs it suspended or stopped")

	mustOK(t, h.SaveVM("r1", "vm1", false))
	fi, err := os.Stat(saveFile)
	mustOK(t, err)
	if want := int64(saveHeaderSize + 64<<20); fi.Size() != want {
		t.Errorf("save file is %d bytes, want %d", fi.Size(), want)
	}
	d := domainOf(t, h, "vm1")
	if d.State != agentapi.StateSuspended || h.FreeMemoryMiB() != 7168 {
		t.Errorf("after save: %+v, free %d; want suspended and its memory free", d, h.FreeMemoryMiB())
	}
	prog, err := h.OperationProgress("save:vm1")
	mustOK(t, err)
	if prog != (agentapi.Progress{Key: "save:vm1", Phase: "done", Done: 64, Total: 64, State: agentapi.ProgressDone}) {
		t.Errorf("progress = %+v", prog)
	}
	wantFault(t, h.SaveVM("r1", "vm1", false), agentapi.FaultInvalidState, "is suspended")
	wantFault(t, h.PauseVM("r1", "vm1"), agentapi.FaultInvalidState, "is suspended")

	// Memory must fit to restore.
	mustOK(t, h.CreateVM("r1", "hog", vmParams(7168-32, 1)))
	mustOK(t, h.StartVM("r1", "hog"))
	wantFault(t, h.RestoreVM("r1", "vm1", false), agentapi.FaultInsufficientResources, "needs 64 MiB to restore, 32 MiB free")
	mustOK(t, h.StopVM("r1", "hog", true))

	clock.Advance(time.Hour) // suspended time does not count
	mustOK(t, h.RestoreVM("r1", "vm1", true))
	d = domainOf(t, h, "vm1")
	if d.State != agentapi.StatePaused || d.DomID != 3 || d.UUID != "u-vm1" || d.MemoryMiB != 64 || d.CPUTimeS != 100*2*cpuLoad {
		t.Errorf("restored domain = %+v", d)
	}
	if _, err := os.Stat(saveFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("save file still there after restore: %v", err)
	}
	if up := must(h.GetStatistics()).VMs[0].Guest.UptimeS; up != 100 {
		t.Errorf("uptime after restore = %d, want the 100 s it had", up)
	}

	// A corrupt save file is refused and left alone.
	mustOK(t, h.UnpauseVM("r1", "vm1"))
	mustOK(t, h.SaveVM("r1", "vm1", false))
	f, err := os.OpenFile(saveFile, os.O_WRONLY, 0)
	mustOK(t, err)
	_, err = f.WriteAt([]byte("garbage"), saveHeaderSize+5<<20)
	mustOK(t, err)
	mustOK(t, f.Close())
	wantFault(t, h.RestoreVM("r1", "vm1", false), agentapi.FaultInvalidState, "differs from what was saved at MiB 5")
	mustOK(t, h.StopVM("r1", "vm1", true))
	wantFault(t, h.RestoreVM("r1", "vm1", false), agentapi.FaultInvalidState, "cannot be restored")
}

// TestSaveBusy checks that a domain being saved refuses other changes with
// Busy, and that progress is visible meanwhile.
func TestSaveBusy(t *testing.T) {
	h := newHost(t, testConfig{})
	addRepo(t, h, t.TempDir(), "r1")
	mustOK(t, h.CreateVM("r1", "vm1", vmParams(256, 1)))
	mustOK(t, h.StartVM("r1", "vm1"))
	// Hold the domain as a save in flight does.
	h.sim.mu.Lock()
	h.sim.domains[domainKey("r1", "vm1")].busy = "save:vm1"
	h.sim.mu.Unlock()
	for name, err := range map[string]error{
		"stop":      h.StopVM("r1", "vm1", true),
		"pause":     h.PauseVM("r1", "vm1"),
		"save":      h.SaveVM("r1", "vm1", true),
		"configure": h.ConfigureVM("r1", "vm1", agentapi.VMParams{"memory": 128}),
		"restore":   h.RestoreVM("r1", "vm1", false),
	} {
		t.Run(name, func(t *testing.T) { wantFault(t, err, agentapi.FaultBusy, "busy with operation save:vm1") })
	}
	_, err := h.OperationProgress("save:nope")
	wantFault(t, err, agentapi.FaultNotFound, `no operation "save:nope"`)
}
