package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
)

// TestEachCommandLogsOneLine: every command a session reports, whether it
// ran, failed, could not be parsed or was refused whole, is one log line
// "command" with who ran it from where, the command with its passwords
// masked, its status ("ok" or the code), its duration and, on failure,
// why; in the JSON format, one object a line.
func TestEachCommandLogsOneLine(t *testing.T) {
	c := managertest.Open(t, managertest.Options{})
	var logged bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logged, nil)).With("session", "batch")
	actor := backend.Actor{User: "admin", Role: backend.RoleAdministrator, Remote: "192.0.2.7:51234"}
	ctx := backend.WithActor(context.Background(), actor)
	s := NewSession(ctx, Default, c.Manager, actor, io.Discard, Options{Log: log})

	s.RunLine(ctx, "list ServerPool")
	s.RunLine(ctx, "show Vm name=nosuch; create User name=u1 password=Sup3rSecret! role=Viewer")
	s.RunLine(ctx, "frobnicate Vm")
	s.RunLine(ctx, "create User name=u2 pasword=Sup3rSecret! role=Viewer")
	s.RejectLine("list Vm name=aaaa...", "the line is longer than 65536 bytes; none of it was run")

	want := []struct {
		command, status, error string // error: a part of it, "" for none
	}{
		{"list ServerPool", "ok", ""},
		{"show Vm name=nosuch", "XM_0404E", `Vm "nosuch" not found`},
		{"create User name=u1 password=**** role=Viewer", "ok", ""},
		{"frobnicate Vm", "XM_0001E", "unknown command 'frobnicate'"},
		{"create ...", "XM_0004E", "the command holds a password, so its words are not repeated"},
		{"list Vm name=aaaa...", "XM_0003E", "the line is longer than 65536 bytes"},
	}
	if strings.Contains(logged.String(), "Sup3rSecret") {
		t.Errorf("the log holds a password:\n%s", logged.String())
	}
	lines := strings.Split(strings.TrimSuffix(logged.String(), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d log lines for %d commands:\n%s", len(lines), len(want), logged.String())
	}
	for i, w := range want {
		var rec map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &rec); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i+1, err, lines[i])
		}
		duration, isNumber := rec["duration_ms"].(float64)
		if rec["msg"] != "command" || rec["level"] != "INFO" || rec["user"] != "admin" || rec["remote"] != "192.0.2.7:51234" ||
			rec["session"] != "batch" || rec["command"] != w.command || rec["status"] != w.status || !isNumber || duration < 0 {
			t.Errorf("line %d = %s\nwant msg command, level INFO, user admin, remote 192.0.2.7:51234, session batch, command %q, status %q, duration_ms",
				i+1, lines[i], w.command, w.status)
		}
		got, hasError := rec["error"].(string)
		if w.error == "" && hasError || w.error != "" && !strings.Contains(got, w.error) {
			t.Errorf("line %d: error %q, want %q", i+1, got, w.error)
		}
	}
}
