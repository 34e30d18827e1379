package agentclient

import (
	"strings"
	"sync"
	"testing"

	"xenmanager/backend/agentapi"
)

// TestMethodCallShapes checks that typed methods send the protocol's method
// names with their parameters in order, and decode results into the wire
// types (the integration tests in backend/agent run them against a real
// agent).
func TestMethodCallShapes(t *testing.T) {
	var mu sync.Mutex
	var last string
	reply := response("<boolean>1</boolean>")
	_, cfg := fakeAgent(t, func(body string) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		last = body
		return 200, reply
	})
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := t.Context()
	sent := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(strings.Fields(last), "")
	}
	calls := []struct {
		name string
		call func() error
		want []string // in order
	}{
		{"create_server_pool", func() error {
			return c.CreateServerPool(ctx, agentapi.PoolParams{Alias: "A", PoolUUID: "P", VIP: "V", Num: 3, Name: "N", Host: "H", Roles: "xen"})
		}, []string{"<methodName>create_server_pool</methodName>", ">A<", ">P<", ">V<", "<int>3</int>", ">N<", ">H<", ">xen<"}},
		{"set_pool_member_ip_list nil", func() error { return c.SetPoolMemberIPList(ctx, nil) },
			[]string{"<methodName>set_pool_member_ip_list</methodName>", "<array><data></data></array>"}},
		{"create_virtual_disk", func() error { return c.CreateVirtualDisk(ctx, "r", "d", 1024, true) },
			[]string{"<methodName>create_virtual_disk</methodName>", ">r<", ">d<", "<int>1024</int>", "<boolean>1</boolean>"}},
		{"reboot_vm", func() error { return c.RebootVM(ctx, "r", "v", 30) },
			[]string{"<methodName>reboot_vm</methodName>", ">r<", ">v<", "<int>30</int>"}},
		{"sys_reboot", func() error { return c.SysReboot(ctx) }, []string{"<methodName>sys_reboot</methodName>"}},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); err != nil {
				t.Fatal(err)
			}
			body := sent()
			at := 0
			for _, w := range tc.want {
				i := strings.Index(body[at:], w)
				if i < 0 {
					t.Fatalf("call %s lacks %s (in order) after offset %d", body, w, at)
				}
				at += i + len(w)
			}
		})
	}

	mu.Lock()
	reply = response(`<struct>
<member><name>next</name><value><int>7</int></value></member>
<member><name>events</name><value><array><data><value><struct>
<member><name>seq</name><value><int>7</int></value></member>
<member><name>kind</name><value><string>vm_crashed</string></value></member>
<member><name>vm_uuid</name><value><string>u1</string></value></member>
</struct></value></data></array></value></member></struct>`)
	mu.Unlock()
	ev, err := c.GetEvents(ctx, 6)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Next != 7 || len(ev.Events) != 1 || ev.Events[0] != (agentapi.Event{Seq: 7, Kind: agentapi.EventVMCrashed, VMUUID: "u1"}) {
		t.Errorf("get_events = %+v", ev)
	}
	if !strings.Contains(sent(), "<int>6</int>") {
		t.Errorf("get_events sent %s, want since 6", sent())
	}
}

// TestMigrationMethods checks the three migration calls' shapes, and that a
// bytes_sent beyond 32 bits (<i8>) decodes.
func TestMigrationMethods(t *testing.T) {
	var mu sync.Mutex
	var last, reply string
	_, cfg := fakeAgent(t, func(body string) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		last = strings.Join(strings.Fields(body), "")
		return 200, reply
	})
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := t.Context()
	call := func(r string, f func() error, want ...string) {
		t.Helper()
		mu.Lock()
		reply = response(r)
		mu.Unlock()
		if err := f(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		at := 0
		for _, w := range want {
			i := strings.Index(last[at:], w)
			if i < 0 {
				t.Fatalf("call %s lacks %s (in order)", last, w)
			}
			at += i + len(w)
		}
	}
	var dest string
	call("<string>127.0.0.1:4000/tok/pin</string>", func() (err error) {
		dest, err = c.SetupMigrationTarget(ctx, "r", "v")
		return err
	}, "<methodName>setup_migration_target</methodName>", ">r<", ">v<")
	if dest != "127.0.0.1:4000/tok/pin" {
		t.Errorf("dest = %q", dest)
	}
	var res agentapi.MigrationResult
	call(`<struct>
<member><name>rounds</name><value><int>3</int></value></member>
<member><name>bytes_sent</name><value><i8>8589934592</i8></value></member>
<member><name>duration_ms</name><value><int>1200</int></value></member>
<member><name>downtime_ms</name><value><int>30</int></value></member>
<member><name>converged</name><value><boolean>1</boolean></value></member>
<member><name>memory_sha256</name><value><string>ab</string></value></member>
</struct>`, func() (err error) {
		res, err = c.MigrateVM(ctx, "r", "v", dest, true, false)
		return err
	}, "<methodName>migrate_vm</methodName>", ">r<", ">v<", ">127.0.0.1:4000/tok/pin<", "<boolean>1</boolean>", "<boolean>0</boolean>")
	if want := (agentapi.MigrationResult{Rounds: 3, BytesSent: 1 << 33, DurationMS: 1200, DowntimeMS: 30, Converged: true, MemorySHA256: "ab"}); res != want {
		t.Errorf("migrate_vm = %+v, want %+v", res, want)
	}
	call("<boolean>1</boolean>", func() error { return c.CleanupMigrationTarget(ctx, "r", "v") },
		"<methodName>cleanup_migration_target</methodName>", ">r<", ">v<")
}
