package shell

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"xenmanager/backend/agentapi"
)

// A batch start of 200 VMs over 4 agents with 20 ms of latency on every
// call completes, and every VM ends Running exactly once.
func TestBatchStart200(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	e := newEnv(t, 4, 16384)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	var script strings.Builder
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&script, "create Vm name=load-%03d repository=repo1 memory=256\n", i)
	}
	if out, st := e.batch(script.String()); st != 0 {
		t.Fatalf("creating 200 VMs: exit %d\n%.2000s", st, out)
	}
	latency := map[string]any{}
	for _, m := range []string{agentapi.MethodDiscoverHardware, agentapi.MethodStartVM, agentapi.MethodListVM, agentapi.MethodListVMs} {
		latency[m] = 20
	}
	for i := range e.agents {
		if err := e.agentClient(i).Call(context.Background(), agentapi.MethodSimSet, nil, map[string]any{"latency_ms": latency}); err != nil {
			t.Fatal(err)
		}
	}
	out, st := e.run("start Vm name=load-* multiple=Yes")
	if st != 0 || strings.Count(out, "result:Success") != 200 {
		var failed []string // the rows that did not succeed, and the report's end
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "result:") && !strings.Contains(line, "result:Success") || strings.Contains(line, "Error Msg") {
				failed = append(failed, line)
			}
		}
		t.Fatalf("batch start: exit %d, %d successes; not succeeded:\n%s", st, strings.Count(out, "result:Success"), strings.Join(failed, "\n"))
	}
	seen := map[string]int{}
	perAgent := make([]int, len(e.agents))
	for i := range e.agents {
		domains, err := e.agentClient(i).ListVMs(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range domains {
			if d.State == agentapi.StateRunning {
				seen[d.UUID]++
				perAgent[i]++
			}
		}
	}
	if len(seen) != 200 {
		t.Fatalf("%d distinct running domains, want 200", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("VM %s runs %d times", id, n)
		}
	}
	if out := e.mustRun("list Vm status=Running name=load-*"); strings.Count(out, "  id:") != 200 {
		t.Fatalf("the store has %d running", strings.Count(out, "  id:"))
	}
	t.Logf("domains per agent: %v", perAgent)
	for i, n := range perAgent {
		if n < 25 {
			t.Errorf("agent %d runs only %d of 200: placement did not spread the load", i+1, n)
		}
	}
}

// A stdin batch reads its show Vm lines' VMs ahead (commands.Session.
// Prefetch), before the lines above them have run; each show still shows
// the VM as those lines left it: made after its show was read ahead,
// edited, renamed, and a name let go.
func TestBatchReadAheadShowsWhatTheBatchChanged(t *testing.T) {
	e := newEnv(t, 1, 16384)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	script := strings.Join([]string{
		"show Vm name=ra",
		"create Vm name=ra repository=repo1 memory=256",
		"show Vm name=ra",
		"edit Vm name=ra memory=768",
		"show Vm name=ra",
		"edit Vm name=ra name=rb",
		"show Vm name=rb",
		"show Vm name=ra",
	}, "\n") + "\n"
	out, _ := e.batch(script)
	// Each command's report begins "Command: <command>".
	parts := strings.Split(out, "Command: ")
	var shows []string
	for _, p := range parts {
		if strings.HasPrefix(p, "show Vm") {
			shows = append(shows, p)
		}
	}
	if len(shows) != 5 {
		t.Fatalf("%d show reports, want 5:\n%s", len(shows), out)
	}
	for i, want := range []string{"not found", "Memory (MB) = 256", "Memory (MB) = 768", "Name = rb", "not found"} {
		if !strings.Contains(shows[i], want) {
			t.Errorf("show %d: want %q in\n%s", i+1, want, shows[i])
		}
	}
}
