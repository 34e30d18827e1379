package halease

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"xenmanager/backend/agent/internal/testkit"
	"xenmanager/backend/agentapi"
)

// fakeHost is the hypervisor side of a keeper in these unit tests: a set
// of domains the test puts there, and the events the keeper raised. The
// keeper's work with real agents and the simulated hypervisor is tested in
// backend/agent (ha_test.go).
type fakeHost struct {
	mu       sync.Mutex // guards the fields below
	doms     map[string]Domain
	ha       map[string]bool // by uuid
	events   []agentapi.Event
	busy     map[string]int // by uuid: Destroy fails Busy this many times
	canceled []string       // CancelIncoming calls, by VM id
}

func newFakeHost() *fakeHost {
	return &fakeHost{doms: map[string]Domain{}, ha: map[string]bool{}, busy: map[string]int{}}
}

func (f *fakeHost) run(uuid, state string, ha bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.doms["r1/"+uuid] = Domain{UUID: uuid, RepoID: "r1", VMID: uuid, State: state}
	f.ha[uuid] = ha
}

func (f *fakeHost) has(uuid string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.doms["r1/"+uuid]
	return ok
}

func (f *fakeHost) kinds() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.events {
		out = append(out, e.Kind)
	}
	return out
}

func (f *fakeHost) Domains() ([]Domain, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Domain, 0, len(f.doms))
	for _, d := range f.doms {
		out = append(out, d)
	}
	return out, nil
}

func (f *fakeHost) Domain(repoID, vmID string) (Domain, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.doms[repoID+"/"+vmID]
	return d, ok, nil
}

func (f *fakeHost) Destroy(repoID, vmID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.doms[repoID+"/"+vmID]
	if !ok {
		return agentapi.Errorf(agentapi.FaultNotFound, "VM %s is not running", vmID)
	}
	if f.busy[d.UUID] > 0 {
		f.busy[d.UUID]--
		return agentapi.Errorf(agentapi.FaultBusy, "VM %s is busy", vmID)
	}
	delete(f.doms, repoID+"/"+vmID)
	return nil
}

func (f *fakeHost) CancelIncoming(_, vmID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.canceled = append(f.canceled, vmID)
}

func (f *fakeHost) IsHA(_, vmID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ha[vmID]
}

func (f *fakeHost) Emit(e agentapi.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, e)
}

var testParams = agentapi.HAParams{RenewIntervalMS: 200, FenceTimeoutMS: 1000}

// testKeeper is a keeper of server id on a fake host, with a settable
// clock and no loop or watchdog of its own: the test calls tick and Gate.
type testKeeper struct {
	*Keeper
	host  *fakeHost
	clock *testkit.Clock
	cfg   Config
	fail  *atomic.Bool
}

func newTestKeeper(t *testing.T, root, id string, clock *testkit.Clock) *testKeeper {
	t.Helper()
	host := newFakeHost()
	fail := &atomic.Bool{}
	k := New(Options{Hostname: "host-" + id, Host: host, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Fault: fail.Load})
	k.manual = true
	k.now = clock.Now
	cfg := Config{PoolUUID: "pool1", RepoUUID: "repo1", ServerID: id, Root: root, Params: testParams}
	return &testKeeper{Keeper: k, host: host, clock: clock, cfg: cfg, fail: fail}
}

func (k *testKeeper) configure(t *testing.T) {
	t.Helper()
	if err := k.Configure(k.cfg); err != nil {
		t.Fatal(err)
	}
}

func readLease(t *testing.T, s *Store, uuid string) Lease {
	t.Helper()
	l, found, err := s.ReadVM(uuid)
	if err != nil || !found {
		t.Fatalf("lease of %s: found %v, %v", uuid, found, err)
	}
	return l
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       Lease
		bad        bool
	}{
		{"a lease", `{"server_id":"s1","hostname":"h1","renewed_unix_ms":1700000000000,"counter":7}`, Lease{"s1", "h1", 1700000000000, 7}, false},
		{"released", `{"server_id":"","hostname":"h1","renewed_unix_ms":5,"counter":8}` + "\n", Lease{"", "h1", 5, 8}, false},
		{"empty", ``, Lease{}, true},
		{"garbage", `\x00\x01 not json`, Lease{}, true},
		{"cut short", `{"server_id":"s1","hostn`, Lease{}, true},
		{"unknown member", `{"server_id":"s1","holder":"s2"}`, Lease{}, true},
		{"two objects", `{"server_id":"s1"} {"server_id":"s2"}`, Lease{}, true},
		{"negative time", `{"server_id":"s1","renewed_unix_ms":-1}`, Lease{}, true},
		{"string counter", `{"server_id":"s1","counter":"7"}`, Lease{}, true},
		{"an array", `[1,2]`, Lease{}, true},
	} {
		got, err := Parse([]byte(tc.data))
		if tc.bad != (err != nil) || !tc.bad && got != tc.want {
			t.Errorf("%s: Parse = %+v, %v; want %+v, unreadable %v", tc.name, got, err, tc.want, tc.bad)
		}
		if tc.bad && !errors.Is(err, ErrUnreadable) {
			t.Errorf("%s: err = %v, want ErrUnreadable", tc.name, err)
		}
	}
}

func TestLeaseLive(t *testing.T) {
	now := time.UnixMilli(1_700_000_010_000)
	for _, tc := range []struct {
		holder string
		ageMS  int64
		live   bool
	}{
		{"s1", 0, true},
		{"s1", 999, true},
		{"s1", 1000, false},
		{"s1", 60_000, false},
		{"", 0, false},       // released
		{"s1", -5_000, true}, // renewed by a clock ahead of the reader's
	} {
		l := Lease{ServerID: tc.holder, RenewedUnixMS: now.UnixMilli() - tc.ageMS}
		if got := l.Live(now, time.Second); got != tc.live {
			t.Errorf("holder %q renewed %d ms ago: Live = %v, want %v", tc.holder, tc.ageMS, got, tc.live)
		}
	}
}

// Errors name the file relative to the repository, never the directory
// the repository is mounted at.
func TestStoreErrorsInOwnWords(t *testing.T) {
	root := filepath.Join(t.TempDir(), "secret-mount")
	testkit.MustOK(t, os.MkdirAll(root, 0o755))
	s := NewStore(root, "pool1", nil)
	testkit.MustOK(t, s.WriteServer(Lease{ServerID: "s1", RenewedUnixMS: 1}))
	testkit.MustOK(t, s.WriteVM("vm1", Lease{}))
	testkit.MustOK(t, os.WriteFile(filepath.Join(root, s.VMRel("vm1")), []byte("garbage"), 0o644))
	_, found, err := s.ReadVM("vm1")
	if !found || !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), ".ha/pool1/vms/vm1.lease") {
		t.Errorf("garbage lease: found %v, err %v", found, err)
	}
	if os.Getuid() != 0 { // root writes anywhere
		testkit.MustOK(t, os.Chmod(filepath.Join(root, ".ha", "pool1", "servers"), 0o555))
		t.Cleanup(func() { os.Chmod(filepath.Join(root, ".ha", "pool1", "servers"), 0o755) })
		err = s.WriteServer(Lease{ServerID: "s1", RenewedUnixMS: 2})
		if err == nil || strings.Contains(err.Error(), root) || !strings.Contains(err.Error(), "write .ha/pool1/servers/s1.lease: permission denied") {
			t.Errorf("write into a read-only directory: %v", err)
		}
	}
	fault := NewStore(root, "pool1", func() bool { return true })
	if _, _, err := fault.ReadServer("s1"); !errors.Is(err, ErrStorageFault) {
		t.Errorf("read with the storage fault on: %v", err)
	}
}

// The VM's lock excludes another store (another open file, as another
// process has) until it is released; the loser gives up after its wait.
func TestLockVMExcludes(t *testing.T) {
	root := t.TempDir()
	a, b := NewStore(root, "pool1", nil), NewStore(root, "pool1", nil)
	b.lockWait = 50 * time.Millisecond
	unlock, err := a.LockVM("vm1")
	testkit.MustOK(t, err)
	if _, err := b.LockVM("vm1"); !errors.Is(err, ErrLockBusy) {
		t.Fatalf("second lock while the first is held: %v, want ErrLockBusy", err)
	}
	if u2, err := b.LockVM("vm2"); err != nil {
		t.Fatalf("another VM's lock: %v", err)
	} else {
		u2()
	}
	unlock()
	u3, err := b.LockVM("vm1")
	testkit.MustOK(t, err)
	u3()
}

// Servers racing to start one VM: exactly one takes its lease each time.
// Each keeper has its own store, so the lock is the file lock between
// open files, as between servers.
func TestTakeRace(t *testing.T) {
	root := t.TempDir()
	clock := testkit.NewClock(time.Now())
	const servers, rounds = 6, 40
	keepers := make([]*testKeeper, servers)
	for i := range keepers {
		keepers[i] = newTestKeeper(t, root, fmt.Sprintf("s%d", i), clock)
		keepers[i].configure(t)
	}
	for round := range rounds {
		uuid := fmt.Sprintf("vm%d", round)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for _, k := range keepers {
			wg.Go(func() {
				s, err := k.BeginStart(uuid, "r1", uuid)
				if err == nil {
					wins.Add(1)
					k.host.run(uuid, agentapi.StateRunning, false)
					testkit.MustOK(t, s.End(nil))
					return
				}
				if f, ok := agentapi.AsFault(err); !ok || f.Code != agentapi.FaultInvalidState || !strings.Contains(f.Message, "holds a live lease of server host-s") {
					t.Errorf("round %d: a loser's fault: %v", round, err)
				}
			})
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("round %d: %d servers took the lease, want exactly 1", round, n)
		}
	}
}

// What a renewal does with the lease of a domain running here, by what the
// lease says and whether the domain migrates.
func TestRenewDecisions(t *testing.T) {
	type lease struct {
		holder string
		ageMS  int64
		raw    string // written instead when set
	}
	for _, tc := range []struct {
		name         string
		lease        *lease // nil: no lease file
		incoming     bool
		outgoing     bool
		wantHolder   string // after the renewal
		wantDomain   bool   // the domain still runs here
		wantLostEvnt bool
		// ended: the domain is listed, then gone when read again (a start
		// that failed on a locked disk, between the hypervisor's list and
		// its read of the domain): nothing is written, destroyed or failed.
		ended bool
	}{
		{"no lease: taken", nil, false, false, "me", true, false, false},
		{"ours: renewed", &lease{"me", 500, ""}, false, false, "me", true, false, false},
		{"released: taken", &lease{"", 10, ""}, false, false, "me", true, false, false},
		{"another's, lapsed: taken", &lease{"other", 5000, ""}, false, false, "me", true, false, false},
		{"unreadable: taken by the server running it", &lease{raw: "garbage"}, false, false, "me", true, false, false},
		{"another's, live: the copy here is destroyed", &lease{"other", 100, ""}, false, false, "other", false, true, false},
		{"another's, live, migrating in: kept, not taken", &lease{"other", 100, ""}, true, false, "other", true, false, false},
		{"another's, live, migrating out: kept", &lease{"other", 100, ""}, false, true, "other", true, false, false},
		{"released, migrating in: taken", &lease{"", 100, ""}, true, false, "me", true, false, false},
		{"released, ended since listed: not taken", &lease{"", 10, ""}, false, false, "", true, false, true},
		{"another's, live, ended since listed: nothing to destroy", &lease{"other", 100, ""}, false, false, "other", true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			clock := testkit.NewClock(time.Now())
			k := newTestKeeper(t, root, "me", clock)
			store := NewStore(root, "pool1", nil)
			if l := tc.lease; l != nil {
				if l.raw != "" {
					testkit.MustOK(t, os.MkdirAll(filepath.Join(root, ".ha", "pool1", "vms"), 0o755))
					testkit.MustOK(t, os.WriteFile(filepath.Join(root, store.VMRel("vm1")), []byte(l.raw), 0o644))
				} else {
					testkit.MustOK(t, store.WriteVM("vm1", Lease{ServerID: l.holder, Hostname: "host-" + l.holder, RenewedUnixMS: clock.Now().UnixMilli() - l.ageMS, Counter: 3}))
				}
			}
			k.configure(t)
			k.host.run("vm1", agentapi.StateRunning, true)
			if tc.ended {
				k.Keeper.host = endedHost{k.host, "vm1"}
			}
			if tc.incoming {
				testkit.MustOK(t, k.ExpectIncoming("vm1", "r1", "vm1"))
			}
			if tc.outgoing {
				_, end := k.BeginOutgoing(t.Context(), "vm1", "r1", "vm1")
				defer end(false)
			}
			k.tick()
			if got := readLease(t, store, "vm1"); got.ServerID != tc.wantHolder {
				t.Errorf("holder after the renewal = %q, want %q", got.ServerID, tc.wantHolder)
			}
			if k.host.has("vm1") != tc.wantDomain {
				t.Errorf("domain here = %v, want %v", k.host.has("vm1"), tc.wantDomain)
			}
			lost := strings.Contains(strings.Join(k.host.kinds(), ","), agentapi.EventVMLeaseLost)
			if lost != tc.wantLostEvnt {
				t.Errorf("events %v, want vm_lease_lost %v", k.host.kinds(), tc.wantLostEvnt)
			}
			if st := k.Status(); st.LastError != "" || st.Fenced {
				t.Errorf("status after the renewal: %+v", st)
			}
		})
	}
}

// endedHost lists the domain of VM vm but reads it as gone: it ended
// between the list and the read.
type endedHost struct {
	*fakeHost
	vm string
}

func (h endedHost) Domain(repoID, vmID string) (Domain, bool, error) {
	if vmID == h.vm {
		return Domain{}, false, nil
	}
	return h.fakeHost.Domain(repoID, vmID)
}

// A VM that no longer runs here has its lease released at the next
// renewal; one whose start is under way keeps it.
func TestRenewReleasesEndedDomains(t *testing.T) {
	root := t.TempDir()
	k := newTestKeeper(t, root, "me", testkit.NewClock(time.Now()))
	store := NewStore(root, "pool1", nil)
	k.configure(t)
	k.host.run("vm1", agentapi.StateRunning, false)
	k.host.run("vm2", agentapi.StateSuspended, false)
	k.tick()
	for _, uuid := range []string{"vm1", "vm2"} {
		if l := readLease(t, store, uuid); l.ServerID != "me" {
			t.Fatalf("%s lease %+v, want held", uuid, l)
		}
	}
	testkit.MustOK(t, k.host.Destroy("r1", "vm1")) // a guest that shut itself down
	k.host.run("vm2", agentapi.StateCrashed, false)
	start, err := k.BeginStart("vm3", "r1", "vm3") // its domain is not there yet
	testkit.MustOK(t, err)
	k.tick()
	for uuid, want := range map[string]string{"vm1": "", "vm2": "", "vm3": "me"} {
		if l := readLease(t, store, uuid); l.ServerID != want {
			t.Errorf("%s lease holder %q, want %q", uuid, l.ServerID, want)
		}
	}
	if err := start.End(errors.New("no memory")); err == nil {
		t.Fatal("End lost the start's error")
	}
	if l := readLease(t, store, "vm3"); l.ServerID != "" {
		t.Errorf("a failed start kept the lease: %+v", l)
	}
	// A failed start of a VM that runs here already keeps the lease.
	k.host.run("vm4", agentapi.StateRunning, false)
	start, err = k.BeginStart("vm4", "r1", "vm4")
	testkit.MustOK(t, err)
	_ = start.End(agentapi.Errorf(agentapi.FaultInvalidState, "already running"))
	if l := readLease(t, store, "vm4"); l.ServerID != "me" {
		t.Errorf("the lease of a VM running here was released: %+v", l)
	}
}

// start_vm's refusals, by the lease's state and this server's own.
func TestBeginStartRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, k *testKeeper, store *Store)
		code  agentapi.FaultCode
		sub   string
	}{
		{"another server holds it live", func(t *testing.T, k *testKeeper, s *Store) {
			testkit.MustOK(t, s.WriteVM("vm1", Lease{ServerID: "other", Hostname: "ovs9", RenewedUnixMS: k.clock.Now().UnixMilli() - 250}))
		}, agentapi.FaultInvalidState, "Vm vm1 holds a live lease of server ovs9 (renewed 250 ms ago); it may be running there"},
		{"unreadable lease", func(t *testing.T, k *testKeeper, s *Store) {
			testkit.MustOK(t, os.MkdirAll(filepath.Join(k.cfg.Root, ".ha", "pool1", "vms"), 0o755))
			testkit.MustOK(t, os.WriteFile(filepath.Join(k.cfg.Root, s.VMRel("vm1")), []byte("{"), 0o644))
		}, agentapi.FaultInvalidState, "is unreadable, so nobody can tell which server may run it"},
		{"own lease lapsed", func(t *testing.T, k *testKeeper, s *Store) {
			k.clock.Advance(1500 * time.Millisecond)
		}, agentapi.FaultInvalidState, "its own HA lease in repository repo1 was last renewed 1500 ms ago"},
		{"lock held by another server", func(t *testing.T, k *testKeeper, s *Store) {
			unlock, err := s.LockVM("vm1")
			testkit.MustOK(t, err)
			t.Cleanup(unlock)
			k.store.lockWait = 30 * time.Millisecond
		}, agentapi.FaultBusy, "another server is deciding about its HA lease now"},
		{"storage unreachable", func(t *testing.T, k *testKeeper, s *Store) {
			k.fail.Store(true)
		}, agentapi.FaultInvalidState, "cannot take the HA lease of Vm vm1 in repository repo1: lock .ha/pool1/vms/vm1.lock: the repository is unreachable"},
		{"a uuid that names no file", func(t *testing.T, k *testKeeper, s *Store) {}, agentapi.FaultInvalidState, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			k := newTestKeeper(t, root, "me", testkit.NewClock(time.Now()))
			k.configure(t)
			tc.setup(t, k, NewStore(root, "pool1", nil))
			uuid := "vm1"
			if tc.sub == "" {
				uuid, tc.sub = "../x", "so it can have no HA lease"
			}
			_, err := k.BeginStart(uuid, "r1", "vm1")
			testkit.WantFault(t, err, tc.code, tc.sub)
		})
	}
}

// A lapsed lease fences at the gate, before anything else, without the
// watchdog: every domain goes, HA ones first, and ha_fenced says so.
// Starts are refused until a renewal succeeds again.
func TestGateFences(t *testing.T) {
	root := t.TempDir()
	k := newTestKeeper(t, root, "me", testkit.NewClock(time.Now()))
	k.configure(t)
	k.host.run("plain", agentapi.StateRunning, false)
	k.host.run("ha1", agentapi.StateRunning, true)
	k.host.run("paused", agentapi.StatePaused, false)
	k.host.busy["plain"] = 2 // a save holds it for a while
	k.tick()
	k.Gate()
	if n := len(k.host.events); n != 0 || k.Status().Fenced {
		t.Fatalf("fenced with a live lease: %v", k.host.events)
	}
	k.fail.Store(true)
	k.clock.Advance(600 * time.Millisecond)
	k.tick() // fails: not renewed
	k.clock.Advance(400 * time.Millisecond)
	k.Gate()
	st := k.Status()
	if !st.Fenced || st.FencedCount != 1 || st.LastFenceUnix == 0 || !strings.Contains(st.LastError, "unreachable") || st.LastRenewalAgeMS != 1000 {
		t.Errorf("status after the fence: %+v", st)
	}
	for _, uuid := range []string{"plain", "ha1", "paused"} {
		if k.host.has(uuid) {
			t.Errorf("%s survived the fence", uuid)
		}
	}
	if kinds := k.host.kinds(); len(kinds) != 1 || kinds[0] != agentapi.EventHAFenced ||
		k.host.events[0].Detail != "lease not renewed for 1000 ms: stopped 3 domains" || k.host.events[0].VMUUID != "" {
		t.Errorf("events %+v", k.host.events)
	}
	k.Gate() // fenced once per lapse
	if n := len(k.host.events); n != 1 {
		t.Errorf("a second gate fenced again: %d events", n)
	}
	if _, err := k.BeginStart("vm9", "r1", "vm9"); err == nil {
		t.Error("a start was allowed on a fenced server")
	}
	if err := k.ExpectIncoming("vm9", "r1", "vm9"); err == nil {
		t.Error("an incoming migration was allowed on a fenced server")
	}
	k.fail.Store(false)
	k.tick()
	if st := k.Status(); st.Fenced || st.FencedCount != 1 || st.LastError != "" || st.LastRenewalAgeMS != 0 {
		t.Errorf("status after the lease came back: %+v", st)
	}
	if _, err := k.BeginStart("vm9", "r1", "vm9"); err != nil {
		t.Errorf("start after the lease came back: %v", err)
	}
}

// The order of a fence: HA domains first.
func TestFenceOrder(t *testing.T) {
	root := t.TempDir()
	k := newTestKeeper(t, root, "me", testkit.NewClock(time.Now()))
	order := &recordingHost{fakeHost: k.host}
	k.Keeper.host = order
	k.configure(t)
	for _, d := range []struct {
		uuid string
		ha   bool
	}{{"a-plain", false}, {"b-ha", true}, {"c-plain", false}, {"d-ha", true}} {
		k.host.run(d.uuid, agentapi.StateRunning, d.ha)
	}
	k.tick()
	k.clock.Advance(time.Second)
	k.Gate()
	if got := strings.Join(order.destroyed, ","); got != "b-ha,d-ha,a-plain,c-plain" {
		t.Errorf("fence order %s, want the HA ones first", got)
	}
}

type recordingHost struct {
	*fakeHost
	destroyed []string
}

func (r *recordingHost) Destroy(repoID, vmID string) error {
	r.destroyed = append(r.destroyed, vmID)
	return r.fakeHost.Destroy(repoID, vmID)
}

// A renewal that finds the lease lapsed fences before it writes, even when
// the repository answers again: an agent resumed after a freeze must not
// renew first.
func TestTickFencesBeforeRenewing(t *testing.T) {
	root := t.TempDir()
	k := newTestKeeper(t, root, "me", testkit.NewClock(time.Now()))
	k.configure(t)
	k.host.run("vm1", agentapi.StateRunning, true)
	k.tick()
	k.clock.Advance(5 * time.Second) // frozen
	k.tick()
	if k.host.has("vm1") || k.Status().FencedCount != 1 {
		t.Errorf("a renewal after a freeze kept the domain: fenced %d", k.Status().FencedCount)
	}
	if l := readLease(t, NewStore(root, "pool1", nil), "vm1"); l.ServerID != "" {
		t.Errorf("the fenced VM's lease = %+v, want released at the renewal", l)
	}
}

// A start that overlapped a fence has its domain destroyed.
func TestStartDuringFence(t *testing.T) {
	root := t.TempDir()
	k := newTestKeeper(t, root, "me", testkit.NewClock(time.Now()))
	k.configure(t)
	s, err := k.BeginStart("vm1", "r1", "vm1")
	testkit.MustOK(t, err)
	k.clock.Advance(time.Second)
	k.Gate()
	k.host.run("vm1", agentapi.StateRunning, false) // the start completes after the fence
	testkit.WantFault(t, s.End(nil), agentapi.FaultInvalidState, "fenced itself")
	if k.host.has("vm1") {
		t.Error("a domain started during a fence survived it")
	}
}

// A keeper resumed from a saved configuration fences at once when its
// lease lapsed meanwhile (or is missing), and not when it is fresh.
func TestResume(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ageMS     int64 // of the server lease; -1: none
		wantFence bool
	}{
		{"fresh lease", 300, false},
		{"lapsed lease", 1000, true},
		{"no lease", -1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			clock := testkit.NewClock(time.Now())
			k := newTestKeeper(t, root, "me", clock)
			if tc.ageMS >= 0 {
				testkit.MustOK(t, NewStore(root, "pool1", nil).WriteServer(Lease{ServerID: "me", RenewedUnixMS: clock.Now().UnixMilli() - tc.ageMS, Counter: 41}))
			}
			k.host.run("vm1", agentapi.StateRunning, false) // a real hypervisor's domain outlives the agent
			k.Resume(k.cfg)
			st := k.Status()
			if fenced := st.FencedCount == 1; fenced != tc.wantFence || k.host.has("vm1") == tc.wantFence || !st.Enabled {
				t.Fatalf("fenced %v (domain kept %v), want %v; %+v", fenced, k.host.has("vm1"), tc.wantFence, st)
			}
			k.tick()
			l, _, err := NewStore(root, "pool1", nil).ReadServer("me")
			testkit.MustOK(t, err)
			if st := k.Status(); st.Fenced || (tc.ageMS >= 0 && l.Counter != 42) {
				t.Errorf("after the first renewal: lease %+v, status %+v", l, st)
			}
		})
	}
}

// ha_read_leases and ha_read_vm_leases, and their refusals.
func TestReadLeases(t *testing.T) {
	root := t.TempDir()
	clock := testkit.NewClock(time.Now())
	a, b := newTestKeeper(t, root, "sa", clock), newTestKeeper(t, root, "sb", clock)
	_, err := a.ReadServers([]string{"sb"})
	testkit.WantFault(t, err, agentapi.FaultInvalidState, "HA is not configured on server host-sa")
	a.configure(t)
	b.configure(t)
	b.host.run("vm1", agentapi.StateRunning, false)
	b.tick()
	clock.Advance(300 * time.Millisecond)
	got, err := a.ReadServers([]string{"sb", "nobody"})
	testkit.MustOK(t, err)
	if len(got) != 2 || got[0] != (agentapi.ServerLease{ServerID: "sb", Found: true, Hostname: "host-sb", RenewedUnixMS: clock.Now().UnixMilli() - 300, AgeMS: 300, Counter: 2}) ||
		got[1] != (agentapi.ServerLease{ServerID: "nobody"}) {
		t.Errorf("ha_read_leases = %+v", got)
	}
	vms, err := a.ReadVMs([]string{"vm1", "vm2"})
	testkit.MustOK(t, err)
	if len(vms) != 2 || vms[0].ServerID != "sb" || !vms[0].Live || vms[0].AgeMS != 300 || vms[1].Found {
		t.Errorf("ha_read_vm_leases = %+v", vms)
	}
	clock.Advance(time.Second)
	if vms, _ := a.ReadVMs([]string{"vm1"}); vms[0].Live {
		t.Errorf("a lease not renewed for the fence timeout is live: %+v", vms[0])
	}
	_, err = a.ReadServers([]string{"../etc"})
	testkit.WantFault(t, err, agentapi.FaultInvalidArgument, `server_ids: "../etc" is not valid`)
	testkit.MustOK(t, os.WriteFile(filepath.Join(root, a.store.ServerRel("sc")), []byte("nonsense"), 0o644))
	_, err = a.ReadServers([]string{"sc"})
	testkit.WantFault(t, err, agentapi.FaultInvalidState, "unreadable")
}

// ha_disable removes the server lease and releases the VM leases held.
func TestDisable(t *testing.T) {
	root := t.TempDir()
	k := newTestKeeper(t, root, "me", testkit.NewClock(time.Now()))
	k.configure(t)
	k.host.run("vm1", agentapi.StateRunning, false)
	k.tick()
	k.Disable()
	store := NewStore(root, "pool1", nil)
	if _, found, _ := store.ReadServer("me"); found {
		t.Error("the server lease is still there")
	}
	if l := readLease(t, store, "vm1"); l.ServerID != "" {
		t.Errorf("vm1 lease %+v, want released", l)
	}
	if st := k.Status(); st.Enabled {
		t.Errorf("status %+v", st)
	}
	k.clock.Advance(time.Hour)
	k.Gate() // no fence without HA
	if !k.host.has("vm1") {
		t.Error("a server without HA fenced")
	}
}

func TestHAParams(t *testing.T) {
	for _, tc := range []struct {
		params map[string]any
		err    string
	}{
		{map[string]any{"renew_interval_ms": int64(200), "fence_timeout_ms": int64(1000)}, ""},
		{map[string]any{"renew_interval_ms": "2000", "fence_timeout_ms": int64(20000)}, ""},
		{map[string]any{"renew_interval_ms": int64(99), "fence_timeout_ms": int64(1000)}, "renew_interval_ms must be at least 100, got 99"},
		{map[string]any{"renew_interval_ms": int64(200), "fence_timeout_ms": int64(599)}, "fence_timeout_ms must be at least 3 times renew_interval_ms (600), got 599"},
		{map[string]any{"renew_interval_ms": int64(200_000), "fence_timeout_ms": int64(600_001)}, "fence_timeout_ms must be at most 600000"},
		{map[string]any{"renew_interval_ms": int64(200)}, "params.fence_timeout_ms is missing"},
		{map[string]any{"renew_interval_ms": true, "fence_timeout_ms": int64(1000)}, "params.renew_interval_ms must be an integer"},
		{map[string]any{"renew_interval_ms": int64(200), "fence_timeout_ms": int64(1000), "margin": int64(1)}, `unknown member "margin"`},
	} {
		_, err := agentapi.ParseHAParams(tc.params)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("ParseHAParams(%v) = %v, want %q", tc.params, err, tc.err)
		}
	}
}

// Renewing a lease this server holds takes no lock: a server frozen while
// it held the VM's lock would keep every other server from the VM.
func TestRenewOwnLeaseWithoutLock(t *testing.T) {
	root := t.TempDir()
	k := newTestKeeper(t, root, "me", testkit.NewClock(time.Now()))
	k.configure(t)
	k.host.run("vm1", agentapi.StateRunning, false)
	k.tick()
	store := NewStore(root, "pool1", nil)
	before := readLease(t, store, "vm1")
	unlock, err := store.LockVM("vm1") // a frozen peer in the middle of a start
	testkit.MustOK(t, err)
	defer unlock()
	k.clock.Advance(200 * time.Millisecond)
	k.tick()
	if after := readLease(t, store, "vm1"); after.Counter != before.Counter+1 || after.RenewedUnixMS != before.RenewedUnixMS+200 {
		t.Errorf("lease before %+v, after a renewal with the lock held elsewhere %+v", before, after)
	}
	if st := k.Status(); st.LastError != "" {
		t.Errorf("the renewal failed: %s", st.LastError)
	}
}

// slowHost is a fakeHost whose Domains blocks, while blocking is set, until
// release is closed: a hypervisor busy with a domain's job.
type slowHost struct {
	*fakeHost
	blocking atomic.Bool
	release  chan struct{}
	calls    atomic.Int32 // of Domains
}

func (s *slowHost) Domains() ([]Domain, error) {
	s.calls.Add(1)
	if s.blocking.Load() {
		<-s.release
	}
	return s.fakeHost.Domains()
}

// A hypervisor that does not list its domains within the renew interval
// does not hold the renewal up: the renewal renews the leases held and
// counts, so the lease does not lapse and the server does not fence, and
// renewals wait for the one listing under way rather than start others.
// Once the hypervisor answers, renewals list again.
func TestRenewalDoesNotWaitForASlowHypervisor(t *testing.T) {
	root := t.TempDir()
	k := newTestKeeper(t, root, "me", testkit.NewClock(time.Now()))
	slow := &slowHost{fakeHost: k.host, release: make(chan struct{})}
	k.Keeper.host = slow
	k.configure(t)
	k.host.run("vm1", agentapi.StateRunning, true)
	k.tick()
	store := NewStore(root, "pool1", nil)
	if l := readLease(t, store, "vm1"); l.ServerID != "me" {
		t.Fatalf("vm1's lease %+v, want held by me", l)
	}

	before := slow.calls.Load()
	slow.blocking.Store(true)
	defer close(slow.release)
	for i := 0; i < 3; i++ {
		k.clock.Advance(600 * time.Millisecond) // three renewals span more than the fence timeout
		done := make(chan struct{})
		go func() { k.tick(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("renewal %d waits for the hypervisor's listing", i+1)
		}
		if l := readLease(t, store, "vm1"); l.ServerID != "me" || l.RenewedUnixMS != k.clock.Now().UnixMilli() {
			t.Fatalf("renewal %d: vm1's lease %+v, want renewed by me at %d", i+1, l, k.clock.Now().UnixMilli())
		}
	}
	k.Gate()
	if st := k.Status(); st.Fenced || len(k.host.events) != 0 || !k.host.has("vm1") {
		t.Fatalf("the server fenced while its hypervisor was slow: %+v, events %v", st, k.host.events)
	}
	if n := slow.calls.Load() - before; n != 1 {
		t.Fatalf("the slow renewals called Domains %d times; want 1 listing they share", n)
	}
}

// gatedHost is a fakeHost whose first Domain call for a VM, once armed,
// looks at the domain and then waits at gate before it answers: a renewal
// caught between its look and its write.
type gatedHost struct {
	*fakeHost
	vm      string
	armed   atomic.Bool
	entered chan struct{} // closed when the gated call has looked
	gate    chan struct{}
}

func (g *gatedHost) Domain(repoID, vmID string) (Domain, bool, error) {
	d, ok, err := g.fakeHost.Domain(repoID, vmID)
	if vmID == g.vm && g.armed.CompareAndSwap(true, false) {
		close(g.entered)
		<-g.gate
	}
	return d, ok, err
}

// A start that fails releases the VM's lease, and a renewal that looked at
// the starting domain before the failure does not write the lease back
// after the release: the lease stays released (a live lease of a VM that
// runs nowhere made the manager record it on this server and stop
// restarting it).
func TestRenewalDoesNotUndoARelease(t *testing.T) {
	root := t.TempDir()
	k := newTestKeeper(t, root, "me", testkit.NewClock(time.Now()))
	g := &gatedHost{fakeHost: k.host, vm: "vm1", entered: make(chan struct{}), gate: make(chan struct{})}
	k.Keeper.host = g
	k.configure(t)
	start, err := k.BeginStart("vm1", "r1", "vm1")
	testkit.MustOK(t, err)
	k.host.run("vm1", agentapi.StatePaused, true) // QEMU starting
	g.armed.Store(true)
	renewed := make(chan struct{})
	go func() { k.tick(); close(renewed) }()
	<-g.entered // the renewal saw the starting domain and is about to write

	k.host.mu.Lock()
	delete(k.host.doms, "r1/vm1") // the start failed: the domain is gone
	k.host.mu.Unlock()
	ended := make(chan error, 1)
	go func() { ended <- start.End(errors.New("refused")) }()
	// Without serialisation the release completes at once, before the
	// renewal's write; with it, the release waits for the renewal.
	var endErr error
	select {
	case endErr = <-ended:
		ended <- endErr
	case <-time.After(200 * time.Millisecond):
	}
	close(g.gate)
	<-renewed
	if err := <-ended; err == nil || err.Error() != "refused" {
		t.Fatalf("End = %v, want the start's error", err)
	}
	if l := readLease(t, NewStore(root, "pool1", nil), "vm1"); l.ServerID != "" {
		t.Fatalf("after the failed start and the renewal, vm1's lease is %+v; want released", l)
	}
}
