package host

import (
	"reflect"
	"testing"

	"xenmanager/backend/agentapi"
)

func poolReq(id string) agentapi.PoolParams {
	return agentapi.PoolParams{Alias: "pool " + id, PoolUUID: id, VIP: "192.0.2.10", Num: 1, Name: "xen1", Host: "192.0.2.1", Roles: "xen,utility"}
}

func TestPools(t *testing.T) {
	dir := t.TempDir()
	h := newHost(t, testConfig{DataDir: dir})
	if got, want := h.DiscoverServerPool(), (agentapi.PoolInfo{Members: []string{}}); !reflect.DeepEqual(got, want) {
		t.Fatalf("no pool: %#v, want %#v", got, want)
	}
	wantFault(t, h.LeaveServerPool("p1"), agentapi.FaultNotFound, "server xen1 is in no pool")

	mustOK(t, h.CreateServerPool(poolReq("p1")))
	mustOK(t, h.CreateServerPool(poolReq("p1"))) // a retry
	wantFault(t, h.CreateServerPool(poolReq("p2")), agentapi.FaultInvalidState, "already in pool p1")
	wantFault(t, h.JoinServerPool(poolReq("p1")), agentapi.FaultInvalidState, "already the master of pool p1")
	got := h.DiscoverServerPool()
	if want := (agentapi.PoolInfo{PoolUUID: "p1", Alias: "pool p1", Master: "xen1", Members: []string{"192.0.2.1"}}); !reflect.DeepEqual(got, want) {
		t.Errorf("master's pool = %#v, want %#v", got, want)
	}
	srv := h.DiscoverServer("192.0.2.1")
	if !srv.IsCurrentMaster || srv.PoolUniqueID != "p1" || srv.MembershipState != agentapi.MembershipPooled ||
		!reflect.DeepEqual(srv.ServerRoles, []string{"xen", "utility", "master"}) {
		t.Errorf("discover_server of the master = %+v", srv)
	}

	mustOK(t, h.SetPoolMemberIPList([]string{"192.0.2.1", "xen2.example", " 192.0.2.2 ", "192.0.2.1"}))
	wantFault(t, h.SetPoolMemberIPList([]string{"bad host"}), agentapi.FaultInvalidArgument, `"bad host" is not an IP address or host name`)
	if got := h.DiscoverServerPool().Members; !reflect.DeepEqual(got, []string{"192.0.2.1", "xen2.example", "192.0.2.2"}) {
		t.Errorf("members = %q", got)
	}
	mustOK(t, h.UpdateServerRoles(" utility "))
	if roles := h.DiscoverServer("").ServerRoles; !reflect.DeepEqual(roles, []string{"utility", "master"}) {
		t.Errorf("roles after update = %q", roles)
	}

	// Pool and roles survive a restart.
	h2 := newHost(t, testConfig{DataDir: dir})
	if got := h2.DiscoverServerPool(); got.PoolUUID != "p1" || got.Master != "xen1" || len(got.Members) != 3 {
		t.Errorf("pool after restart = %+v", got)
	}
	if roles := h2.DiscoverServer("").ServerRoles; !reflect.DeepEqual(roles, []string{"utility", "master"}) {
		t.Errorf("roles after restart = %q", roles)
	}

	// Leaving is refused while a domain runs, and names the pool it is in.
	addRepo(t, h, t.TempDir(), "r1")
	mustOK(t, h.CreateVM("r1", "vm1", vmParams(512, 1)))
	mustOK(t, h.StartVM("r1", "vm1"))
	wantFault(t, h.LeaveServerPool("p1"), agentapi.FaultInvalidState, "1 domains run on server xen1 (vm1)")
	wantFault(t, h.LeaveServerPool("p9"), agentapi.FaultInvalidState, "is in pool p1")
	mustOK(t, h.StopVM("r1", "vm1", true))
	mustOK(t, h.LeaveServerPool("p1"))
	if got := h.DiscoverServer(""); got.MembershipState != agentapi.MembershipUnowned || got.IsCurrentMaster || got.PoolUniqueID != "" ||
		!reflect.DeepEqual(got.ServerRoles, []string{"utility"}) {
		t.Errorf("after leave: %+v", got)
	}

	// A member is not the master and does not know it.
	mustOK(t, h.JoinServerPool(agentapi.PoolParams{Alias: "p2", PoolUUID: "p2", Name: "xen1", Roles: "xen"}))
	mustOK(t, h.JoinServerPool(agentapi.PoolParams{Alias: "p2", PoolUUID: "p2", Name: "xen1"}))
	wantFault(t, h.CreateServerPool(agentapi.PoolParams{PoolUUID: "p2"}), agentapi.FaultInvalidState, "already a member of pool p2")
	if got := h.DiscoverServerPool(); got.Master != "" || !reflect.DeepEqual(got.Members, []string{"xen1"}) {
		t.Errorf("member's pool = %+v", got)
	}
	if got := h.DiscoverServer(""); got.IsCurrentMaster || !reflect.DeepEqual(got.ServerRoles, []string{"xen"}) || got.MembershipState != agentapi.MembershipPooled {
		t.Errorf("member = %+v", got)
	}
}

func TestPoolValidation(t *testing.T) {
	h := newHost(t, testConfig{})
	tests := []struct {
		name string
		err  error
		sub  string
	}{
		{"bad uuid", h.CreateServerPool(agentapi.PoolParams{PoolUUID: "a/b"}), `pool uuid "a/b" is not valid`},
		{"bad vip", h.CreateServerPool(agentapi.PoolParams{PoolUUID: "p", VIP: "300.1.1.1"}), "not an IP address"},
		{"negative num", h.JoinServerPool(agentapi.PoolParams{PoolUUID: "p", Num: -1}), "num must not be negative"},
		{"bad role", h.CreateServerPool(agentapi.PoolParams{PoolUUID: "p", Roles: "xen,storage"}), `unknown role "storage"`},
		{"master role", h.UpdateServerRoles("xen,master"), "master is not set"},
		{"no role", h.UpdateServerRoles(" , "), "names no role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantFault(t, tt.err, agentapi.FaultInvalidArgument, tt.sub) })
	}
	if got := h.DiscoverServerPool(); got.PoolUUID != "" {
		t.Errorf("a refused call joined a pool: %+v", got)
	}
}
