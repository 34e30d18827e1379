package xensim

import (
	"context"
	"strings"
	"testing"
	"time"

	"xenmanager/backend/agent/internal/testkit"
	"xenmanager/backend/agentapi"
)

// migPair is two hosts sharing repository r1, with VM vm1 (uuid u-vm1) of
// memory MiB running on the source.
type migPair struct {
	src, dst           *testHost
	srcClock, dstClock *testkit.Clock
}

func newMigPair(t *testing.T, memory int64) migPair {
	t.Helper()
	p := migPair{srcClock: newClock(time.Unix(1_700_000_000, 0)), dstClock: newClock(time.Unix(1_700_000_000, 0))}
	p.src = newHost(t, testConfig{Hostname: "xen1", MemoryMiB: 8192, CPUs: 4, Now: p.srcClock.Now})
	p.dst = newHost(t, testConfig{Hostname: "xen2", MemoryMiB: 8192, CPUs: 4, Now: p.dstClock.Now})
	fsLoc := t.TempDir()
	addRepo(t, p.src, fsLoc, "r1")
	mustOK(t, p.dst.AddRepository(fsLoc, "/OVS/Repositories/r1"))
	params := vmParams(memory, 2)
	params["uuid"] = "u-vm1"
	params["on_crash"] = "preserve" // a crash keeps the domain, crashed, on whichever server it runs
	mustOK(t, p.src.CreateVM("r1", "vm1", params))
	mustOK(t, p.src.StartVM("r1", "vm1"))
	return p
}

func (p migPair) setup(t *testing.T) string {
	t.Helper()
	dest, err := p.dst.SetupMigrationTarget("r1", "vm1", "127.0.0.1")
	mustOK(t, err)
	return dest
}

// wantOnSource checks that a failed migration left vm1 running on the
// source, free of the migration, and nothing on the destination.
func (p migPair) wantOnSource(t *testing.T, domID int64) {
	t.Helper()
	d, err := p.src.ListVM("r1", "vm1")
	mustOK(t, err)
	if d.State != agentapi.StateRunning || d.DomID != domID {
		t.Errorf("source domain after a failure = %+v, want running domid %d", d, domID)
	}
	waitFor(t, "the destination to release its reservation", func() bool { return p.dst.FreeMemoryMiB() == 8192-1024 })
	if _, err := p.dst.ListVM("r1", "vm1"); err == nil {
		t.Error("the VM runs on the destination after a failure")
	}
	mustOK(t, p.dst.CleanupMigrationTarget("r1", "vm1")) // idempotent
	mustOK(t, p.dst.CleanupMigrationTarget("r1", "vm1"))
	mustOK(t, p.src.PauseVM("r1", "vm1")) // no longer busy
	mustOK(t, p.src.UnpauseVM("r1", "vm1"))
}

func TestPrecopyDone(t *testing.T) {
	const n = 262144
	tests := []struct {
		rounds, dirty, sent int64
		stop, converged     bool
	}{
		{1, 49, n, true, true},
		{1, 50, n, false, false},
		{28, 1000, 10 * n / 4, false, false},
		{29, 1000, 10 * n / 4, true, false}, // the 30th round is the last
		{5, 1000, 3 * n, true, false},       // three times the memory sent
		{29, 10, 5 * n, true, true},         // converging wins over the limits
	}
	for _, tt := range tests {
		stop, conv := precopyDone(tt.rounds, tt.dirty, tt.sent, n)
		if stop != tt.stop || conv != tt.converged {
			t.Errorf("precopyDone(%d, %d, %d) = %v, %v, want %v, %v", tt.rounds, tt.dirty, tt.sent, stop, conv, tt.stop, tt.converged)
		}
	}
}

func TestMigrateLiveConverges(t *testing.T) {
	p := newMigPair(t, 1024)
	// Another domain on the destination, so the migrated one gets a new domid.
	mustOK(t, p.dst.CreateVM("r1", "other", vmParams(512, 1)))
	mustOK(t, p.dst.StartVM("r1", "other"))
	p.srcClock.Advance(100 * time.Second)
	mustOK(t, p.src.SimSet(map[string]any{SimDirty: map[string]any{"u-vm1": 100}}))
	before := domainOf(t, p.src, "vm1")

	dest := p.setup(t)
	if got, want := p.dst.FreeMemoryMiB(), int64(8192-1024-512-1024); got != want {
		t.Errorf("destination free with the reservation = %d, want %d", got, want)
	}
	wantFault(t, p.dst.StartVM("r1", "vm1"), agentapi.FaultBusy, "being migrated to this server")
	res, err := p.src.MigrateVM(t.Context(), "r1", "vm1", dest, true, false)
	mustOK(t, err)
	t.Logf("result %+v", res)
	npages := int64(1024 * pagesPerMiB)
	if !res.Converged || res.Rounds < 2 || res.Rounds > 4 {
		t.Errorf("result = %+v, want converged in 2-4 rounds", res)
	}
	if res.BytesSent < npages*pageRecordSize || res.BytesSent > 2*npages*pageRecordSize {
		t.Errorf("bytes sent = %d, want about %d (one record per page, plus the few dirtied)", res.BytesSent, npages*pageRecordSize)
	}
	if res.DowntimeMS > res.DurationMS {
		t.Errorf("downtime %d ms > duration %d ms", res.DowntimeMS, res.DurationMS)
	}

	// The domain left the source, with its memory.
	if _, err := p.src.ListVM("r1", "vm1"); err == nil {
		t.Error("the VM still runs on the source")
	}
	if got := p.src.FreeMemoryMiB(); got != 8192-1024 {
		t.Errorf("source free = %d, want all of it", got)
	}
	after := domainOf(t, p.dst, "vm1")
	want := agentapi.Domain{UUID: "u-vm1", Name: "web", DomID: 2, State: agentapi.StateRunning, MemoryMiB: 1024, VCPUs: 2,
		CPUTimeS: before.CPUTimeS, RepoID: "r1"}
	if after != want {
		t.Errorf("destination domain = %+v, want %+v", after, want)
	}
	if got, want := p.dst.FreeMemoryMiB(), int64(8192-1024-512-1024); got != want {
		t.Errorf("destination free = %d, want %d (the reservation became the domain)", got, want)
	}
	sum, err := p.dst.MemorySHA256("r1", "vm1")
	mustOK(t, err)
	if sum != res.MemorySHA256 {
		t.Errorf("destination memory %s, result says %s", sum, res.MemorySHA256)
	}
	if sum == memoryImageSHA256("u-vm1", nil, npages) {
		t.Error("the guest dirtied no page during the migration")
	}
	prog, err := p.src.OperationProgress("migrate:vm1")
	mustOK(t, err)
	if prog.State != agentapi.ProgressDone {
		t.Errorf("source progress = %+v", prog)
	}

	// The dest was single use; and the VM can migrate back.
	_, err = p.src.MigrateVM(t.Context(), "r1", "vm1", dest, true, false)
	wantFault(t, err, agentapi.FaultInvalidState, "does not run on this server")
	back, err := p.src.SetupMigrationTarget("r1", "vm1", "127.0.0.1")
	mustOK(t, err)
	res2, err := p.dst.MigrateVM(t.Context(), "r1", "vm1", back, false, true) // non-live, over TLS
	mustOK(t, err)
	if res2.Rounds != 1 || !res2.Converged || res2.DowntimeMS < res2.DurationMS/2 {
		t.Errorf("non-live result = %+v, want one round, all downtime", res2)
	}
	if res2.MemorySHA256 != res.MemorySHA256 {
		t.Errorf("memory changed while paused: %s, then %s", res.MemorySHA256, res2.MemorySHA256)
	}
	if d := domainOf(t, p.src, "vm1"); d.CPUTimeS != before.CPUTimeS || d.State != agentapi.StateRunning {
		t.Errorf("back on the source: %+v", d)
	}
	// The domain travelled with its on_crash (preserve).
	mustOK(t, p.src.SimSet(map[string]any{SimCrashVM: "vm1"}))
	if d := domainOf(t, p.src, "vm1"); d.State != agentapi.StateCrashed {
		t.Errorf("after two migrations a crash left the domain %s, want crashed (on_crash preserve)", d.State)
	}
}

func TestMigrateNonConvergence(t *testing.T) {
	p := newMigPair(t, 256)
	// A guest that writes faster than the link carries never converges:
	// pre-copy stops at three times the memory sent.
	mustOK(t, p.src.SimSet(map[string]any{SimDirty: map[string]any{"vm1": 2_000_000}}))
	res, err := p.src.MigrateVM(t.Context(), "r1", "vm1", p.setup(t), true, false)
	mustOK(t, err)
	t.Logf("result %+v", res)
	npages := int64(256 * pagesPerMiB)
	if res.Converged || res.Rounds > migrationMaxRounds || res.BytesSent < migrationMaxFactor*npages*pageRecordSize {
		t.Errorf("result = %+v, want not converged after at least %d bytes", res, migrationMaxFactor*npages*pageRecordSize)
	}
	sum, err := p.dst.MemorySHA256("r1", "vm1")
	mustOK(t, err)
	if sum != res.MemorySHA256 {
		t.Errorf("destination memory %s, result says %s", sum, res.MemorySHA256)
	}
}

func TestMigrateFailures(t *testing.T) {
	p := newMigPair(t, 1024)
	domID := domainOf(t, p.src, "vm1").DomID
	ctx := t.Context()

	// A page damaged on the destination: checksum mismatch.
	mustOK(t, p.dst.SimSet(map[string]any{SimCorruptMigration: "u-vm1"}))
	_, err := p.src.MigrateVM(ctx, "r1", "vm1", p.setup(t), true, false)
	wantFault(t, err, agentapi.FaultMigrationFailed, "memory checksum mismatch")
	p.wantOnSource(t, domID)
	prog, err := p.src.OperationProgress("migrate:vm1")
	mustOK(t, err)
	if prog.State != agentapi.ProgressFailed || !strings.Contains(prog.Phase, "checksum") {
		t.Errorf("progress = %+v", prog)
	}

	// The stream cut by the destination, then by the source.
	mustOK(t, p.dst.SimSet(map[string]any{SimBreakMigration: "vm1"}))
	_, err = p.src.MigrateVM(ctx, "r1", "vm1", p.setup(t), true, false)
	wantFault(t, err, agentapi.FaultMigrationFailed, "VM vm1 stays on server xen1")
	p.wantOnSource(t, domID)
	mustOK(t, p.src.SimSet(map[string]any{SimBreakMigration: "vm1"}))
	_, err = p.src.MigrateVM(ctx, "r1", "vm1", p.setup(t), false, false)
	wantFault(t, err, agentapi.FaultMigrationFailed, "cut the migration stream")
	p.wantOnSource(t, domID) // and unpaused again after a non-live attempt

	// A source not in the destination's pool member list.
	mustOK(t, p.dst.SetPoolMemberIPList([]string{"10.1.2.3"}))
	_, err = p.src.MigrateVM(ctx, "r1", "vm1", p.setup(t), true, false)
	wantFault(t, err, agentapi.FaultNotOwner, "accepts migrations only from its pool members (10.1.2.3)")
	p.wantOnSource(t, domID)
	mustOK(t, p.dst.SetPoolMemberIPList([]string{"10.1.2.3", "localhost"}))

	// Wrong, expired, cleaned-up and malformed dests.
	dest := p.setup(t)
	parts := strings.Split(dest, "/")
	parts[1] = strings.Repeat("0", 32)
	_, err = p.src.MigrateVM(ctx, "r1", "vm1", strings.Join(parts, "/"), true, false)
	wantFault(t, err, agentapi.FaultMigrationFailed, "token is wrong")
	mustOK(t, p.dst.CleanupMigrationTarget("r1", "vm1"))
	_, err = p.src.MigrateVM(ctx, "r1", "vm1", dest, true, false)
	wantFault(t, err, agentapi.FaultMigrationFailed, "cannot connect to the destination")
	_, err = p.src.MigrateVM(ctx, "r1", "vm1", "127.0.0.1:1", true, false)
	wantFault(t, err, agentapi.FaultInvalidArgument, "not what setup_migration_target returns")
	setTTL := func(d time.Duration) {
		p.dst.sim.mu.Lock()
		p.dst.sim.migTTL = d
		p.dst.sim.mu.Unlock()
	}
	setTTL(20 * time.Millisecond)
	dest = p.setup(t)
	waitFor(t, "the target to expire", func() bool { return p.dst.FreeMemoryMiB() == 8192-1024 })
	_, err = p.src.MigrateVM(ctx, "r1", "vm1", dest, true, false)
	wantFault(t, err, agentapi.FaultMigrationFailed, "cannot connect")
	setTTL(MigrationTargetTTL)

	// A wrong pin for TLS.
	dest = p.setup(t)
	_, err = p.src.MigrateVM(ctx, "r1", "vm1", dest[:len(dest)-4]+"0000", true, true)
	wantFault(t, err, agentapi.FaultMigrationFailed, "TLS handshake")
	mustOK(t, p.dst.CleanupMigrationTarget("r1", "vm1"))
	p.wantOnSource(t, domID)

	// Abandoned by the caller.
	mustOK(t, p.src.SimSet(map[string]any{SimMigrationMiBPerS: 64}))
	cctx, cancel := context.WithCancel(ctx)
	dest = p.setup(t)
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = p.src.MigrateVM(cctx, "r1", "vm1", dest, true, false)
	wantFault(t, err, agentapi.FaultMigrationFailed, "abandoned")
	mustOK(t, p.dst.CleanupMigrationTarget("r1", "vm1")) // in case it was abandoned before it connected
	p.wantOnSource(t, domID)
}

func TestMigrateTargetChecks(t *testing.T) {
	p := newMigPair(t, 1024)
	_, err := p.src.SetupMigrationTarget("r1", "vm1", "127.0.0.1")
	wantFault(t, err, agentapi.FaultInvalidState, "already running on this server")
	_, err = p.dst.SetupMigrationTarget("r1", "nope", "127.0.0.1")
	wantFault(t, err, agentapi.FaultNotFound, "VM nope not found")
	_, err = p.dst.SetupMigrationTarget("r9", "vm1", "127.0.0.1")
	wantFault(t, err, agentapi.FaultNotFound, "r9")
	mustOK(t, p.src.CreateVM("r1", "huge", vmParams(7000, 1)))
	mustOK(t, p.dst.CreateVM("r1", "big", vmParams(4000, 1)))
	mustOK(t, p.dst.StartVM("r1", "big"))
	_, err = p.dst.SetupMigrationTarget("r1", "huge", "127.0.0.1")
	wantFault(t, err, agentapi.FaultInsufficientResources, "needs 7000 MiB, 3168 MiB free on server xen2")

	// A second setup replaces an unused target: one reservation, the old
	// dest dead.
	old := p.setup(t)
	p.setup(t)
	if got := p.dst.FreeMemoryMiB(); got != 8192-1024-4000-1024 {
		t.Errorf("free after two setups = %d, want one reservation", got)
	}
	_, err = p.src.MigrateVM(t.Context(), "r1", "vm1", old, true, false)
	wantFault(t, err, agentapi.FaultMigrationFailed, "cannot connect")
	wantFault(t, p.dst.DeleteVM("r1", "vm1"), agentapi.FaultBusy, "being migrated")
	mustOK(t, p.dst.CleanupMigrationTarget("r1", "vm1"))

	// Only a domain that holds memory migrates.
	mustOK(t, p.src.SimSet(map[string]any{SimCrashVM: "vm1"}))
	_, err = p.src.MigrateVM(t.Context(), "r1", "vm1", p.setup(t), true, false)
	wantFault(t, err, agentapi.FaultInvalidState, "is crashed")
}

func TestMigrateBusy(t *testing.T) {
	p := newMigPair(t, 512)
	// 512 MiB at 512 MiB/s: about a second in flight.
	mustOK(t, p.src.SimSet(map[string]any{SimMigrationMiBPerS: 512}))
	dest := p.setup(t)
	type result struct {
		res agentapi.MigrationResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := p.src.MigrateVM(context.Background(), "r1", "vm1", dest, true, false)
		done <- result{res, err}
	}()
	waitFor(t, "round 1 under way", func() bool {
		pr, err := p.src.OperationProgress("migrate:vm1")
		return err == nil && pr.Phase == "round 1" && pr.Done > 0
	})
	busy := "busy with operation migrate:vm1"
	wantFault(t, p.src.StopVM("r1", "vm1", true), agentapi.FaultBusy, busy)
	wantFault(t, p.src.PauseVM("r1", "vm1"), agentapi.FaultBusy, busy)
	wantFault(t, p.src.RebootVM("r1", "vm1", 0), agentapi.FaultBusy, busy)
	wantFault(t, p.src.SaveVM("r1", "vm1", true), agentapi.FaultBusy, busy)
	wantFault(t, p.src.ConfigureVM("r1", "vm1", agentapi.VMParams{"memory": 256}), agentapi.FaultBusy, busy)
	_, err := p.src.MigrateVM(t.Context(), "r1", "vm1", dest, true, false)
	wantFault(t, err, agentapi.FaultBusy, busy)
	_, err = p.dst.SetupMigrationTarget("r1", "vm1", "127.0.0.1")
	wantFault(t, err, agentapi.FaultBusy, "migrating to this server now")
	if pr, err := p.dst.OperationProgress("migrate:vm1"); err != nil || !strings.HasPrefix(pr.Phase, "receiving round") {
		t.Errorf("destination progress = %+v, %v", pr, err)
	}
	r := <-done
	mustOK(t, r.err)
	if d := domainOf(t, p.dst, "vm1"); d.State != agentapi.StateRunning {
		t.Errorf("destination domain = %+v", d)
	}
}
