package agent

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kolo/xmlrpc"

	"xenmanager/backend/agentapi"
)

// TestMigrationBetweenAgents migrates a VM between two real agents on
// 127.0.0.1 that share one repository directory, the way the manager does:
// setup_migration_target on the destination, migrate_vm on the source,
// cleanup_migration_target on the destination after a failure, list_vms on
// both.
func TestMigrationBetweenAgents(t *testing.T) {
	a := startAgent(t, Config{Hostname: "xen-a", CPUs: 4, MemoryMiB: 8192, SimControl: true})
	b := startAgent(t, Config{Hostname: "xen-b", CPUs: 4, MemoryMiB: 8192, SimControl: true})
	ca, cb := a.typed(t), b.typed(t)
	ctx := t.Context()
	fsLoc := filepath.Join(t.TempDir(), "repo")
	must(t, ca.CreateRepository(ctx, fsLoc, "/OVS/Repositories/r1", "r1", "shared"))
	must(t, cb.AddRepository(ctx, fsLoc, "/OVS/Repositories/r1"))
	must(t, ca.CreateVM(ctx, "r1", "vm1", agentapi.VMParams{"name": "vm1", "uuid": "u-vm1", "memory": 512, "vcpus": 2}))
	must(t, ca.StartVM(ctx, "r1", "vm1"))
	before, err := ca.ListVM(ctx, "r1", "vm1")
	must(t, err)

	wantOn := func(where string, onA bool) {
		t.Helper()
		la, err := ca.ListVMs(ctx)
		must(t, err)
		lb, err := cb.ListVMs(ctx)
		must(t, err)
		if onA && (len(la) != 1 || len(lb) != 0 || la[0].UUID != "u-vm1" || la[0].State != agentapi.StateRunning) ||
			!onA && (len(la) != 0 || len(lb) != 1 || lb[0].UUID != "u-vm1" || lb[0].State != agentapi.StateRunning) {
			t.Fatalf("%s: list_vms on A = %+v, on B = %+v", where, la, lb)
		}
		ha, err := ca.DiscoverHardware(ctx)
		must(t, err)
		hb, err := cb.DiscoverHardware(ctx)
		must(t, err)
		wantA, wantB := int64(7168), int64(7168)
		if onA {
			wantA -= 512
		} else {
			wantB -= 512
		}
		if ha.FreeMemoryMiB != wantA || hb.FreeMemoryMiB != wantB {
			t.Errorf("%s: free memory A %d B %d, want %d and %d", where, ha.FreeMemoryMiB, hb.FreeMemoryMiB, wantA, wantB)
		}
	}

	// A to B, live.
	dest, err := cb.SetupMigrationTarget(ctx, "r1", "vm1")
	must(t, err)
	if !strings.HasPrefix(dest, "127.0.0.1:") {
		t.Errorf("dest = %q, want an address on the one the call came in on", dest)
	}
	if hw, _ := cb.DiscoverHardware(ctx); hw.FreeMemoryMiB != 7168-512 {
		t.Errorf("B free with the reservation = %d", hw.FreeMemoryMiB)
	}
	res, err := ca.MigrateVM(ctx, "r1", "vm1", dest, true, false)
	must(t, err)
	t.Logf("A to B: %+v", res)
	if !res.Converged || res.Rounds < 2 || res.BytesSent < 512*256*48 || len(res.MemorySHA256) != 64 || res.DurationMS < res.DowntimeMS {
		t.Errorf("result = %+v", res)
	}
	wantOn("after A to B", false)
	after, err := cb.ListVM(ctx, "r1", "vm1")
	must(t, err)
	if after.CPUTimeS < before.CPUTimeS || after.Name != "vm1" || after.MemoryMiB != 512 || after.VCPUs != 2 {
		t.Errorf("on B: %+v (on A it was %+v)", after, before)
	}
	if sum, err := b.Sim().MemorySHA256("r1", "vm1"); err != nil || sum != res.MemorySHA256 {
		t.Errorf("B's memory %s (%v), the result says %s", sum, err, res.MemorySHA256)
	}
	prog, err := ca.GetOperationProgress(ctx, "migrate:vm1")
	must(t, err)
	if prog.State != agentapi.ProgressDone {
		t.Errorf("progress on A = %+v", prog)
	}

	// B to A with a page damaged on A: the checksum catches it, the VM
	// stays on B, A releases its reservation.
	mustCall(t, a.client(t), agentapi.MethodSimSet, []any{map[string]any{"corrupt_migration": "u-vm1"}}, nil)
	dest, err = ca.SetupMigrationTarget(ctx, "r1", "vm1")
	must(t, err)
	_, err = cb.MigrateVM(ctx, "r1", "vm1", dest, true, true)
	wantCallFault(t, err, agentapi.FaultMigrationFailed, "memory checksum mismatch")
	must(t, ca.CleanupMigrationTarget(ctx, "r1", "vm1"))
	must(t, ca.CleanupMigrationTarget(ctx, "r1", "vm1"))
	wantOn("after a corrupted migration", false)

	// A accepts migrations from its pool members only.
	must(t, ca.SetPoolMemberIPList(ctx, []string{"192.0.2.7"}))
	dest, err = ca.SetupMigrationTarget(ctx, "r1", "vm1")
	must(t, err)
	_, err = cb.MigrateVM(ctx, "r1", "vm1", dest, true, false)
	wantCallFault(t, err, agentapi.FaultNotOwner, "accepts migrations only from its pool members (192.0.2.7)")
	wantOn("after a refused migration", false)

	// A member, over TLS: back on A.
	must(t, ca.SetPoolMemberIPList(ctx, []string{"192.0.2.7", "127.0.0.1"}))
	dest, err = ca.SetupMigrationTarget(ctx, "r1", "vm1")
	must(t, err)
	_, err = cb.MigrateVM(ctx, "r1", "vm1", dest, false, true)
	must(t, err)
	wantOn("after B to A", true)

	// Wrong calls.
	_, err = ca.MigrateVM(ctx, "r1", "vm1", "nowhere", true, false)
	wantCallFault(t, err, agentapi.FaultInvalidArgument, "not what setup_migration_target returns")
	_, err = cb.MigrateVM(ctx, "r1", "vm1", dest, true, false)
	wantCallFault(t, err, agentapi.FaultInvalidState, "does not run on this server")
	_, err = ca.SetupMigrationTarget(ctx, "r1", "vm1")
	wantCallFault(t, err, agentapi.FaultInvalidState, "already running on this server")
}

// TestMigrationResultShape checks migrate_vm's result on the wire: integers,
// a boolean and a string, nothing absent.
func TestMigrationResultShape(t *testing.T) {
	a := startAgent(t, Config{Hostname: "xen-a", CPUs: 4, MemoryMiB: 8192})
	b := startAgent(t, Config{Hostname: "xen-b", CPUs: 4, MemoryMiB: 8192})
	ca, cb := a.typed(t), b.typed(t)
	ctx := t.Context()
	fsLoc := withRepoVM(t, ca, 64)
	must(t, cb.AddRepository(ctx, fsLoc, "/OVS/Repositories/r1"))
	must(t, ca.StartVM(ctx, "r1", "vm1"))
	dest, err := cb.SetupMigrationTarget(ctx, "r1", "vm1")
	must(t, err)
	body, _ := xmlrpc.EncodeMethodCall(agentapi.MethodMigrateVM, "r1", "vm1", dest, true, false)
	resp, err := (&http.Client{Transport: pinnedTransport(a.SPKISHA256())}).Post(a.url(testPassword, agentapi.Path), "text/xml", bytes.NewReader(body))
	must(t, err)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	got := strings.Join(strings.Fields(string(raw)), "")
	for _, want := range []string{
		"<name>rounds</name><value><int>", "<name>bytes_sent</name><value><int>", "<name>duration_ms</name><value><int>",
		"<name>downtime_ms</name><value><int>", "<name>converged</name><value><boolean>1</boolean>",
		"<name>memory_sha256</name><value><string>",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("migrate_vm answer lacks %s:\n%s", want, raw)
		}
	}
	if doms, _ := cb.ListVMs(ctx); len(doms) != 1 {
		t.Errorf("B runs %+v", doms)
	}
}
