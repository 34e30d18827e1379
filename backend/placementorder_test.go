package backend

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"xenmanager/store"
)

func TestPlacementOrder(t *testing.T) {
	// room is a running server with free memory, threads and placed VMs.
	room := func(name string, free, threads int64, placed int) serverRoom {
		return serverRoom{ID: "id-" + name, Name: name, Status: ServerRunning, Roles: "xen,utility", FreeMiB: free, Threads: threads, Placed: placed}
	}
	with := func(r serverRoom, change func(*serverRoom)) serverRoom { change(&r); return r }
	// apart is r with Vm vm of AntiAffinityGroup group (a member of one of
	// the VM's groups) there.
	apart := func(r serverRoom, vm, group string) serverRoom {
		r.Apart = append(slices.Clone(r.Apart), apartPeer{VM: vm, Group: group})
		return r
	}
	vm := vmNeeds{VM: "web", Pool: "pool1", MemoryMiB: 1024, CPUCount: 2, Policy: PolicyBestServer}
	need := func(change func(*vmNeeds)) vmNeeds { n := vm; change(&n); return n }
	for _, c := range []struct {
		name    string
		servers []serverRoom
		needs   vmNeeds
		want    []string // names, best first
		kind    Kind     // of the error, when none may take it
		errHas  string
	}{
		{name: "most free memory first",
			servers: []serverRoom{room("a", 2048, 4, 0), room("b", 8192, 4, 0), room("c", 4096, 4, 0)},
			needs:   vm, want: []string{"b", "c", "a"}},
		{name: "ties go to the fewest placed VMs, then the name",
			servers: []serverRoom{room("c", 4096, 4, 1), room("b", 4096, 4, 2), room("a", 4096, 4, 1)},
			needs:   vm, want: []string{"a", "c", "b"}},
		{name: "too little memory or too few threads are left out",
			servers: []serverRoom{room("small", 512, 8, 0), room("narrow", 8192, 1, 0), room("ok", 2048, 2, 0)},
			needs:   vm, want: []string{"ok"}},
		{name: "the excluded server is never chosen",
			servers: []serverRoom{room("a", 8192, 4, 0), room("b", 2048, 4, 0)},
			needs:   need(func(n *vmNeeds) { n.Except = "id-a" }), want: []string{"b"}},
		{name: "preferred servers only",
			servers: []serverRoom{room("a", 8192, 4, 0), room("b", 2048, 4, 0), room("c", 4096, 4, 0)},
			needs:   need(func(n *vmNeeds) { n.Preferred = map[string]bool{"id-b": true, "id-c": true} }), want: []string{"c", "b"}},
		{name: "CURRENT_SERVER keeps the last server though another has more room",
			servers: []serverRoom{room("a", 8192, 4, 0), room("b", 2048, 4, 0)},
			needs:   need(func(n *vmNeeds) { n.Policy, n.LastServerID = PolicyCurrentServer, "id-b" }), want: []string{"b"}},
		{name: "CURRENT_SERVER with no last server is BEST_SERVER",
			servers: []serverRoom{room("a", 2048, 4, 0), room("b", 8192, 4, 0)},
			needs:   need(func(n *vmNeeds) { n.Policy = PolicyCurrentServer }), want: []string{"b", "a"}},
		{name: "down and maintenance servers are refused, and the error says why",
			servers: []serverRoom{with(room("a", 8192, 4, 0), func(r *serverRoom) { r.Status = ServerUnreachable }),
				with(room("b", 8192, 4, 0), func(r *serverRoom) { r.Maintenance = true })},
			needs: vm, kind: KindInvalidState,
			errHas: "ServerPool pool1 has no server that can take Vm web: a is Unreachable; b is in maintenance mode"},
		{name: "CURRENT_SERVER whose server is down",
			servers: []serverRoom{room("a", 8192, 4, 0), with(room("b", 8192, 4, 0), func(r *serverRoom) { r.Status = ServerUnreachable })},
			needs:   need(func(n *vmNeeds) { n.Policy, n.LastServerID = PolicyCurrentServer, "id-b" }), kind: KindInvalidState,
			errHas: "Vm web has startPolicy CURRENT_SERVER and its server cannot take it: b is Unreachable"},
		{name: "preferred servers all in maintenance",
			servers: []serverRoom{room("a", 8192, 4, 0), with(room("b", 8192, 4, 0), func(r *serverRoom) { r.Maintenance = true })},
			needs:   need(func(n *vmNeeds) { n.Preferred = map[string]bool{"id-b": true} }), kind: KindInvalidState,
			errHas: "none of the preferred servers of Vm web can take it: b is in maintenance mode"},
		{name: "a silent server is passed over",
			servers: []serverRoom{with(room("a", 8192, 4, 0), func(r *serverRoom) { r.Silent = "a does not answer" }), room("b", 2048, 4, 0)},
			needs:   vm, want: []string{"b"}},
		{name: "no server answered",
			servers: []serverRoom{with(room("a", 0, 0, 0), func(r *serverRoom) { r.Silent = "a does not answer" }),
				with(room("b", 0, 0, 0), func(r *serverRoom) { r.Silent = "b does not answer" })},
			needs: vm, kind: KindAgentUnreachable, errHas: "no server of ServerPool pool1 answered: a does not answer; b does not answer"},
		{name: "not enough memory anywhere names the most free",
			servers: []serverRoom{room("a", 512, 4, 0), room("b", 768, 4, 0), with(room("c", 0, 0, 0), func(r *serverRoom) { r.Silent = "c does not answer" })},
			needs:   vm, kind: KindInsufficientResources,
			errHas: "no server of ServerPool pool1 can run Vm web (1024 MiB, 2 vCPUs): the most free memory is 768 MiB on b; not answering: c does not answer"},
		{name: "reservations past the free memory read as none free",
			servers: []serverRoom{room("a", -256, 4, 0)},
			needs:   vm, kind: KindInsufficientResources, errHas: "the most free memory is 0 MiB on a"},
		{name: "memory but too few threads",
			servers: []serverRoom{room("a", 8192, 1, 0)},
			needs:   vm, kind: KindInsufficientResources, errHas: "servers with enough memory have too few CPUs"},
		{name: "a pinning leaves out the servers that lack its CPUs",
			servers: []serverRoom{room("four", 8192, 4, 0), room("sixtyfour", 2048, 64, 0)},
			needs:   need(func(n *vmNeeds) { n.Pinning, n.PinnedCPUs = "60-63", 64 }), want: []string{"sixtyfour"}},
		{name: "no server has the pinned CPUs, and the error says what each has",
			servers: []serverRoom{room("b", 8192, 4, 0), room("a", 8192, 2, 0)},
			needs:   need(func(n *vmNeeds) { n.Pinning, n.PinnedCPUs = "60-63", 64 }), kind: KindInsufficientResources,
			errHas: "Vm web cannot start on any server of ServerPool pool1: its cpuPinning 60-63 names CPUs they lack (server a has CPUs 0-1; server b has CPUs 0-3)"},
		{name: "a server without the VM server role gets no VM, however much room it has",
			servers: []serverRoom{with(room("util", 16384, 8, 0), func(r *serverRoom) { r.Roles = "utility" }), room("vm", 2048, 4, 0)},
			needs:   vm, want: []string{"vm"}},
		{name: "only servers without the VM server role: the error names them and their roles",
			servers: []serverRoom{with(room("util", 16384, 8, 0), func(r *serverRoom) { r.Roles = "utility" }),
				with(room("b", 8192, 4, 0), func(r *serverRoom) { r.Maintenance = true })},
			needs: vm, kind: KindInvalidState,
			errHas: "ServerPool pool1 has no server that can take Vm web: util has not the VM server role (roles: utility); b is in maintenance mode"},
		{name: "no room on the VM servers: the error names the servers left out for their role",
			servers: []serverRoom{with(room("util", 16384, 8, 0), func(r *serverRoom) { r.Roles = "utility" }), room("vm", 512, 4, 0)},
			needs:   vm, kind: KindInsufficientResources,
			errHas: "the most free memory is 512 MiB on vm; without the VM server role (xen): util"},
		// Anti-affinity: a server with a member of one of the VM's groups
		// (placed there or on its way) is no candidate.
		{name: "a server with a member of the VM's group is left out, however much room it has",
			servers: []serverRoom{apart(room("a", 16384, 8, 0), "web1", "web"), room("b", 2048, 4, 0), apart(room("c", 8192, 4, 0), "web2", "web")},
			needs:   vm, want: []string{"b"}},
		{name: "every server has a member: the error names the group and the member on each",
			servers: []serverRoom{apart(room("a", 8192, 4, 0), "web1", "web"), apart(room("b", 8192, 4, 0), "web2", "web"),
				apart(room("c", 8192, 4, 0), "web3", "web")},
			needs: vm, kind: KindInvalidState,
			errHas: "ServerPool pool1 has no server that can take Vm web: a has Vm web1 of AntiAffinityGroup web; b has Vm web2 of AntiAffinityGroup web; " +
				"c has Vm web3 of AntiAffinityGroup web (an AntiAffinityGroup keeps its members on different servers)"},
		{name: "members of two groups on one server are both named",
			servers: []serverRoom{apart(apart(room("a", 8192, 4, 0), "web1", "web"), "db1", "db")},
			needs:   vm, kind: KindInvalidState,
			errHas: "a has Vm web1 of AntiAffinityGroup web, Vm db1 of AntiAffinityGroup db (an AntiAffinityGroup"},
		{name: "a server that is down is named for being down, not for its members",
			servers: []serverRoom{apart(with(room("a", 8192, 4, 0), func(r *serverRoom) { r.Status = ServerUnreachable }), "web1", "web"),
				apart(room("b", 8192, 4, 0), "web2", "web")},
			needs: vm, kind: KindInvalidState,
			errHas: "ServerPool pool1 has no server that can take Vm web: a is Unreachable; b has Vm web2 of AntiAffinityGroup web (an AntiAffinityGroup"},
		{name: "members on the excluded server (a migration's source) and on down servers do not matter",
			servers: []serverRoom{apart(room("src", 8192, 4, 0), "web1", "web"),
				apart(with(room("down", 8192, 4, 0), func(r *serverRoom) { r.Status = ServerUnreachable }), "web2", "web"), room("b", 2048, 4, 0)},
			needs: need(func(n *vmNeeds) { n.Except = "id-src" }), want: []string{"b"}},
		{name: "CURRENT_SERVER whose server has a member",
			servers: []serverRoom{room("a", 8192, 4, 0), apart(room("b", 8192, 4, 0), "web1", "web")},
			needs:   need(func(n *vmNeeds) { n.Policy, n.LastServerID = PolicyCurrentServer, "id-b" }), kind: KindInvalidState,
			errHas: "Vm web has startPolicy CURRENT_SERVER and its server cannot take it: b has Vm web1 of AntiAffinityGroup web (an AntiAffinityGroup"},
		{name: "preferred servers that all have members",
			servers: []serverRoom{room("a", 8192, 4, 0), apart(room("b", 8192, 4, 0), "web1", "web")},
			needs:   need(func(n *vmNeeds) { n.Preferred = map[string]bool{"id-b": true} }), kind: KindInvalidState,
			errHas: "none of the preferred servers of Vm web can take it: b has Vm web1 of AntiAffinityGroup web"},
		{name: "no room on the servers without members: the error names the servers left out by anti-affinity",
			servers: []serverRoom{apart(room("big", 16384, 8, 0), "web1", "web"), room("small", 512, 4, 0)},
			needs:   vm, kind: KindInsufficientResources,
			errHas: "the most free memory is 512 MiB on small; left out by anti-affinity: big has Vm web1 of AntiAffinityGroup web (an AntiAffinityGroup keeps"},
		{name: "no CPUs for the pinning on the servers without members: the servers left out by anti-affinity are named",
			servers: []serverRoom{apart(room("wide", 8192, 64, 0), "web1", "web"), room("narrow", 8192, 4, 0)},
			needs:   need(func(n *vmNeeds) { n.Pinning, n.PinnedCPUs = "60-63", 64 }), kind: KindInsufficientResources,
			errHas: "(server narrow has CPUs 0-3); left out by anti-affinity: wide has Vm web1 of AntiAffinityGroup web"},
	} {
		t.Run(c.name, func(t *testing.T) {
			order, err := placementOrder(slices.Clone(c.servers), c.needs)
			if c.errHas != "" {
				var e *Error
				if !errors.As(err, &e) || e.Kind != c.kind || !strings.Contains(e.Msg, c.errHas) {
					t.Fatalf("placementOrder = %v, %v; want a %v error with %q", order, err, c.kind, c.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, i := range order {
				got = append(got, c.servers[i].Name)
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("order = %v, want %v", got, c.want)
			}
		})
	}
}

func TestParseServerRoles(t *testing.T) {
	for _, c := range []struct{ in, want, errHas string }{
		{"xen,utility", "xen,utility", ""},
		{" Utility , XEN ", "xen,utility", ""},
		{"utility,utility", "utility", ""},
		{"xen", "xen", ""},
		{"", "", "names no role"},
		{"xen,master", "", `unknown role "master"`},
	} {
		got, err := parseServerRoles(c.in)
		if c.errHas != "" {
			if KindOf(err) != KindInvalidArgument || !strings.Contains(Message(err), c.errHas) {
				t.Errorf("parseServerRoles(%q) = %q, %v; want an invalid argument saying %q", c.in, got, err, c.errHas)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("parseServerRoles(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestNeedsOf(t *testing.T) {
	pool := store.ServerPool{Name: "pool1", StartPolicy: PolicyCurrentServer}
	for _, c := range []struct {
		name, vmPolicy, want string
	}{
		{"no policy of its own: the pool's", "", PolicyCurrentServer},
		{"USE_POOL_POLICY: the pool's", PolicyUsePool, PolicyCurrentServer},
		{"its own", PolicyBestServer, PolicyBestServer},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := needsOf(store.VM{Name: "web", StartPolicy: c.vmPolicy, PreferredServers: "s1 s2"}, pool, "s3")
			if n.Policy != c.want || !n.Preferred["s1"] || !n.Preferred["s2"] || len(n.Preferred) != 2 || n.Except != "s3" || n.Pool != "pool1" {
				t.Fatalf("needsOf = %+v, want policy %s, preferred s1 s2, except s3", n, c.want)
			}
		})
	}
}
