package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"xenmanager/backend/agent"
	"xenmanager/backend/agent/agenttest"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
)

// The tests of HA leases and fencing run real agents on 127.0.0.1 that
// share one repository directory, as the servers of a pool share the
// pool's HA repository; two of them run the agent as a process of its own,
// to freeze it (SIGSTOP) and kill it (SIGKILL) for real (ha_process_test.go).

const (
	haPool = "pool-ha"
	haRepo = "repo-ha"
	// haMount is where every agent mounts the shared repository.
	haMount = "/OVS/Repositories/" + haRepo
)

// haFast are the lease settings of the tests where only what happens in
// the end matters; haSteady those where a live lease must stay live
// across a few calls on a loaded machine.
var (
	haFast   = agentapi.HAParams{RenewIntervalMS: 200, FenceTimeoutMS: 1000}
	haSteady = agentapi.HAParams{RenewIntervalMS: 200, FenceTimeoutMS: 3000}
)

// haNode is one server of a test pool: its agent's client and its name.
type haNode struct {
	name string
	c    *agentclient.Client
	a    *agenttest.Agent // nil for an agent process
}

func clientFor(t *testing.T, port int, password, pin string) *agentclient.Client {
	t.Helper()
	c, err := agentclient.New(agentclient.Config{Address: "127.0.0.1", Port: port, Password: password, PinSHA256: pin, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func startNode(t *testing.T, name string) *haNode {
	t.Helper()
	a := agenttest.Start(t, agent.Config{Hostname: name, CPUs: 4, MemoryMiB: 8192})
	return &haNode{name: name, c: clientFor(t, a.Port(), a.Password, a.SPKISHA256()), a: a}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantFault fails unless err is an agent fault of code containing sub.
func wantFault(t *testing.T, err error, code agentapi.FaultCode, sub string) {
	t.Helper()
	f, ok := agentapi.AsFault(err)
	if !ok || f.Code != code || !strings.Contains(f.Message, sub) {
		t.Fatalf("err = %v, want a %s fault containing %q", err, code.Kind(), sub)
	}
}

// eventually polls cond until it holds, failing after a generous bound.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// joinHAPool puts the nodes in one pool with the shared repository at
// repoDir (the first creates both) and configures HA on each with p.
func joinHAPool(t *testing.T, repoDir string, p agentapi.HAParams, nodes ...*haNode) {
	t.Helper()
	ctx := t.Context()
	for i, n := range nodes {
		pp := agentapi.PoolParams{Alias: "ha", PoolUUID: haPool, Num: int64(i + 1), Name: n.name, Host: "127.0.0.1"}
		if i == 0 {
			must(t, n.c.CreateRepository(ctx, repoDir, haMount, haRepo, "shared"))
			must(t, n.c.CreateServerPool(ctx, pp))
		} else {
			must(t, n.c.AddRepository(ctx, repoDir, haMount))
			must(t, n.c.JoinServerPool(ctx, pp))
		}
		must(t, n.c.SetPoolMemberIPList(ctx, []string{"127.0.0.1"}))
		must(t, n.c.HAConfigure(ctx, haPool, haRepo, n.name, p))
	}
}

func createVM(t *testing.T, n *haNode, vm string, ha bool) {
	t.Helper()
	params := agentapi.VMParams{"name": vm, "uuid": vm, "memory": 256, "vcpus": 1}
	if ha {
		params[agentapi.KeyHA] = true
	}
	must(t, n.c.CreateVM(t.Context(), haRepo, vm, params))
}

// vmLeaseFile reads a VM's lease in the shared repository, as any server
// would.
func vmLeaseFile(t *testing.T, repoDir, vm string) (holder string, counter int64) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoDir, ".ha", haPool, "vms", vm+".lease"))
	must(t, err)
	var l struct {
		ServerID string `json:"server_id"`
		Counter  int64  `json:"counter"`
	}
	must(t, json.Unmarshal(data, &l))
	return l.ServerID, l.Counter
}

func domainsOf(t *testing.T, n *haNode) []string {
	t.Helper()
	doms, err := n.c.ListVMs(t.Context())
	must(t, err)
	var out []string
	for _, d := range doms {
		out = append(out, d.UUID)
	}
	return out
}

func hasEvent(t *testing.T, n *haNode, kind, detail string) bool {
	t.Helper()
	ev, err := n.c.GetEvents(t.Context(), 0)
	must(t, err)
	for _, e := range ev.Events {
		if e.Kind == kind && strings.Contains(e.Detail, detail) {
			return true
		}
	}
	return false
}

// An agent of an HA pool writes its server lease and renews it; a peer
// reads it; a started VM's lease names the server, and a stop releases it.
func TestHALeaseWrittenAndRenewed(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	a, b := startNode(t, "ovs-a"), startNode(t, "ovs-b")
	ctx := t.Context()
	v, err := a.c.GetAPIVersion(ctx)
	must(t, err)
	if !v.Has(agentapi.ExtHALeases) {
		t.Fatalf("get_api_version lists %v, not %s", v.Extensions, agentapi.ExtHALeases)
	}
	joinHAPool(t, repo, haFast, a, b)

	leaseOfA := func() (counter int64) {
		data, err := os.ReadFile(filepath.Join(repo, ".ha", haPool, "servers", "ovs-a.lease"))
		must(t, err)
		var l struct {
			ServerID string `json:"server_id"`
			Hostname string `json:"hostname"`
			Renewed  int64  `json:"renewed_unix_ms"`
			Counter  int64  `json:"counter"`
		}
		must(t, json.Unmarshal(data, &l))
		if l.ServerID != "ovs-a" || l.Hostname != "ovs-a" || l.Renewed <= 0 {
			t.Fatalf("server lease of ovs-a: %s", data)
		}
		return l.Counter
	}
	first := leaseOfA()
	eventually(t, "three renewals of ovs-a's lease", func() bool { return leaseOfA() >= first+3 })
	seen, err := b.c.HAReadLeases(ctx, []string{"ovs-a", "ovs-x"})
	must(t, err)
	if len(seen) != 2 || !seen[0].Found || seen[0].Hostname != "ovs-a" || seen[0].Counter < first+3 ||
		seen[0].AgeMS >= haFast.FenceTimeoutMS || seen[1].Found {
		t.Errorf("ovs-b reads %+v", seen)
	}
	st, err := a.c.HAStatus(ctx)
	must(t, err)
	if !st.Enabled || st.PoolUUID != haPool || st.RepoUUID != haRepo || st.ServerID != "ovs-a" || st.RenewIntervalMS != 200 ||
		st.FenceTimeoutMS != 1000 || st.LastRenewalAgeMS < 0 || st.LastRenewalAgeMS >= 1000 || st.Fenced || st.LastError != "" {
		t.Errorf("ha_status of ovs-a: %+v", st)
	}

	createVM(t, a, "vm1", false)
	must(t, a.c.StartVM(ctx, haRepo, "vm1"))
	if holder, _ := vmLeaseFile(t, repo, "vm1"); holder != "ovs-a" {
		t.Fatalf("vm1's lease names %q after its start on ovs-a", holder)
	}
	_, c1 := vmLeaseFile(t, repo, "vm1")
	eventually(t, "a renewal of vm1's lease", func() bool { _, c := vmLeaseFile(t, repo, "vm1"); return c > c1 })
	vl, err := b.c.HAReadVMLeases(ctx, []string{"vm1"})
	must(t, err)
	if len(vl) != 1 || !vl[0].Found || vl[0].ServerID != "ovs-a" || !vl[0].Live {
		t.Errorf("vm1's lease as ovs-b reads it: %+v", vl)
	}
	must(t, a.c.StopVM(ctx, haRepo, "vm1", false))
	if holder, _ := vmLeaseFile(t, repo, "vm1"); holder != "" {
		t.Errorf("vm1's lease names %q after its stop, want released", holder)
	}

	// ha_disable removes the server lease and stops renewing.
	must(t, a.c.HADisable(ctx))
	if _, err := os.Stat(filepath.Join(repo, ".ha", haPool, "servers", "ovs-a.lease")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ovs-a's lease after ha_disable: %v", err)
	}
	if st, _ := a.c.HAStatus(ctx); st.Enabled {
		t.Errorf("ha_status after ha_disable: %+v", st)
	}
	must(t, a.c.HADisable(ctx)) // not configured: true anyway
}

// ha_configure checks its arguments and the server before it writes
// anything.
func TestHAConfigureRefusals(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	a, loner := startNode(t, "ovs-a"), startNode(t, "ovs-loner")
	ctx := t.Context()
	must(t, a.c.CreateRepository(ctx, repo, haMount, haRepo, "shared"))
	must(t, loner.c.AddRepository(ctx, repo, haMount))
	must(t, a.c.CreateServerPool(ctx, agentapi.PoolParams{Alias: "ha", PoolUUID: haPool, Num: 1, Name: "ovs-a"}))
	_, err := a.c.HAReadLeases(ctx, []string{"ovs-b"})
	wantFault(t, err, agentapi.FaultInvalidState, "HA is not configured on server ovs-a")
	for _, tc := range []struct {
		name                 string
		n                    *haNode
		pool, repo, serverID string
		params               map[string]any
		code                 agentapi.FaultCode
		sub                  string
	}{
		{"renew too often", a, haPool, haRepo, "ovs-a", map[string]any{"renew_interval_ms": 50, "fence_timeout_ms": 1000},
			agentapi.FaultInvalidArgument, "renew_interval_ms must be at least 100, got 50"},
		{"fence too soon", a, haPool, haRepo, "ovs-a", map[string]any{"renew_interval_ms": 500, "fence_timeout_ms": 1000},
			agentapi.FaultInvalidArgument, "fence_timeout_ms must be at least 3 times renew_interval_ms (1500), got 1000"},
		{"fence too late", a, haPool, haRepo, "ovs-a", map[string]any{"renew_interval_ms": 500, "fence_timeout_ms": 700000},
			agentapi.FaultInvalidArgument, "fence_timeout_ms must be at most 600000 (10 minutes)"},
		{"params missing", a, haPool, haRepo, "ovs-a", map[string]any{},
			agentapi.FaultInvalidArgument, "params.renew_interval_ms is missing"},
		{"server id that names no file", a, haPool, haRepo, "../ovs-a", haFast.Struct(),
			agentapi.FaultInvalidArgument, `server id "../ovs-a" is not valid`},
		{"unknown repository", a, haPool, "repo-x", "ovs-a", haFast.Struct(),
			agentapi.FaultNotFound, "repository repo-x is not known on this server"},
		{"another pool", a, "pool-x", haRepo, "ovs-a", haFast.Struct(),
			agentapi.FaultInvalidState, "server ovs-a is in pool pool-ha, not in pool pool-x"},
		{"in no pool", loner, haPool, haRepo, "ovs-loner", haFast.Struct(),
			agentapi.FaultInvalidState, "server ovs-loner is in no pool"},
	} {
		err := tc.n.c.Call(ctx, agentapi.MethodHAConfigure, nil, tc.pool, tc.repo, tc.serverID, tc.params)
		wantFault(t, err, tc.code, tc.sub)
	}
	if _, err := os.Stat(filepath.Join(repo, ".ha")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused ha_configure wrote in the repository: %v", err)
	}
	// A repository this server cannot write to.
	must(t, a.a.Sim().SimSet(map[string]any{"ha_storage_fail": true}))
	err = a.c.HAConfigure(ctx, haPool, haRepo, "ovs-a", haFast)
	wantFault(t, err, agentapi.FaultInvalidState, "server ovs-a cannot write its lease in repository repo-ha: write .ha/pool-ha/servers/ovs-a.lease: the repository is unreachable")
	if strings.Contains(err.Error(), repo) {
		t.Errorf("the fault shows where the repository is mounted: %v", err)
	}
	if st, _ := a.c.HAStatus(ctx); st.Enabled {
		t.Errorf("ha_status after a refused ha_configure: %+v", st)
	}
	must(t, a.a.Sim().SimSet(map[string]any{"ha_storage_fail": false}))
	must(t, a.c.HAConfigure(ctx, haPool, haRepo, "ovs-a", haFast))
	err = a.c.DeleteRepository(ctx, haRepo, false)
	wantFault(t, err, agentapi.FaultInvalidState, "holds this server's HA leases of pool pool-ha; ha_disable first")
}

// start_vm on B is refused while A holds the VM's live lease, and allowed
// once A's lease lapsed (A's agent stopped: its simulated domains died
// with it, and nothing renews its leases).
func TestHAStartRefusedWhileLeaseLive(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	aAgent, addr, err := agent.Start(agent.Config{DataDir: t.TempDir(), Password: "pw-a", Hostname: "ovs-a", SimControl: true,
		Logger: agenttestLogger()}, "127.0.0.1:0")
	must(t, err)
	stopA := sync.OnceFunc(func() { _ = aAgent.Shutdown(context.Background()) })
	t.Cleanup(stopA)
	a := &haNode{name: "ovs-a", c: clientFor(t, portOf(addr.String()), "pw-a", aAgent.SPKISHA256())}
	b := startNode(t, "ovs-b")
	joinHAPool(t, repo, haSteady, a, b)
	ctx := t.Context()
	createVM(t, a, "vm1", true)
	must(t, a.c.StartVM(ctx, haRepo, "vm1"))

	err = b.c.StartVM(ctx, haRepo, "vm1")
	wantFault(t, err, agentapi.FaultInvalidState, "Vm vm1 holds a live lease of server ovs-a (renewed ")
	if doms := domainsOf(t, b); len(doms) != 0 {
		t.Fatalf("ovs-b runs %v after a refused start", doms)
	}
	err = b.c.RestoreVM(ctx, haRepo, "vm1", false)
	wantFault(t, err, agentapi.FaultInvalidState, "holds a live lease of server ovs-a")

	stopA()
	refused := 0
	eventually(t, "ovs-b to start vm1 once ovs-a's lease lapsed", func() bool {
		err := b.c.StartVM(ctx, haRepo, "vm1")
		if err != nil {
			wantFault(t, err, agentapi.FaultInvalidState, "holds a live lease of server ovs-a")
			refused++
		}
		return err == nil
	})
	if holder, _ := vmLeaseFile(t, repo, "vm1"); holder != "ovs-b" {
		t.Errorf("vm1's lease names %q", holder)
	}
	t.Logf("start refused %d times while ovs-a's lease lapsed", refused)
}

func portOf(addr string) int {
	var port int
	fmt.Sscanf(addr[strings.LastIndex(addr, ":")+1:], "%d", &port)
	return port
}

// Two servers starting one VM at once: exactly one wins, every time.
func TestHARacingStarts(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	a, b := startNode(t, "ovs-a"), startNode(t, "ovs-b")
	joinHAPool(t, repo, haSteady, a, b)
	ctx := t.Context()
	createVM(t, a, "vm1", true)
	const rounds = 25
	wins := map[string]int{}
	for round := range rounds {
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, n := range []*haNode{a, b} {
			wg.Go(func() { errs[i] = n.c.StartVM(ctx, haRepo, "vm1") })
		}
		wg.Wait()
		var winner *haNode
		for i, n := range []*haNode{a, b} {
			if errs[i] == nil {
				if winner != nil {
					t.Fatalf("round %d: both servers started vm1", round)
				}
				winner = n
				continue
			}
			f, ok := agentapi.AsFault(errs[i])
			if !ok || !(f.Code == agentapi.FaultInvalidState && strings.Contains(f.Message, "holds a live lease of server")) && f.Code != agentapi.FaultBusy {
				t.Fatalf("round %d: the loser on %s: %v", round, n.name, errs[i])
			}
		}
		if winner == nil {
			t.Fatalf("round %d: neither server started vm1: %v", round, errs)
		}
		wins[winner.name]++
		if da, db := domainsOf(t, a), domainsOf(t, b); len(da)+len(db) != 1 {
			t.Fatalf("round %d: domains on ovs-a %v, on ovs-b %v", round, da, db)
		}
		must(t, winner.c.StopVM(ctx, haRepo, "vm1", true))
	}
	t.Logf("wins out of %d rounds: %v", rounds, wins)
}

// A server that cannot reach the HA repository fences itself: it
// destroys every domain within the fence timeout and says so; once the
// repository answers again it renews its lease and may start VMs again.
func TestHAStorageFailureFences(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	a, b := startNode(t, "ovs-a"), startNode(t, "ovs-b")
	joinHAPool(t, repo, haFast, a, b)
	ctx := t.Context()
	createVM(t, a, "vm-ha", true)
	createVM(t, a, "vm-plain", false)
	must(t, a.c.StartVM(ctx, haRepo, "vm-ha"))
	must(t, a.c.StartVM(ctx, haRepo, "vm-plain"))
	must(t, a.c.PauseVM(ctx, haRepo, "vm-plain"))

	cut := time.Now()
	must(t, a.a.Sim().SimSet(map[string]any{"ha_storage_fail": true}))
	// The domains go by themselves (the watchdog), without a call.
	eventually(t, "ovs-a to fence", func() bool { return len(must1(a.a.Host().ListVMs())) == 0 })
	t.Logf("ovs-a fenced %v after its repository became unreachable (fence timeout %d ms)", time.Since(cut).Round(time.Millisecond), haFast.FenceTimeoutMS)
	if !hasEvent(t, a, agentapi.EventHAFenced, "stopped 2 domains") {
		ev, _ := a.c.GetEvents(ctx, 0)
		t.Errorf("no ha_fenced event: %+v", ev.Events)
	}
	st, err := a.c.HAStatus(ctx)
	must(t, err)
	if !st.Fenced || st.FencedCount != 1 || st.LastFenceUnix == 0 || !strings.Contains(st.LastError, "the repository is unreachable") ||
		st.LastRenewalAgeMS < haFast.FenceTimeoutMS || strings.Contains(st.LastError, repo) {
		t.Errorf("ha_status of the fenced server: %+v", st)
	}
	err = a.c.StartVM(ctx, haRepo, "vm-ha")
	wantFault(t, err, agentapi.FaultInvalidState, "server ovs-a cannot start Vm vm-ha: its own HA lease in repository repo-ha was last renewed")
	// Its peer takes the HA VM over once its lease lapsed.
	eventually(t, "ovs-b to start vm-ha", func() bool { return b.c.StartVM(ctx, haRepo, "vm-ha") == nil })

	must(t, a.a.Sim().SimSet(map[string]any{"ha_storage_fail": false}))
	eventually(t, "ovs-a to renew its lease again", func() bool {
		st, err := a.c.HAStatus(ctx)
		must(t, err)
		return !st.Fenced && st.LastError == ""
	})
	if st, _ := a.c.HAStatus(ctx); st.FencedCount != 1 {
		t.Errorf("fenced_count after the repository came back: %+v", st)
	}
	must(t, a.c.StartVM(ctx, haRepo, "vm-plain"))
	err = a.c.StartVM(ctx, haRepo, "vm-ha")
	wantFault(t, err, agentapi.FaultInvalidState, "Vm vm-ha holds a live lease of server ovs-b")
}

func must1[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// A live migration between two HA servers: the source keeps renewing the
// VM's lease while the domain migrates, releases it once the domain left,
// and the destination takes it; at no time do both run the VM, and the
// lease never names a server that does not run it once the move is done.
func TestHAMigrationKeepsOneHolder(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	a, b := startNode(t, "ovs-a"), startNode(t, "ovs-b")
	joinHAPool(t, repo, haFast, a, b)
	ctx := t.Context()
	createVM(t, a, "vm1", true)
	must(t, a.c.StartVM(ctx, haRepo, "vm1"))
	// Slow enough to outlast the fence timeout: a lease not renewed while
	// the domain migrates would lapse.
	must(t, a.a.Sim().SimSet(map[string]any{"migration_mib_per_s": 64}))

	for _, move := range []struct{ from, to *haNode }{{a, b}, {b, a}} {
		dest, err := move.to.c.SetupMigrationTarget(ctx, haRepo, "vm1")
		must(t, err)
		done := make(chan error, 1)
		go func() {
			_, err := move.from.c.MigrateVM(ctx, haRepo, "vm1", dest, true, false)
			done <- err
		}()
		polls := 0
	migrating:
		for {
			select {
			case err := <-done:
				must(t, err)
				break migrating
			default:
			}
			vl, err := move.to.c.HAReadVMLeases(ctx, []string{"vm1"})
			must(t, err)
			holder := vl[0].ServerID
			if holder != move.from.name && holder != move.to.name && holder != "" || holder == move.from.name && !vl[0].Live {
				t.Fatalf("%s to %s: the lease during the migration: %+v", move.from.name, move.to.name, vl[0])
			}
			if ra, rb := runningOn(t, a), runningOn(t, b); len(ra)+len(rb) > 1 {
				t.Fatalf("%s to %s: vm1 runs on ovs-a %v and on ovs-b %v", move.from.name, move.to.name, ra, rb)
			}
			polls++
			time.Sleep(50 * time.Millisecond)
		}
		if holder, _ := vmLeaseFile(t, repo, "vm1"); holder == move.from.name {
			t.Fatalf("%s to %s: the source still holds the lease after the migration", move.from.name, move.to.name)
		}
		eventually(t, "the destination to take the lease", func() bool {
			holder, _ := vmLeaseFile(t, repo, "vm1")
			return holder == move.to.name
		})
		// It stays there, and the VM runs on the destination only.
		_, c := vmLeaseFile(t, repo, "vm1")
		eventually(t, "two renewals by the destination", func() bool {
			holder, c2 := vmLeaseFile(t, repo, "vm1")
			if holder != move.to.name {
				t.Fatalf("the lease moved to %q", holder)
			}
			return c2 >= c+2
		})
		if from, to := domainsOf(t, move.from), domainsOf(t, move.to); len(from) != 0 || len(to) != 1 {
			t.Fatalf("after %s to %s: %v on the source, %v on the destination", move.from.name, move.to.name, from, to)
		}
		t.Logf("%s to %s: %d polls during the migration", move.from.name, move.to.name, polls)
	}
}

func agenttestLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// runningOn are the VMs whose domains run (or are blocked) on n: a domain
// paused for the last round of a migration is not running.
func runningOn(t *testing.T, n *haNode) []string {
	t.Helper()
	doms, err := n.c.ListVMs(t.Context())
	must(t, err)
	var out []string
	for _, d := range doms {
		if d.State == agentapi.StateRunning || d.State == agentapi.StateBlocked {
			out = append(out, d.UUID)
		}
	}
	return out
}
