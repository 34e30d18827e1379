package backend_test

import (
	"path/filepath"
	"strings"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
)

// A repository may not hold the manager's data directory: deleting it
// with erase would remove the database and keys. Inside that directory
// is allowed (the demo keeps its repository there).
func TestRepositoryMayNotHoldTheManagersData(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 1})
	tests := []struct {
		name, fsLocation string
		refused          bool
	}{
		{"the data directory", c.Dir, true},
		{"above it", filepath.Dir(c.Dir), true},
		{"the root", "/", true},
		{"inside it", filepath.Join(c.Dir, "repos", "r1"), false},
		{"elsewhere", filepath.Join(t.TempDir(), "r2"), false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Manager.CreateRepository(c.Admin(), backend.CreateRepositoryRequest{
				Name: "repo" + string(rune('a'+i)), FSLocation: tc.fsLocation, Pool: backend.Ref{Name: managertest.Pool}})
			if tc.refused {
				if err == nil || !strings.Contains(backend.Message(err), "manager's data directory") {
					t.Fatalf("CreateRepository(%s) = %v, want refused", tc.fsLocation, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("CreateRepository(%s): %v", tc.fsLocation, err)
			}
		})
	}
}
