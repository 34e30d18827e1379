package shell

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"xenmanager/backend/agentapi"
)

// The command language over the SSH path: filters, patterns, multi-object
// actions and session settings, against real agents.
func TestLanguageOverSSH(t *testing.T) {
	e := newEnv(t, 2, 8192)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	for _, n := range []string{"web1", "web2", "web3", "db1"} {
		e.mustRun("create Vm name=" + n + " repository=repo1 memory=1024")
	}
	e.mustRun("start Vm name=db1")

	t.Run("filters", func(t *testing.T) {
		tests := []struct {
			cmd  string
			want []string
		}{
			{"list Vm name=web*", []string{"web1", "web2", "web3"}},
			{"list Vm name=web?", []string{"web1", "web2", "web3"}},
			{"list Vm name=[wd]*1", []string{"db1", "web1"}},
			{"list Vm status=Running", []string{"db1"}},
			{"list Vm status=stopped name=web1", []string{"web1"}},
			{"list Vm serverPool=pool1 repository=repo1 name=d*", []string{"db1"}},
			{"list Vm name=zz*", nil},
			{"list Server serverPool=pool1", []string{"ovs1", "ovs2"}},
			{"list Server name=ovs2", []string{"ovs2"}},
			{"list Repository serverPool=pool*", []string{"repo1"}},
			{"list ServerPool name=pool1", []string{"pool1"}},
		}
		for _, tc := range tests {
			out := e.mustRun(tc.cmd)
			if got := strings.Count(out, "  id:"); got != len(tc.want) {
				t.Errorf("%s: %d rows, want %v\n%s", tc.cmd, got, tc.want, out)
			}
			for _, n := range tc.want {
				if !strings.Contains(out, "name:"+n+"\n") {
					t.Errorf("%s: lacks %s\n%s", tc.cmd, n, out)
				}
			}
		}
		server := strings.TrimSpace(strings.SplitN(prop(e.mustRun("show Vm name=db1"), "Server"), "[", 2)[1])
		server = strings.TrimSuffix(server, "]")
		if out := e.mustRun("list Vm server=" + server); strings.Count(out, "  id:") != 1 || !strings.Contains(out, "name:db1") {
			t.Errorf("list Vm server=%s:\n%s", server, out)
		}
		for cmd, code := range map[string]string{
			"list Vm server=ovs9":    "XM_0404E",
			"list Vm serverPool=no*": "XM_0404E",
			"list Vm name=[":         "XM_0400E",
			"list Vm status=Asleep":  "XM_0006E",
		} {
			if out, _ := e.run(cmd); !strings.Contains(out, code) {
				t.Errorf("%s: want %s\n%s", cmd, code, out)
			}
		}
	})

	t.Run("tags", func(t *testing.T) {
		e.mustRun("create Tag name=frontend description='public web'; add Tag name=frontend to Vm name=web1; add Tag name=frontend to Vm name=web2")
		e.mustRun("create Tag name=prod; add Tag name=prod to Server name=ovs1; add Tag name=prod to ServerPool name=pool1")
		if out := e.mustRun("list Vm tag=frontend"); strings.Count(out, "  id:") != 2 || !strings.Contains(out, "name:web1\n") || !strings.Contains(out, "name:web2\n") {
			t.Errorf("list Vm tag=frontend:\n%s", out)
		}
		if out := e.mustRun("list Vm tag=front* status=Stopped name=*2"); strings.Count(out, "  id:") != 1 {
			t.Errorf("tag with other filters:\n%s", out)
		}
		if out := e.mustRun("list Server tag=prod"); strings.Count(out, "  id:") != 1 || !strings.Contains(out, "name:ovs1") {
			t.Errorf("list Server tag=prod:\n%s", out)
		}
		if tags := prop(e.mustRun("show Vm name=web1"), "Tags"); tags != "frontend" {
			t.Errorf("show Vm Tags = %q", tags)
		}
		e.mustRun("remove Tag name=frontend from Vm name=web2")
		if out := e.mustRun("list Vm tag=frontend"); strings.Count(out, "  id:") != 1 {
			t.Errorf("after remove:\n%s", out)
		}
		if out, _ := e.run("list Vm tag=nosuch"); !strings.Contains(out, "XM_0404E") {
			t.Errorf("unknown tag:\n%s", out)
		}
		e.mustRun("delete Tag name=frontend")
		if out, _ := e.run("remove Tag name=prod from Vm name=web1"); !strings.Contains(out, "does not carry Tag prod") {
			t.Errorf("removing a tag an object lacks:\n%s", out)
		}
	})

	t.Run("several objects need multiple=Yes", func(t *testing.T) {
		out, status := e.run("start Vm name=web*")
		if status != 1 || !strings.Contains(out, "XM_0300E") || !strings.Contains(out, "matches 3 Vm objects; add multiple=Yes") {
			t.Fatalf("start without multiple: exit %d\n%s", status, out)
		}
		if out := e.mustRun("list Vm status=Running"); strings.Count(out, "  id:") != 1 {
			t.Fatalf("a refused multi-start started something:\n%s", out)
		}
		out = e.mustRun("start Vm name=web* multiple=Yes")
		if strings.Count(out, "result:Success") != 3 {
			t.Fatalf("start multiple: want 3 result lines\n%s", out)
		}
		if out := e.mustRun("list Vm status=Running"); strings.Count(out, "  id:") != 4 {
			t.Fatalf("after multi-start:\n%s", out)
		}
		// One of three fails (web3 runs already): one line each, exit 1.
		e.mustRun("stop Vm name=web1; stop Vm name=web2")
		out, status = e.run("start Vm name=web* multiple=Yes")
		if status != 1 || strings.Count(out, "result:Success") != 2 || !strings.Contains(out, "1 of 3 objects failed") ||
			!strings.Contains(out, "Vm web3 is Running; start needs Stopped") {
			t.Fatalf("partly failing multi-start: exit %d\n%s", status, out)
		}
	})

	t.Run("filters select the objects of an action", func(t *testing.T) {
		// web1, web2, web3 and db1 run.
		out, status := e.run("stop Vm repository=repo1 name=web*")
		if status != 2 || !strings.Contains(out, "XM_0005E: name=web* repository=repo1 selects 3 Vm objects; filters act only with multiple=Yes") {
			t.Fatalf("filters without multiple=Yes: exit %d\n%s", status, out)
		}
		out, status = e.run("stop Vm repository=repo1 name=web* multiple=Yes")
		if status != 0 || strings.Count(out, "result:Success") != 3 {
			t.Fatalf("stop by filters: exit %d\n%s", status, out)
		}
		out, status = e.run("stop Vm status=Running name=web* multiple=Yes")
		if status != 1 || !strings.Contains(out, "XM_0404E: no Vm matches name=web* status=Running; nothing was done") {
			t.Fatalf("an empty selection: exit %d\n%s", status, out)
		}
		e.mustRun("start Vm name=web1")
		out, status = e.run("kill Vm serverPool=pool1 name=web* multiple=Yes")
		if status != 1 || strings.Count(out, "result:Success") != 1 || !strings.Contains(out, "2 of 3 objects failed") {
			t.Fatalf("a partly failing kill by filters: exit %d\n%s", status, out)
		}
		if out := e.mustRun("list Vm status=Running"); strings.Count(out, "  id:") != 1 || !strings.Contains(out, "name:db1\n") {
			t.Fatalf("after the kill:\n%s", out)
		}
	})

	t.Run("show with a shared name lists the ids", func(t *testing.T) {
		e.mustRun("create Vm name=twin repository=repo1; create Vm name=twin repository=repo1")
		out, status := e.run("show Vm name=twin")
		if status != 1 || !strings.Contains(out, "XM_0300E") || strings.Count(out, "0004fb0000060000") != 2 {
			t.Fatalf("ambiguous show: exit %d\n%s", status, out)
		}
	})

	t.Run("stopOnError ends the batch", func(t *testing.T) {
		out, status := e.batch("set stopOnError=Yes\nshow Vm name=nope\nlist Vm\n")
		if status != 1 || strings.Contains(out, "Command: list Vm") {
			t.Fatalf("stopOnError: exit %d\n%s", status, out)
		}
		out, status = e.batch("show Vm name=nope\nlist Vm\n")
		if status != 1 || !strings.Contains(out, "Command: list Vm") {
			t.Fatalf("default goes on: exit %d\n%s", status, out)
		}
	})

	t.Run("settings", func(t *testing.T) {
		out := e.mustRun("set commandTimeout=120 alphabetizeAttributes=Yes; showclisession")
		for k, v := range map[string]string{"Command Timeout": "120", "Alphabetize Attributes": "Yes", "Output Mode": "Verbose", "User": "admin"} {
			if got := prop(out, k); got != v {
				t.Errorf("showclisession %s = %q, want %q\n%s", k, got, v, out)
			}
		}
		if out, status := e.run("set"); status != 2 || !strings.Contains(out, "set needs at least one of") {
			t.Errorf("bare set: exit %d\n%s", status, out)
		}
		if out := e.mustRun("showversion"); prop(out, "Agent API Version") != agentapi.APIVersion {
			t.Errorf("showversion:\n%s", out)
		}
		if out := e.mustRun("showcustomcmds Vm"); !strings.Contains(out, "start Vm = start Vm [<instance>] [<filter> ...] [multiple=Yes|No]") {
			t.Errorf("showcustomcmds Vm:\n%s", out)
		}
		if out := e.mustRun("showobjtypes"); !strings.Contains(out, "Vm = ") {
			t.Errorf("showobjtypes:\n%s", out)
		}
	})

	t.Run("commandTimeout", func(t *testing.T) {
		for i := range e.agents {
			err := e.agentClient(i).Call(context.Background(), agentapi.MethodSimSet, nil,
				map[string]any{"latency_ms": map[string]any{agentapi.MethodStopVM: 1500}})
			if err != nil {
				t.Fatal(err)
			}
		}
		out, status := e.run("set commandTimeout=1; stop Vm name=db1")
		if status != 1 || !strings.Contains(out, "XM_0408E") || !strings.Contains(out, "is still running") {
			t.Fatalf("timeout: exit %d\n%s", status, out)
		}
		id := regexp.MustCompile(`wait Job id=([0-9a-f]{32})`).FindStringSubmatch(out)
		if id == nil {
			t.Fatalf("no job id in:\n%s", out)
		}
		// The stop goes on after the command gave up waiting, and is recorded.
		out = e.mustRun("wait Job id=" + id[1])
		if prop(out, "Status") != "Success" || prop(out, "Name") != "stop Vm db1" {
			t.Fatalf("wait Job:\n%s", out)
		}
		if got := prop(e.mustRun("show Vm name=db1"), "Status"); got != "Stopped" {
			t.Fatalf("db1 after the job: %s", got)
		}
	})
}
