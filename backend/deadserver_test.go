package backend

import (
	"testing"

	"xenmanager/store"
)

// chooseMaster prefers a Running member out of maintenance mode, then a
// Running one, then any other, by name among equals; never except.
func TestChooseMaster(t *testing.T) {
	srv := func(id, status string, maintenance bool) store.Server {
		return store.Server{ID: id, Name: id, Status: status, Maintenance: maintenance}
	}
	tests := []struct {
		name    string
		members []store.Server
		except  string
		want    string // "" for none
	}{
		{"first running by name", []store.Server{srv("a", ServerRunning, false), srv("b", ServerRunning, false)}, "", "a"},
		{"never except", []store.Server{srv("a", ServerRunning, false), srv("b", ServerRunning, false)}, "a", "b"},
		{"running before unreachable", []store.Server{srv("a", ServerUnreachable, false), srv("b", ServerRunning, false)}, "", "b"},
		{"out of maintenance first", []store.Server{srv("a", ServerRunning, true), srv("b", ServerRunning, false)}, "", "b"},
		{"maintenance before silent", []store.Server{srv("a", ServerStopped, false), srv("b", ServerRunning, true)}, "", "b"},
		{"any when none runs", []store.Server{srv("a", ServerUnreachable, false), srv("b", ServerStopped, false)}, "a", "b"},
		{"none but except", []store.Server{srv("a", ServerRunning, false)}, "a", ""},
		{"no members", nil, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, found := chooseMaster(tc.members, tc.except)
			if found != (tc.want != "") || got.ID != tc.want {
				t.Fatalf("chooseMaster = %q (found %v), want %q", got.ID, found, tc.want)
			}
		})
	}
}

// isSilent: only Unreachable and Stopped servers are acted on without
// their agent.
func TestIsSilent(t *testing.T) {
	for status, want := range map[string]bool{ServerRunning: false, ServerUnreachable: true, ServerStopped: true,
		ServerRestarting: false, ServerLeaving: false, ServerStopping: false} {
		if got := isSilent(store.Server{Status: status}); got != want {
			t.Errorf("isSilent(%s) = %v, want %v", status, got, want)
		}
	}
}
