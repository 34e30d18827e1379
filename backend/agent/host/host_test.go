package host

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"xenmanager/backend/agent/xensim"
	"xenmanager/backend/agentapi"
)

func TestValidation(t *testing.T) {
	h := newHost(t, testConfig{})
	fsLoc := t.TempDir()
	tests := []struct {
		name string
		err  error
		code agentapi.FaultCode
		sub  string
	}{
		{"relative fs_location", h.CreateRepository("repo", "/OVS/Repositories/r1", "r1", "a"), agentapi.FaultInvalidArgument, "not an absolute path"},
		{"dotdot fs_location", h.CreateRepository(fsLoc+"/../x", "/OVS/Repositories/r1", "r1", "a"), agentapi.FaultInvalidArgument, "contains '..'"},
		{"dotdot mount", h.CreateRepository(fsLoc, "/OVS/../../etc", "r1", "a"), agentapi.FaultInvalidArgument, "contains '..'"},
		{"root mount", h.CreateRepository(fsLoc, "/", "r1", "a"), agentapi.FaultInvalidArgument, "root directory"},
		{"relative mount", h.AddRepository(fsLoc, "OVS"), agentapi.FaultInvalidArgument, "not an absolute path"},
		{"bad repo uuid", h.CreateRepository(fsLoc, "/OVS/Repositories/r1", "a/b", "a"), agentapi.FaultInvalidArgument, "repository uuid \"a/b\" is not valid"},
		{"alias newline", h.CreateRepository(fsLoc, "/OVS/Repositories/r1", "r1", "a\nOVS_REPO_UUID=x"), agentapi.FaultInvalidArgument, "alias"},
		{"add without marker", h.AddRepository(fsLoc, "/OVS/Repositories/r1"), agentapi.FaultNotFound, "no .ovsrepo"},
		{"unknown repo", h.CreateVM("nope", "vm1", vmParams(1, 1)), agentapi.FaultNotFound, "repository nope is not known"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantFault(t, tt.err, tt.code, tt.sub) })
	}
	addRepo(t, h, fsLoc, "r1")
	vmTests := []struct {
		name   string
		vmID   string
		params agentapi.VMParams
		sub    string
	}{
		{"slash in id", "a/b", vmParams(1, 1), `VM id "a/b" is not valid`},
		{"dotdot id", "..", vmParams(1, 1), "is not valid"},
		{"dot first", ".x", vmParams(1, 1), "is not valid"},
		{"empty id", "", vmParams(1, 1), "is not valid"},
		{"no memory", "v", agentapi.VMParams{"vcpus": int64(1)}, "params.memory must be a positive integer"},
		{"string vcpus", "v", agentapi.VMParams{"memory": int64(1), "vcpus": "two"}, "params.vcpus"},
		{"zero vcpus", "v", agentapi.VMParams{"memory": int64(1), "vcpus": int64(0)}, "params.vcpus"},
		{"unwritable value", "v", agentapi.VMParams{"memory": int64(1), "vcpus": int64(1), "x": 1.5}, "cannot write a float64"},
	}
	for _, tt := range vmTests {
		t.Run(tt.name, func(t *testing.T) {
			wantFault(t, h.CreateVM("r1", tt.vmID, tt.params), agentapi.FaultInvalidArgument, tt.sub)
		})
	}
	// Integers as decimal strings are accepted, as the protocol allows.
	mustOK(t, h.CreateVM("r1", "strint", agentapi.VMParams{"memory": "512", "vcpus": "1", "maxmem": "8589934592", "name": "007"}))
	mustOK(t, h.StartVM("r1", "strint"))
	got, err := h.GetVMConfig("r1", "strint")
	mustOK(t, err)
	want := agentapi.VMParams{"memory": int64(512), "vcpus": int64(1), "maxmem": int64(8589934592), "name": "007"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("integer keys not normalised: got %#v, want %#v", got, want)
	}
}

func TestRepositoryLayout(t *testing.T) {
	h := newHost(t, testConfig{})
	fsLoc := filepath.Join(t.TempDir(), "nfs", "repo1") // created by create_repository
	mustOK(t, h.CreateRepository(fsLoc, "/OVS/Repositories/r1", "r1", "Repo One"))
	for _, d := range []string{DirVMs, DirDisks, DirISOs, DirTemplates} {
		if fi, err := os.Stat(filepath.Join(fsLoc, d)); err != nil || !fi.IsDir() {
			t.Errorf("%s not laid out: %v", d, err)
		}
	}
	marker, err := os.ReadFile(filepath.Join(fsLoc, RepoMarker))
	mustOK(t, err)
	if string(marker) != "OVS_REPO_UUID=r1\nOVS_REPO_ALIAS=Repo One\n" {
		t.Errorf(".ovsrepo = %q", marker)
	}
	link := filepath.Join(h.DataDir(), "OVS", "Repositories", "r1")
	if target, err := os.Readlink(link); err != nil || target != fsLoc {
		t.Errorf("mount point link = %q, %v; want a link to %s", target, err, fsLoc)
	}
	// Same uuid again: acts as add_repository. Another uuid: InvalidState.
	mustOK(t, h.CreateRepository(fsLoc, "/OVS/Repositories/r1", "r1", "ignored"))
	wantFault(t, h.CreateRepository(fsLoc, "/OVS/Repositories/r2", "r2", "two"), agentapi.FaultInvalidState, "already holds repository r1")
	wantFault(t, h.CreateRepository(t.TempDir(), "/OVS/Repositories/r1", "r3", "three"), agentapi.FaultInvalidState, "already used by repository r1")

	mustOK(t, h.CreateVM("r1", "vm1", vmParams(512, 1)))
	mustOK(t, os.WriteFile(filepath.Join(fsLoc, DirDisks, "d1.img"), nil, 0o644))
	mustOK(t, os.WriteFile(filepath.Join(fsLoc, DirISOs, "i1.iso"), nil, 0o644))
	mustOK(t, os.Mkdir(filepath.Join(fsLoc, DirTemplates, "t1"), 0o755))
	repos, err := h.DiscoverRepositories(nil)
	mustOK(t, err)
	if len(repos) != 1 {
		t.Fatalf("repos = %+v", repos)
	}
	r := repos[0]
	if r.UUID != "r1" || r.Alias != "Repo One" || r.MountPoint != "/OVS/Repositories/r1" ||
		r.VMs != 1 || r.Disks != 1 || r.ISOs != 1 || r.Templates != 1 || r.TotalMiB <= 0 || r.FreeMiB < 0 || r.FreeMiB > r.TotalMiB {
		t.Errorf("repository = %+v", r)
	}
	_, err = h.DiscoverRepositories([]string{"r1", "zz"})
	wantFault(t, err, agentapi.FaultNotFound, "repository zz is not known")
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("link vanished: %v", err)
	}
	// A real directory in the way of a mount point is not replaced.
	mustOK(t, os.MkdirAll(filepath.Join(h.DataDir(), "OVS", "busy"), 0o755))
	wantFault(t, h.CreateRepository(t.TempDir(), "/OVS/busy", "r4", "four"), agentapi.FaultInvalidState, "is not a repository link")
}

// TestSharedRepository checks that a VM created through one host starts on

func TestSharedRepository(t *testing.T) {
	shared := t.TempDir()
	a := newHost(t, testConfig{Hostname: "xen-a"})
	b := newHost(t, testConfig{Hostname: "xen-b"})
	mustOK(t, a.CreateRepository(shared, "/OVS/Repositories/r1", "r1", "pool repo"))
	mustOK(t, b.AddRepository(shared, "/OVS/Repositories/r1"))
	repos, err := b.DiscoverRepositories([]string{"r1"})
	mustOK(t, err)
	if repos[0].Alias != "pool repo" {
		t.Errorf("b sees alias %q", repos[0].Alias)
	}
	mustOK(t, a.CreateVM("r1", "vm1", vmParams(1024, 1)))
	mustOK(t, b.StartVM("r1", "vm1"))
	if len(must(a.ListVMs())) != 0 || len(must(b.ListVMs())) != 1 {
		t.Errorf("domains: a %+v, b %+v", must(a.ListVMs()), must(b.ListVMs()))
	}
	// a does not know it runs on b (no cluster lock in the simulator), but
	// b refuses to delete a running VM.
	wantFault(t, b.DeleteVM("r1", "vm1"), agentapi.FaultInvalidState, "stop it first")
	mustOK(t, b.StopVM("r1", "vm1", false))
	mustOK(t, a.DeleteVM("r1", "vm1"))
	wantFault(t, b.StartVM("r1", "vm1"), agentapi.FaultNotFound, "not found")
}

func TestOwnershipAndPersistence(t *testing.T) {
	dir := t.TempDir()
	fsLoc := t.TempDir()
	h := newHost(t, testConfig{DataDir: dir})
	id := h.UniqueID()
	if info := h.DiscoverServer("10.0.0.1"); info.MembershipState != agentapi.MembershipUnowned || info.UniqueID != id || info.Address != "10.0.0.1" ||
		info.HypervisorType != agentapi.HypervisorSimulated || info.HypervisorVersion != "" {
		t.Errorf("fresh server = %+v", info)
	}
	mustOK(t, h.TakeOwnership("m1", "manager one"))
	mustOK(t, h.TakeOwnership("m1", "manager one"))
	wantFault(t, h.TakeOwnership("m2", "manager two"), agentapi.FaultNotOwner, `owned by manager "manager one" (m1)`)
	wantFault(t, h.ReleaseOwnership("m2"), agentapi.FaultNotOwner, "not by m2")
	wantFault(t, h.TakeOwnership("", "x"), agentapi.FaultInvalidArgument, "manager_uuid")
	addRepo(t, h, fsLoc, "r1")
	mustOK(t, h.CreateVM("r1", "vm1", vmParams(512, 1)))
	mustOK(t, h.StartVM("r1", "vm1"))

	// A reload is a reboot: same identity, owner and repositories; no domains.
	h2 := newHost(t, testConfig{DataDir: dir})
	if h2.UniqueID() != id {
		t.Errorf("unique id changed across reload: %s -> %s", id, h2.UniqueID())
	}
	if u, n := h2.Owner(); u != "m1" || n != "manager one" {
		t.Errorf("owner after reload = %q %q", u, n)
	}
	if info := h2.DiscoverServer(""); info.MembershipState != agentapi.MembershipOwned || info.ManagerUniqueID != "m1" {
		t.Errorf("server after reload = %+v", info)
	}
	if got := h2.Repositories(); len(got) != 1 || got[0] != (RepoState{UUID: "r1", Alias: "repo r1", FSLocation: fsLoc, MountPoint: "/OVS/Repositories/r1"}) {
		t.Errorf("repositories after reload = %+v", got)
	}
	if len(must(h2.ListVMs())) != 0 {
		t.Errorf("domains survived a reload: %+v", must(h2.ListVMs()))
	}
	mustOK(t, h2.StartVM("r1", "vm1"))
	mustOK(t, h2.ReleaseOwnership("m1"))
	mustOK(t, h2.ReleaseOwnership("m1")) // idempotent
	mustOK(t, h2.TakeOwnership("m2", "manager two"))
	if fi, err := os.Stat(filepath.Join(dir, stateFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file: %v, mode %v", err, fi.Mode())
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}

	mustOK(t, os.WriteFile(filepath.Join(dir, stateFile), []byte("{"), 0o600))
	if _, err := New(Config{DataDir: dir, Hostname: "x", Driver: xensim.Driver(xensim.Config{})}); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("New with corrupt state: %v", err)
	}
}
