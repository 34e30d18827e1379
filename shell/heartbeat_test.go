package shell

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"xenmanager/backend/agentapi"
)

// Heartbeats turn out-of-band changes into state and events: a guest that
// shuts itself down is recorded Stopped; a server that stops answering
// becomes Unreachable (nothing is placed there) and Running again.
func TestHeartbeatsAndOutOfBandChanges(t *testing.T) {
	e := newEnv(t, 2, 8192)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	e.mustRun("create Vm name=g1 repository=repo1 memory=256; edit Vm name=g1 preferredServers=ovs1; start Vm name=g1")
	ctx := context.Background()
	beat := func() { e.mgr.Beat(ctx, 300*time.Millisecond) }
	beat() // the first beat sets each server's event cursor

	vmID := prop(e.mustRun("show Vm name=g1"), "Id")
	if err := e.agentClient(0).Call(ctx, agentapi.MethodSimSet, nil, map[string]any{"guest_shutdown": vmID}); err != nil {
		t.Fatal(err)
	}
	beat()
	if st := prop(e.mustRun("show Vm name=g1"), "Status"); st != "Stopped" {
		t.Fatalf("after the guest shut itself down the VM is %s", st)
	}
	if out := e.mustRun("getEvents"); !strings.Contains(out, "name:VmStoppedOutside") {
		t.Fatalf("no event for the guest shutdown:\n%s", out)
	}

	if err := e.agentClient(1).Call(ctx, agentapi.MethodSimSet, nil, map[string]any{"hang": true}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		beat()
	}
	if st := prop(e.mustRun("show Server name=ovs2"), "Status"); st != "Unreachable" {
		t.Fatalf("a hung server is %s after 3 missed heartbeats", st)
	}
	if out := e.mustRun("getEvents"); !strings.Contains(out, "name:ServerUnreachable") {
		t.Fatalf("no event for the unreachable server:\n%s", out)
	}
	e.mustRun("create Vm name=g2 repository=repo1 memory=256; start Vm name=g2")
	if srv := prop(e.mustRun("show Vm name=g2"), "Server"); !strings.HasSuffix(srv, "[ovs1]") {
		t.Fatalf("placed on %s while ovs2 is unreachable", srv)
	}
	if err := e.agentClient(1).Call(ctx, agentapi.MethodSimSet, nil, map[string]any{"hang": false}); err != nil {
		t.Fatal(err)
	}
	beat()
	if st := prop(e.mustRun("show Server name=ovs2"), "Status"); st != "Running" {
		t.Fatalf("ovs2 is %s after answering again", st)
	}
	if out := e.mustRun("getEvents"); !strings.Contains(out, "name:ServerReachable") {
		t.Fatalf("no event for the server's return:\n%s", out)
	}
}
