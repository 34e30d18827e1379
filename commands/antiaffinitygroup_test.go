package commands

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
)

// Anti-affinity groups through the command language on a real fleet:
// create, add Vm, show, list, the refused start of a member with no
// server left, tags, edit, remove and delete; and completion offers the
// type, the groups by name and the clause.
func TestAntiAffinityGroupCommands(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 2, MemoryMiB: 4096, CPUs: 2})
	m := c.Manager
	actor := backend.Actor{User: "admin", Role: backend.RoleAdministrator}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	run := func(line string, want Outcome, has ...string) string {
		t.Helper()
		var out bytes.Buffer
		ctx := context.Background()
		o := NewSession(ctx, Default, m, actor, &out, Options{Log: quiet}).RunLine(ctx, line)
		if o != want {
			t.Fatalf("%s: outcome %v, want %v\n%s", line, o, want, out.String())
		}
		for _, h := range has {
			if !strings.Contains(out.String(), h) {
				t.Fatalf("%s: the output lacks %q\n%s", line, h, out.String())
			}
		}
		return out.String()
	}

	run("create AntiAffinityGroup name=web description='the web tier' on ServerPool name=pool1", OK, "name:web")
	for _, vm := range []string{"web1", "web2", "web3"} {
		run("create Vm name="+vm+" repository=repo1 memory=256", OK)
		run("add Vm name="+vm+" to AntiAffinityGroup name=web", OK, "Name = web", "  ["+vm+"]")
	}
	run("start Vm name=web1", OK)
	run("start Vm name=web2", OK)
	run("start Vm name=web3", Failed, "ServerPool pool1 has no server that can take Vm web3: ovs1 has Vm web", "of AntiAffinityGroup web (an AntiAffinityGroup keeps its members on different servers)")
	show := run("show AntiAffinityGroup name=web", OK, "Server Pool = ", "[pool1]", "Description = the web tier", "Vms = 3", "Placement = web1 Running on ovs", "web3 Stopped")
	for _, vm := range []string{"Vm 1 = ", "Vm 2 = ", "Vm 3 = "} {
		if !strings.Contains(show, vm) {
			t.Fatalf("show AntiAffinityGroup lacks %q\n%s", vm, show)
		}
	}
	run("set outputMode=Json; set jsonVersion=2; show AntiAffinityGroup name=web", OK, `"vms":[{"id":`, `"vmCount":3`)
	run("list AntiAffinityGroup serverPool=pool1", OK, "name:web")
	run("create Tag name=tier", OK)
	run("add Tag name=tier to AntiAffinityGroup name=web", OK)
	run("list AntiAffinityGroup tag=tier", OK, "name:web")
	run("show AntiAffinityGroup name=web", OK, "Tags = tier")
	run("edit AntiAffinityGroup name=web name=front description=front", OK, "name:front")
	run("delete AntiAffinityGroup name=front", Failed, "AntiAffinityGroup front has 3 members (web1, web2, web3); take them out first")
	run("create AntiAffinityGroup name=db on ServerPool name=pool1", OK)

	// Completion reads the real inventory.
	ctx := c.Admin()
	names := func(q NameQuery) []string { return m.ObjectNames(ctx, q.Type, q.Prefix, q.Limit, q.States) }
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"show Anti", []string{"AntiAffinityGroup "}},
		{"add Vm name=web1 ", []string{"to "}},
		{"add Vm name=web1 to ", []string{"AntiAffinityGroup "}},
		{"add Vm name=web1 to AntiAffinityGroup name=", []string{"db ", "front "}},
		{"add Vm name=w", []string{"web1 ", "web2 ", "web3 "}},
		{"remove Vm name=web1 from AntiAffinityGroup name=f", []string{"front "}},
		{"show AntiAffinityGroup name=d", []string{"db "}},
		{"delete AntiAffinityGroup name=", []string{"db ", "front "}},
		{"edit AntiAffinityGroup name=front ", []string{"description="}},
		{"create AntiAffinityGroup name=x on ServerPool name=p", []string{"pool1 "}},
		{"list AntiAffinityGroup ", []string{"serverPool=", "tag="}},
	} {
		_, got := Default.Complete(tc.line, names)
		offered := map[string]bool{}
		for _, s := range got {
			offered[s.Text] = true
		}
		for _, w := range tc.want {
			if !offered[w] {
				t.Errorf("Complete(%q) lacks %q; got %v", tc.line, w, got)
			}
		}
	}

	for _, vm := range []string{"web1", "web2", "web3"} {
		run("remove Vm name="+vm+" from AntiAffinityGroup name=front", OK)
	}
	run("remove Vm name=web1 from AntiAffinityGroup name=front", Failed, "Vm web1 is not in AntiAffinityGroup front")
	run("start Vm name=web3", OK)
	run("delete AntiAffinityGroup name=front", OK, "name:front")
	run("show AntiAffinityGroup name=front", Failed, `AntiAffinityGroup "front" not found`)
}
