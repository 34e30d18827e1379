package xensim

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"xenmanager/backend/agent/host"
	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agentapi"
)

// gatedSim answers Domain as the Sim does, then holds its answer until
// release is closed, so that a test can land an incoming migration's commit
// between a caller's checks.
type gatedSim struct {
	*Sim
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (g *gatedSim) Domain(repoID, vmID string) (hypervisor.Domain, bool, error) {
	d, ok, err := g.Sim.Domain(repoID, vmID)
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
	return d, ok, err
}

// TestDeleteVMDuringIncomingMigration: delete_vm of a VM being migrated to
// this server is Busy and leaves its files, however the migration's commit
// falls among delete_vm's checks (checked the other way round, a commit
// between "no domain" and "no migration" let delete_vm remove the files of
// a VM that had just started running here).
func TestDeleteVMDuringIncomingMigration(t *testing.T) {
	src := newHost(t, testConfig{Hostname: "xen1", MemoryMiB: 8192, CPUs: 4})
	g := &gatedSim{entered: make(chan struct{}), release: make(chan struct{})}
	dst, err := host.New(host.Config{DataDir: t.TempDir(), Hostname: "xen2", Driver: func(env hypervisor.Env) (hypervisor.Driver, error) {
		d, err := Driver(Config{CPUs: 4, MemoryMiB: 8192})(env)
		if err != nil {
			return nil, err
		}
		g.Sim = d.(*Sim)
		return g, nil
	}})
	mustOK(t, err)
	fsLoc := t.TempDir()
	addRepo(t, src, fsLoc, "r1")
	mustOK(t, dst.AddRepository(fsLoc, "/OVS/Repositories/r1"))
	params := vmParams(512, 1)
	params["uuid"] = "u-vm1"
	mustOK(t, src.CreateVM("r1", "vm1", params))
	mustOK(t, src.StartVM("r1", "vm1"))
	mustOK(t, src.SimSet(map[string]any{SimMigrationMiBPerS: 200}))
	dest, err := dst.SetupMigrationTarget("r1", "vm1", "127.0.0.1")
	mustOK(t, err)
	migrated := make(chan error, 1)
	go func() { _, err := src.MigrateVM(t.Context(), "r1", "vm1", dest, true, false); migrated <- err }()
	waitFor(t, "the stream to start", func() bool { _, err := dst.OperationProgress("migrate:vm1"); return err == nil })

	deleted := make(chan error, 1)
	go func() { deleted <- dst.DeleteVM("r1", "vm1") }()
	var delErr error
	select {
	case <-g.entered: // delete_vm saw no domain: let the migration commit first
		mustOK(t, <-migrated)
		close(g.release)
		delErr = <-deleted
	case delErr = <-deleted:
		close(g.release)
		mustOK(t, <-migrated)
	}
	wantFault(t, delErr, agentapi.FaultBusy, "migrated")
	if _, err := os.Stat(filepath.Join(fsLoc, "VirtualMachines", "vm1", "vm.cfg")); err != nil {
		t.Fatalf("vm.cfg of the migrated VM: %v", err)
	}
	if _, err := dst.ListVM("r1", "vm1"); err != nil {
		t.Fatalf("the migrated VM does not run on the destination: %v", err)
	}
}
