package host

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"xenmanager/backend/agentapi"
)

func TestResolvePath(t *testing.T) {
	h := newHost(t, testConfig{})
	repo := t.TempDir()
	addRepo(t, h, repo, "r1")
	root, err := filepath.EvalSymlinks(repo)
	if err != nil {
		t.Fatal(err)
	}
	kernels := filepath.Join(repo, "Kernels")
	mustOK(t, os.MkdirAll(kernels, 0o755))
	mustOK(t, os.WriteFile(filepath.Join(kernels, "vmlinuz"), []byte("k"), 0o644))
	outside := filepath.Join(t.TempDir(), "secret")
	mustOK(t, os.WriteFile(outside, []byte("s"), 0o600))
	mustOK(t, os.Symlink(outside, filepath.Join(kernels, "escape")))
	mustOK(t, os.Symlink("vmlinuz", filepath.Join(kernels, "current")))

	tests := []struct {
		name, path string
		want       string // the resolved path when the call succeeds
		fault      agentapi.FaultCode
	}{
		{"a file in the repository", "/OVS/Repositories/r1/Kernels/vmlinuz", filepath.Join(root, "Kernels/vmlinuz"), 0},
		{"a link that stays inside", "/OVS/Repositories/r1/Kernels/current", filepath.Join(root, "Kernels/vmlinuz"), 0},
		{"relative", "Kernels/vmlinuz", "", agentapi.FaultInvalidArgument},
		{"unclean", "/OVS/Repositories/r1/Kernels/../../r1/Kernels/vmlinuz", "", agentapi.FaultInvalidArgument},
		{"an unknown repository", "/OVS/Repositories/r2/Kernels/vmlinuz", "", agentapi.FaultInvalidArgument},
		{"a host file", "/etc/passwd", "", agentapi.FaultInvalidArgument},
		{"the mount point itself", "/OVS/Repositories/r1", "", agentapi.FaultInvalidArgument},
		{"a missing file", "/OVS/Repositories/r1/Kernels/none", "", agentapi.FaultNotFound},
		{"a link out of the repository", "/OVS/Repositories/r1/Kernels/escape", "", agentapi.FaultInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := h.ResolvePath(tc.path)
			if tc.fault != 0 {
				wantFault(t, err, tc.fault, "")
				return
			}
			mustOK(t, err)
			if got != tc.want {
				t.Errorf("ResolvePath(%q) = %q, want %q", tc.path, got, tc.want)
			}
		})
	}
}

func TestRepositoryApartFromTheDataDirectory(t *testing.T) {
	data := t.TempDir()
	h := newHost(t, testConfig{DataDir: filepath.Join(data, "agent")})
	elsewhere := t.TempDir()
	mustOK(t, os.Symlink(filepath.Join(data, "agent"), filepath.Join(elsewhere, "alias")))
	tests := []struct {
		name, fsLocation string
		refused          bool
	}{
		{"the data directory", filepath.Join(data, "agent"), true},
		{"inside it", filepath.Join(data, "agent", "repo"), true},
		{"above it", data, true},
		{"through a link to it", filepath.Join(elsewhere, "alias", "repo"), true},
		{"beside it", filepath.Join(data, "repo"), false},
		{"a name that only starts like it", filepath.Join(data, "agent-repo"), false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("r%d", i)
			err := h.CreateRepository(tc.fsLocation, "/OVS/Repositories/"+id, id, "repo")
			if tc.refused {
				wantFault(t, err, agentapi.FaultInvalidArgument, "data directory")
				wantFault(t, h.AddRepository(tc.fsLocation, "/OVS/Repositories/x"+id), agentapi.FaultInvalidArgument, "data directory")
				return
			}
			mustOK(t, err)
		})
	}
}
