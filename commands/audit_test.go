package commands

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
)

// behindStore runs stmt on c's database on a connection of its own, behind
// the store's back: a fault the manager did not cause.
func behindStore(t *testing.T, c *managertest.Core, stmt string) {
	t.Helper()
	u := url.URL{Scheme: "file", Path: filepath.Join(c.Dir, "manager.db"), RawQuery: "_pragma=busy_timeout(5000)"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

// Every command a session runs has one audit record, whatever it did: a
// change, a read, a line that did not parse, a change followed by a
// failure (the record has the failure); a change whose record cannot be
// written fails and is not made, and its failure is recorded once the
// database takes records again.
func TestSessionAuditsEveryCommand(t *testing.T) {
	c := managertest.Open(t, managertest.Options{})
	m := c.Manager
	actor := backend.Actor{User: "admin", Role: backend.RoleAdministrator, Remote: "192.0.2.7:2222"}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	// makeThenFail creates a pool, then fails as an agent call after the
	// database write would.
	reg := newRegistry()
	reg.add(&VerbInfo{Name: "makeThenFail", Help: "Create a pool, then fail.", Specs: []*Spec{{
		Help:  "Create pool name=, then fail.",
		Attrs: []Attr{{Name: "name", Kind: AttrString, Required: true, Help: "the pool"}},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			if _, err := x.Backend.CreateServerPool(ctx, x.Str("name"), ""); err != nil {
				return nil, err
			}
			return nil, failf(CodeAgentFault, "the agent refused after the change")
		},
	}}})
	run := func(reg *Registry, line string) (Outcome, string) {
		t.Helper()
		var out bytes.Buffer
		ctx := context.Background()
		o := NewSession(ctx, reg, m, actor, &out, Options{Log: quiet}).RunLine(ctx, line)
		return o, out.String()
	}
	pool := func(name string) bool {
		_, err := m.ServerPool(c.Admin(), backend.Ref{Name: name})
		return err == nil
	}
	for _, step := range []struct {
		reg  *Registry
		line string
		want Outcome
	}{
		{Default, "create ServerPool name=p1", OK},
		{Default, "show ServerPool name=p1", OK},
		{Default, "create ServerPool nam=p1", ParseFailed},
		{reg, "makeThenFail name=p2", Failed},
	} {
		if o, out := run(step.reg, step.line); o != step.want {
			t.Fatalf("%s: outcome %v, want %v\n%s", step.line, o, step.want, out)
		}
	}
	if !pool("p2") {
		t.Fatal("makeThenFail made no pool")
	}

	behindStore(t, c, `ALTER TABLE audit_records RENAME TO audit_records_gone`)
	o, out := run(Default, "create ServerPool name=p3")
	if o != Failed || !strings.Contains(out, "XM_0500E") || !strings.Contains(out, "audit record could not be written, so its change was not made") {
		t.Fatalf("a change without its audit record: outcome %v\n%s", o, out)
	}
	if pool("p3") {
		t.Fatal("pool p3 was made without its audit record")
	}
	behindStore(t, c, `ALTER TABLE audit_records_gone RENAME TO audit_records`)

	recs, err := m.AuditLog(c.Admin(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		if r.User != "admin" || r.Remote != actor.Remote {
			t.Errorf("record %+v: not admin from %s", r, actor.Remote)
		}
		got = append(got, r.Command+" -> "+r.Result)
	}
	// Rows are numbered as they are written: a change's with the change,
	// the others' when the spool writes them.
	want := []string{
		"create ServerPool nam=p1 -> XM_0004E",
		"create ServerPool name=p1 -> Success",
		"create ServerPool name=p3 -> XM_0500E",
		"makeThenFail name=p2 -> XM_0502E",
		"show ServerPool name=p1 -> Success",
	}
	slices.Sort(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
