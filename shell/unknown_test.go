package shell

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"xenmanager/backend/agentapi"
)

// A VM whose server is Unreachable shows Unknown wherever a VM's status
// shows (show, list, its filter, top, Json and Xml), and start, stop, kill
// and migrate refuse it saying why and what to do; once the server answers
// again the VM shows Running, as recorded all along.
func TestAVMOnAnUnreachableServerIsUnknown(t *testing.T) {
	e := newEnv(t, 2, 8192)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	e.mustRun("create Vm name=far repository=repo1 memory=256; edit Vm name=far preferredServers=ovs2; start Vm name=far")
	e.mustRun("create Vm name=near repository=repo1 memory=256; edit Vm name=near preferredServers=ovs1; start Vm name=near")
	ctx := context.Background()
	beat := func() { e.mgr.Beat(ctx, 300*time.Millisecond) }
	hang := func(on bool) {
		t.Helper()
		if err := e.agentClient(1).Call(ctx, agentapi.MethodSimSet, nil, map[string]any{"hang": on}); err != nil {
			t.Fatal(err)
		}
	}
	hang(true)
	for range 3 {
		beat()
	}
	if st := prop(e.mustRun("show Server name=ovs2"), "Status"); st != "Unreachable" {
		t.Fatalf("ovs2 is %s after 3 missed heartbeats", st)
	}

	if st := prop(e.mustRun("show Vm name=far"), "Status"); st != "Unknown" {
		t.Errorf("show Vm of a VM on an unreachable server: Status %q, want Unknown", st)
	}
	if st := prop(e.mustRun("show Vm name=near"), "Status"); st != "Running" {
		t.Errorf("show Vm of a VM on a reachable server: Status %q, want Running", st)
	}
	list := e.mustRun("set outputMode=Table; list Vm")
	for name, want := range map[string]string{"far": "Unknown", "near": "Running"} {
		if !regexp.MustCompile(`\| ` + name + ` +\| [0-9a-f]{32} \| ` + want + ` +\|`).MatchString(list) {
			t.Errorf("list Vm does not show %s %s:\n%s", name, want, list)
		}
	}
	if out := e.mustRun("list Vm status=Unknown"); !strings.Contains(out, "name:far") || strings.Contains(out, "name:near") {
		t.Errorf("list Vm status=Unknown:\n%s", out)
	}
	if out := e.mustRun("list Vm status=Running"); strings.Contains(out, "name:far") || !strings.Contains(out, "name:near") {
		t.Errorf("list Vm status=Running:\n%s", out)
	}
	top := e.mustRun("top")
	if !regexp.MustCompile(`(?m)^  far\s+ovs2\s+Unknown\s`).MatchString(top) || !regexp.MustCompile(`(?m)^  near\s+ovs1\s+Running\s`).MatchString(top) ||
		!strings.Contains(top, "1 running VMs, 1 Unknown (their server is unreachable)") {
		t.Errorf("top does not agree with show Vm:\n%s", top)
	}
	if out := e.mustRun("set outputMode=Json; show Vm name=far"); !strings.Contains(lastLine(out), `"Status":"Unknown"`) {
		t.Errorf("Json show Vm:\n%s", out)
	}
	if out := e.mustRun("set outputMode=Xml; list Vm"); !regexp.MustCompile(`name="far"><col name="status">Unknown</col>`).MatchString(lastLine(out)) {
		t.Errorf("Xml list Vm:\n%s", out)
	}
	for _, cmd := range []string{"start Vm name=far", "stop Vm name=far", "kill Vm name=far", "migrate Vm name=far destServer=ovs1", "restart Vm name=far"} {
		e.failCode(cmd, "XM_0412E", "Vm far is Unknown: its server ovs2 is unreachable", "stop Vm name=far force=Yes")
	}
	if out := e.mustRun("show Vm name=far"); prop(out, "Server") == "" {
		t.Errorf("a refused action moved the VM off its server:\n%s", out)
	}

	hang(false)
	beat()
	if st := prop(e.mustRun("show Vm name=far"), "Status"); st != "Running" {
		t.Errorf("after its server answers again the VM is %s, want Running", st)
	}
	if out := e.mustRun("list Vm status=Unknown"); strings.Contains(out, "name:") {
		t.Errorf("list Vm status=Unknown with every server answering:\n%s", out)
	}
	e.mustRun("stop Vm name=far")
}
