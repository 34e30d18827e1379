package backend_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/managertest"
)

func ptr[T any](v T) *T { return &v }

// Turning a pool's high availability on tells every server its lease
// settings (each agent then leases), refuses what cannot work (no HA
// repository, one of another pool, timing out of bounds, a server not
// running), keeps the HA repository from being deleted, and turning it off
// tells every server to stop leasing.
func TestEditServerPoolHighAvailability(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 2})
	ctx := c.Admin()
	m := c.Manager
	pool := backend.Ref{Name: managertest.Pool}
	haOn := func(extra func(*backend.HAChange)) (backend.ServerPool, error) {
		ch := backend.HAChange{Enabled: ptr(true), Repository: &backend.Ref{Name: managertest.Repo},
			RenewInterval: ptr("200ms"), FenceTimeout: ptr("1s"), Margin: ptr("500ms")}
		if extra != nil {
			extra(&ch)
		}
		return m.EditServerPool(ctx, pool, backend.PoolEdit{HA: ch})
	}

	for _, bad := range []struct {
		name string
		edit func(*backend.HAChange)
		want string
	}{
		{"no repository", func(ch *backend.HAChange) { ch.Repository = nil }, "has no HA repository: name one with haRepository="},
		{"fence under three renewals", func(ch *backend.HAChange) { ch.FenceTimeout = ptr("500ms") }, "at least 3 renewals"},
		{"not a duration", func(ch *backend.HAChange) { ch.Margin = ptr("soon") }, `haRestartMargin "soon" is not a duration`},
	} {
		if _, err := haOn(bad.edit); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: edit ServerPool = %v, want an error with %q", bad.name, err, bad.want)
		}
	}
	for i := range c.Agents {
		st, err := c.AgentClient(i).HAStatus(context.Background())
		if err != nil || st.Enabled {
			t.Fatalf("agent %d leases after refused edits: %+v, %v", i, st, err)
		}
	}

	p, err := haOn(nil)
	if err != nil {
		t.Fatalf("turn HA on: %v", err)
	}
	if !p.HA.Enabled || p.HA.Repository.Name != managertest.Repo || p.HA.Renew != 200*time.Millisecond || p.HA.Fence != time.Second || p.HA.Margin != 500*time.Millisecond {
		t.Fatalf("the pool after HA on: %+v", p.HA)
	}
	servers, err := m.Servers(ctx, backend.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range c.Agents {
		st, err := c.AgentClient(i).HAStatus(context.Background())
		if err != nil || !st.Enabled || st.PoolUUID != p.ID || st.RepoUUID != p.HA.Repository.ID || st.FenceTimeoutMS != 1000 || st.RenewIntervalMS != 200 {
			t.Fatalf("agent %d after HA on: %+v, %v", i, st, err)
		}
		if !hasServerID(servers, st.ServerID) {
			t.Fatalf("agent %d leases as server %q, which the manager does not know", i, st.ServerID)
		}
	}
	if _, err := m.DeleteRepository(ctx, backend.Ref{Name: managertest.Repo}); err == nil || !strings.Contains(err.Error(), "is the HA repository of ServerPool") {
		t.Fatalf("delete the HA repository while HA is on = %v", err)
	}

	if _, err := m.EditServerPool(ctx, pool, backend.PoolEdit{HA: backend.HAChange{Enabled: ptr(false)}}); err != nil {
		t.Fatalf("turn HA off: %v", err)
	}
	for i := range c.Agents {
		st, err := c.AgentClient(i).HAStatus(context.Background())
		if err != nil || st.Enabled {
			t.Fatalf("agent %d still leases after HA off: %+v, %v", i, st, err)
		}
	}
	if _, err := m.DeleteRepository(ctx, backend.Ref{Name: managertest.Repo}); err != nil {
		t.Fatalf("delete the former HA repository with HA off: %v", err)
	}
	if p, err := m.ServerPool(ctx, pool); err != nil || p.HA.Repository.ID != "" {
		t.Fatalf("the pool still names a deleted HA repository: %+v, %v", p.HA, err)
	}
}

func hasServerID(servers []backend.Server, id string) bool {
	for _, s := range servers {
		if s.ID == id {
			return true
		}
	}
	return false
}

// A server that cannot take its lease keeps HA off for the whole pool: the
// servers told already are told to stop again.
func TestEditServerPoolHighAvailabilityAllOrNothing(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 2})
	ctx := c.Admin()
	m := c.Manager
	// The second agent's storage fails: it cannot write its lease.
	if err := c.AgentClient(1).Call(context.Background(), agentapi.MethodSimSet, nil, map[string]any{"ha_storage_fail": true}); err != nil {
		t.Fatal(err)
	}
	_, err := m.EditServerPool(ctx, backend.Ref{Name: managertest.Pool}, backend.PoolEdit{HA: backend.HAChange{
		Enabled: ptr(true), Repository: &backend.Ref{Name: managertest.Repo}}})
	if err == nil || !strings.Contains(err.Error(), "ovs2") {
		t.Fatalf("HA on with a server that cannot lease = %v, want an error naming ovs2", err)
	}
	for i := range c.Agents {
		st, err := c.AgentClient(i).HAStatus(context.Background())
		if err != nil || st.Enabled {
			t.Fatalf("agent %d leases after a refused HA: %+v, %v", i, st, err)
		}
	}
	if p, err := m.ServerPool(ctx, backend.Ref{Name: managertest.Pool}); err != nil || p.HA.Enabled {
		t.Fatalf("the pool records HA on after a refusal: %+v, %v", p.HA, err)
	}
}
