package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
)

// An attribute of an action named like one of list's filters is the
// action's own (its target): the filter of that name is not taken, and a
// command that gives it for a filter is refused saying so.
func TestSelectingOwnAttributeWinsOverFilter(t *testing.T) {
	reg := newRegistry()
	clone := selecting(&Spec{Type: "Vm", Instance: true, Help: "Clone VMs into a pool.",
		Attrs: []Attr{{Name: "serverPool", Kind: AttrObject, Object: "ServerPool", Help: "the pool to clone to"}, attrMultiple},
		Run:   func(context.Context, *Exec) (*Result, error) { return nil, nil }})
	reg.add(&VerbInfo{Name: "clone", Help: "Clone an object.", Specs: []*Spec{clone}})
	if a := clone.attr("serverPool"); a == nil || a.Filter || a.Help != "the pool to clone to" {
		t.Fatalf("clone Vm's serverPool= is %+v; want its own attribute, not a filter", a)
	}
	if n := strings.Count(strings.Join(specHelp(clone), "\n"), "  serverPool  "); n != 1 {
		t.Errorf("help lists serverPool %d times, want once:\n%s", n, strings.Join(specHelp(clone), "\n"))
	}
	tests := []struct {
		in      string
		code    Code
		msg     string
		filters string // the selection's words, when it parses
		pool    string // the serverPool= the handler reads
	}{
		{in: "clone Vm serverPool=p2 multiple=Yes", code: CodeMissingInstance,
			msg: "clone Vm needs the objects: id=<id> or name=<name or pattern>, or filters (status=, server=, repository=, tag=) with multiple=Yes; serverPool= here is clone Vm's own attribute (the pool to clone to), not a filter"},
		{in: "clone Vm name=web* serverPool=p2 multiple=Yes", filters: "name=web*", pool: "p2"},
		{in: "clone Vm tag=web serverPool=p2 multiple=Yes", filters: "tag=web", pool: "p2"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			cmd, perr := reg.Parse(tc.in)
			if tc.code != "" {
				if perr == nil || perr.Code != tc.code || perr.Msg != tc.msg {
					t.Fatalf("Parse = %v; want %s: %s", perr, tc.code, tc.msg)
				}
				return
			}
			if perr != nil {
				t.Fatalf("Parse: %v", perr)
			}
			_, f, words, _ := selection(&Exec{Cmd: cmd})
			if words != tc.filters || f.Pool != (backend.Ref{}) || cmd.Attrs["serverPool"] != tc.pool {
				t.Errorf("selection %q, filter %+v, serverPool=%q; want %q, no pool filter, serverPool=%q", words, f, cmd.Attrs["serverPool"], tc.filters, tc.pool)
			}
		})
	}
}

// The selection of an action reads its instance and each filter given into
// the backend's filter, and says them back in the order help lists them.
func TestSelectionReadsInstanceAndFilters(t *testing.T) {
	cmd, perr := Default.Parse(`stop Vm tag=web server=ovs1 name="web *" serverPool=p1 repository=0004FB00000300001122334455667788 status=running multiple=Yes`)
	if perr != nil {
		t.Fatal(perr)
	}
	ref, f, words, filtered := selection(&Exec{Cmd: cmd})
	want := backend.Filter{Status: "Running", Server: backend.Ref{Name: "ovs1"}, Pool: backend.Ref{Name: "p1"},
		Repository: backend.Ref{ID: "0004fb00000300001122334455667788"}, Tag: backend.Ref{Name: "web"}}
	if ref != (backend.Ref{Name: "web *"}) || f != want || !filtered {
		t.Errorf("selection = %+v, %+v, %v; want name web *, %+v, filtered", ref, f, filtered, want)
	}
	if w := `name="web *" status=Running server=ovs1 serverPool=p1 repository=0004FB00000300001122334455667788 tag=web`; words != w {
		t.Errorf("words = %q, want %q", words, w)
	}
}

// selectFleet is a manager with real agents ovs1 and ovs2 in pool1, and
// VMs a1..a3 running on ovs1 and b1, b2 on ovs2; a1 and b1 carry tag web.
func selectFleet(t *testing.T) (*managertest.Core, func(line string) (Outcome, string)) {
	t.Helper()
	c := managertest.Ready(t, managertest.Options{Agents: 2})
	run := sessionAs(c, backend.Actor{User: "admin", Role: backend.RoleAdministrator})
	for _, line := range []string{
		"create Vm name=a1 repository=repo1 memory=64; create Vm name=a2 repository=repo1 memory=64; create Vm name=a3 repository=repo1 memory=64",
		"create Vm name=b1 repository=repo1 memory=64; create Vm name=b2 repository=repo1 memory=64",
		"edit Vm name=a1 preferredServers=ovs1; edit Vm name=a2 preferredServers=ovs1; edit Vm name=a3 preferredServers=ovs1",
		"edit Vm name=b1 preferredServers=ovs2; edit Vm name=b2 preferredServers=ovs2",
		"start Vm name=* multiple=Yes",
		"create Tag name=web; add Tag name=web to Vm name=a1; add Tag name=web to Vm name=b1",
	} {
		if o, out := run(line); o != OK {
			t.Fatalf("%s: %v\n%s", line, o, out)
		}
	}
	return c, run
}

// sessionAs returns a runner of lines in one Verbose session of actor on
// c's manager: each line's outcome and output.
func sessionAs(c *managertest.Core, actor backend.Actor) func(line string) (Outcome, string) {
	ctx := backend.WithActor(context.Background(), actor)
	var out bytes.Buffer
	s := NewSession(ctx, Default, c.Manager, actor, &out, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	return func(line string) (Outcome, string) {
		out.Reset()
		o := s.RunLine(ctx, line)
		return o, out.String()
	}
}

// running is what every agent of c runs, by VM name, read from the agents
// themselves (not the manager's records): "a1@ovs1".
func running(t *testing.T, c *managertest.Core) []string {
	t.Helper()
	vms, err := c.Manager.ListVMs(c.Admin(), backend.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	nameOf := map[string]string{}
	for _, v := range vms {
		nameOf[v.ID] = v.Name
	}
	var out []string
	for i, a := range c.Agents {
		doms, err := c.AgentClient(i).ListVMs(context.Background())
		if err != nil {
			t.Fatalf("list_vms on %s: %v", a.Hostname, err)
		}
		for _, d := range doms {
			out = append(out, nameOf[d.Name]+"@"+a.Hostname)
		}
	}
	slices.Sort(out)
	return out
}

// Filter-selected actions end to end, through a session on a manager with
// real agents: refused without multiple=Yes (saying how many VMs the filter
// selects, acting on none), then one result row per VM selected by tag= and
// by server= (the agents run what is left), and an empty selection that
// fails as not found.
func TestFilterSelectedActions(t *testing.T) {
	c, run := selectFleet(t)
	all := []string{"a1@ovs1", "a2@ovs1", "a3@ovs1", "b1@ovs2", "b2@ovs2"}
	if got := running(t, c); !slices.Equal(got, all) {
		t.Fatalf("the fleet runs %v, want %v", got, all)
	}

	o, out := run("stop Vm server=ovs1")
	if o != ParseFailed || !strings.Contains(out, "Error Msg: XM_0005E: server=ovs1 selects 3 Vm objects; filters act only with multiple=Yes: add multiple=Yes to stop all of them") {
		t.Errorf("stop Vm server=ovs1 without multiple=Yes: %v\n%s", o, out)
	}
	o, out = run("kill Vm name=a1 server=ovs1")
	if o != ParseFailed || !strings.Contains(out, "XM_0005E: name=a1 server=ovs1 selects 1 Vm object; filters act only with multiple=Yes: add multiple=Yes to kill it") {
		t.Errorf("kill Vm name=a1 server=ovs1 without multiple=Yes: %v\n%s", o, out)
	}
	if got := running(t, c); !slices.Equal(got, all) {
		t.Fatalf("after the refusals the fleet runs %v, want %v", got, all)
	}

	o, out = run("stop Vm tag=web multiple=Yes")
	if o != OK || strings.Count(out, "result:Success") != 2 || !strings.Contains(out, "name:a1  result:Success") || !strings.Contains(out, "name:b1  result:Success") {
		t.Errorf("stop Vm tag=web multiple=Yes: %v\n%s", o, out)
	}
	if got, want := running(t, c), []string{"a2@ovs1", "a3@ovs1", "b2@ovs2"}; !slices.Equal(got, want) {
		t.Fatalf("after stopping tag web the fleet runs %v, want %v", got, want)
	}

	// A stopped VM is on no server: server= selects the running ones.
	o, out = run("stop Vm server=ovs1 multiple=Yes")
	if o != OK || strings.Count(out, "result:Success") != 2 || !strings.Contains(out, "name:a2  result:Success") ||
		!strings.Contains(out, "name:a3  result:Success") || strings.Contains(out, "name:b2") {
		t.Errorf("stop Vm server=ovs1 multiple=Yes: %v\n%s", o, out)
	}
	if got, want := running(t, c), []string{"b2@ovs2"}; !slices.Equal(got, want) {
		t.Fatalf("after stopping ovs1 the fleet runs %v, want %v", got, want)
	}

	// One row per VM, success or the error; the command fails if any did.
	o, out = run("kill Vm serverPool=pool1 multiple=Yes")
	if o != Failed || strings.Count(out, "result:XM_0412E") != 4 || !strings.Contains(out, "name:b2  result:Success") ||
		!strings.Contains(out, "Error Msg: XM_0412E: 4 of 5 objects failed") {
		t.Errorf("kill Vm serverPool=pool1 multiple=Yes: %v\n%s", o, out)
	}
	if got := running(t, c); len(got) != 0 {
		t.Fatalf("after killing pool1 the fleet runs %v", got)
	}

	o, out = run("start Vm server=ovs1 status=Running multiple=Yes")
	if o != Failed || !strings.Contains(out, "Error Msg: XM_0404E: no Vm matches status=Running server=ovs1; nothing was done") || strings.Contains(out, "Data:") {
		t.Errorf("an empty selection: %v\n%s", o, out)
	}
	o, out = run("stop Vm server=ovs9 multiple=Yes")
	if o != Failed || !strings.Contains(out, `Error Msg: XM_0404E: Server "ovs9" not found`) {
		t.Errorf("a filter naming no server: %v\n%s", o, out)
	}
}

// The Json form of a filter-selected action is that of multiple=Yes: one
// object per VM with its result, and the error of the first failure.
func TestFilterSelectedActionJSON(t *testing.T) {
	c, run := selectFleet(t)
	if o, out := run("stop Vm name=a* multiple=Yes; set outputMode=Json"); o != OK {
		t.Fatalf("%v\n%s", o, out)
	}
	o, out := run("start Vm serverPool=pool1 status=Stopped multiple=Yes")
	var res struct {
		Command, Status string
		Data            []struct{ ID, Name, Result string }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || o != OK {
		t.Fatalf("start Vm serverPool=pool1 status=Stopped: %v, %v\n%s", o, err, out)
	}
	var names []string
	for _, d := range res.Data {
		if d.Result != "Success" || len(d.ID) != 32 {
			t.Errorf("row %+v; want an id and result Success", d)
		}
		names = append(names, d.Name)
	}
	slices.Sort(names)
	if res.Command != "start Vm serverPool=pool1 status=Stopped multiple=Yes" || res.Status != "Success" || !slices.Equal(names, []string{"a1", "a2", "a3"}) {
		t.Errorf("Json result %+v; want a1, a2, a3 started", res)
	}
	if got := running(t, c); len(got) != 5 {
		t.Errorf("the fleet runs %v, want all five", got)
	}

	o, out = run("kill Vm status=Running tag=web server=ovs2 multiple=Yes; pause Vm serverPool=pool1 multiple=Yes")
	if o != Failed {
		t.Fatalf("kill then pause: %v\n%s", o, out)
	}
	var failed struct {
		Status string
		Data   []struct{ Name, Result string }
		Error  struct{ Code, Message string }
	}
	last := out[strings.LastIndex(out, "\n{")+1:]
	if err := json.Unmarshal([]byte(last), &failed); err != nil {
		t.Fatalf("%v\n%s", err, last)
	}
	results := map[string]string{}
	for _, d := range failed.Data {
		results[d.Name] = d.Result
	}
	if failed.Status != "Failure" || len(failed.Data) != 5 || !strings.HasPrefix(results["b1"], "XM_0412E: ") || results["a1"] != "Success" ||
		results["b2"] != "Success" || failed.Error.Code != "XM_0412E" || !strings.HasPrefix(failed.Error.Message, "1 of 5 objects failed") {
		t.Errorf("pause Vm serverPool=pool1 after b1 was killed: %+v\n%s", failed, last)
	}
}

// Each VM of a filter-selected action is authorised as if named alone: an
// Operator acts on the VMs of their pools only (the others are not even
// selected), a Viewer on none (each row refused, exit status 3).
func TestFilterSelectedActionRoles(t *testing.T) {
	c := managertest.Open(t, managertest.Options{Agents: 2})
	c.Discover()
	admin := sessionAs(c, backend.Actor{User: "admin", Role: backend.RoleAdministrator})
	for _, line := range []string{
		"create ServerPool name=pool1; add Server name=ovs1 to ServerPool name=pool1",
		"create ServerPool name=pool2; add Server name=ovs2 to ServerPool name=pool2",
		"create Repository name=repo1 fsLocation=" + filepath.Join(t.TempDir(), "r1") + " on ServerPool name=pool1",
		"create Repository name=repo2 fsLocation=" + filepath.Join(t.TempDir(), "r2") + " on ServerPool name=pool2",
		"create Vm name=p1vm repository=repo1 memory=64; create Vm name=p2vm repository=repo2 memory=64",
		"start Vm name=* multiple=Yes",
		"create Tag name=web; add Tag name=web to Vm name=p1vm; add Tag name=web to Vm name=p2vm",
		"create User name=op password=op-secret-1 role=Operator; add User name=op to ServerPool name=pool1",
		"create User name=viewer password=viewer-pw-1 role=Viewer; add User name=viewer to ServerPool name=pool1; add User name=viewer to ServerPool name=pool2",
	} {
		if o, out := admin(line); o != OK {
			t.Fatalf("%s: %v\n%s", line, o, out)
		}
	}
	both := []string{"p1vm@ovs1", "p2vm@ovs2"}
	o, out := sessionAs(c, backend.Actor{User: "viewer", Role: backend.RoleViewer})("stop Vm tag=web multiple=Yes")
	if o != Denied || strings.Count(out, "result:XM_0403E") != 2 || !strings.Contains(out, "Error Msg: XM_0403E: 2 of 2 objects failed") {
		t.Errorf("viewer: %v\n%s", o, out)
	}
	if got := running(t, c); !slices.Equal(got, both) {
		t.Fatalf("after the viewer's stop the fleet runs %v, want %v", got, both)
	}
	o, out = sessionAs(c, backend.Actor{User: "op", Role: backend.RoleOperator})("stop Vm tag=web multiple=Yes")
	if o != OK || !strings.Contains(out, "name:p1vm  result:Success") || strings.Contains(out, "p2vm") {
		t.Errorf("operator of pool1: %v\n%s", o, out)
	}
	if got, want := running(t, c), []string{"p2vm@ovs2"}; !slices.Equal(got, want) {
		t.Fatalf("after the operator's stop the fleet runs %v, want %v", got, want)
	}
}
