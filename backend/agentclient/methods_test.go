package agentclient

import (
	"strings"
	"sync"
	"testing"

	"xenmanager/backend/agentapi"
)

// TestMethodCallShapes checks that typed methods send the protocol's method
// names with their parameters in order, and decode results into the wire
// types (the integration tests in agentserver run them against a real
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
			return c.CreateServerPool(ctx, PoolParams{Alias: "A", PoolUUID: "P", VIP: "V", Num: 3, Name: "N", Host: "H", Roles: "xen"})
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
