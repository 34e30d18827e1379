package commands

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
	"xenmanager/backend/metrics"
)

// Each command counts once under its verb and type as the registry spells
// them and its status, ok or the error code; a line the parser refuses
// counts with verb and type empty, whatever was typed.
func TestCommandsCountInTheMetrics(t *testing.T) {
	mx := metrics.NewManager()
	c := managertest.Open(t, managertest.Options{Metrics: mx})
	actor := backend.Actor{User: "admin", Role: backend.RoleAdministrator, Remote: "127.0.0.1:1"}
	ctx := backend.WithActor(context.Background(), actor)
	s := NewSession(ctx, Default, c.Manager, actor, io.Discard, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})

	tests := []struct {
		line              string
		verb, typ, status string
	}{
		{"list Vm", "list", "Vm", "ok"},
		{"LIST vm", "list", "Vm", "ok"},
		{"list Vm ?", "list", "Vm", "ok"},
		{"show Vm name=nowhere", "show", "Vm", string(CodeNotFound)},
		{"showVersion", "showversion", "", "ok"},
		{"frobnicate Vm name=secret-name", "", "", string(CodeUnknownCommand)},
		{"create Vm", "", "", string(CodeMissingAttribute)},
	}
	for _, tc := range tests {
		labels := map[string]string{"verb": tc.verb, "type": tc.typ, "status": tc.status}
		before := mx.Value("xenmanager_commands_total", labels)
		s.RunLine(ctx, tc.line)
		if got := mx.Value("xenmanager_commands_total", labels); got != before+1 {
			t.Errorf("%q: xenmanager_commands_total%v went from %v to %v, want one more", tc.line, labels, before, got)
		}
	}
	// A line of two commands counts two.
	labels := map[string]string{"verb": "list", "type": "Server", "status": "ok"}
	s.RunLine(ctx, "list Server; list Server")
	if got := mx.Value("xenmanager_commands_total", labels); got != 2 {
		t.Errorf("list Server twice on a line: %v, want 2", got)
	}
	// A line too long to read counts as refused.
	labels = map[string]string{"verb": "", "type": "", "status": string(CodeSyntax)}
	s.RejectLine(strings.Repeat("x", 20), "the line is too long")
	if got := mx.Value("xenmanager_commands_total", labels); got != 1 {
		t.Errorf("a refused line: %v, want 1", got)
	}
	fams, err := mx.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "secret-name") || strings.Contains(l.GetValue(), "frobnicate") {
					t.Errorf("%s has a label with what was typed: %s=%q", f.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
}
