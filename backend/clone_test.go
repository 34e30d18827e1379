package backend_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/managertest"
	"xenmanager/store/fulldisk"
)

// cloneFleet is a fleet for the clone tests: agents in a pool with a
// repository in a directory the test reads, a network on xenbr0 and
// imports allowed from loopback (where the tests' web servers listen).
type cloneFleet struct {
	c       *managertest.Core
	m       *backend.Manager
	ctx     context.Context
	repo    backend.Repository
	repoDir string
	network backend.Network
}

func newCloneFleet(t testing.TB, agents int) *cloneFleet {
	t.Helper()
	c := managertest.Open(t, managertest.Options{Agents: agents, MemoryMiB: 8192, CPUs: 4})
	c.Discover()
	pool := c.CreatePool(managertest.Pool)
	f := &cloneFleet{c: c, m: c.Manager, ctx: c.Admin(), repoDir: filepath.Join(t.TempDir(), "repo")}
	f.repo = c.CreateRepository(managertest.Repo, managertest.Pool, f.repoDir)
	var err error
	if f.network, err = f.m.CreateNetwork(f.ctx, "net1", backend.Ref{ID: pool.ID}, "xenbr0", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.EditManager(f.ctx, backend.EditManagerRequest{ImportAllowedNetworks: new("127.0.0.0/8")}); err != nil {
		t.Fatal(err)
	}
	return f
}

// files lists the names in dir of the repository ("" when dir is absent).
func (f *cloneFleet) files(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(f.repoDir, dir))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// templateArchive is an Oracle VM 2 template: a gzip-compressed tar of
// name/vm.cfg and name/System.img, whose image holds data at its start
// and zeros after it.
func templateArchive(t *testing.T, name string, image []byte) []byte {
	t.Helper()
	cfg := fmt.Sprintf(`# Oracle VM 2 template
name = '%s'
memory = '256'
vcpus = 2
bootloader = '/usr/bin/pygrub'
disk = ['file:/OVS/seed_pool/%s/System.img,xvda,w']
vif = ['bridge=xenbr0', 'bridge=xenbr9']
on_crash = 'restart'
`, name, name)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range []struct {
		name string
		body []byte
	}{{name + "/vm.cfg", []byte(cfg)}, {name + "/System.img", image}} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// diskImage is size bytes: random data in the first MiB, zeros after it.
func diskImage(size int) []byte {
	img := make([]byte, size)
	rand.Read(img[:1<<20])
	return img
}

// allocated is how many bytes of the file at p are allocated.
func allocated(t *testing.T, p string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// The everyday workflow with real agents: a template served over HTTP is
// imported (its disk moved into VirtualDisks, its vif on xenbr0 put on the
// pool's network), cloned into 20 VMs in one call, whose disks are sparse
// copies of the template's, whose MAC addresses are all new and whose
// vm.cfg keep the template's boot loader; all 20 start; one, stopped, is
// saved as a template, which is cloned again, and a clone of it starts.
func TestImportTemplateCloneTwentyStartSaveAndCloneAgain(t *testing.T) {
	f := newCloneFleet(t, 2)
	m, ctx := f.m, f.ctx
	image := diskImage(8 << 20)
	archive := templateArchive(t, "OVM_OL9", image)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(archive) }))
	t.Cleanup(web.Close)

	tpl, err := m.ImportTemplate(ctx, backend.Ref{Name: managertest.Repo}, web.URL+"/ol9.tgz", "ol9", "Oracle Linux 9")
	if err != nil {
		t.Fatal(err)
	}
	if tpl.State != backend.TemplateApproved || tpl.MemoryMiB != 256 || tpl.CPUCount != 2 || tpl.DomainType != backend.DomainXenPVM ||
		len(tpl.Disks) != 1 || len(tpl.Vnics) != 2 || tpl.Vnics[0].Network.ID != f.network.ID || tpl.Vnics[1].Network.ID != "" ||
		tpl.Origin != web.URL+"/ol9.tgz" || tpl.Description != "Oracle Linux 9" {
		t.Fatalf("imported template = %+v", tpl)
	}
	tplDisk := filepath.Join(f.repoDir, "VirtualDisks", tpl.Disks[0].DiskID+".img")
	if got, err := os.ReadFile(tplDisk); err != nil || !bytes.Equal(got, image) {
		t.Fatalf("the template's disk in VirtualDisks differs from the archive's (%d bytes, %v)", len(got), err)
	}
	if got := f.files(t, "Templates/"+tpl.ID); !slices.Equal(got, []string{"vm.cfg"}) {
		t.Fatalf("Templates/%s holds %q; want only vm.cfg once its disk moved", tpl.ID, got)
	}

	// The template's second vif is on no network: a clone into VMs needs
	// one, so a customizer puts it on net1.
	cust, err := m.CreateCloneCustomizer(ctx, "two-nets", "", "VmTemplate", backend.Ref{Name: "ol9"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Clone(ctx, backend.CloneRequest{SourceType: "VmTemplate", Source: backend.Ref{Name: "ol9"}, DestType: "Vm", DestName: "x"}); backend.KindOf(err) != backend.KindInvalidState ||
		!strings.Contains(err.Error(), "Vnic ol9-eth1 of VmTemplate ol9 is on no network") {
		t.Fatalf("clone with a vif on no network = %v; want InvalidState naming it", err)
	}
	if _, err := m.CreateCloneNetworkMapping(ctx, backend.CloneNetworkMappingRequest{Name: "second", Customizer: backend.Ref{ID: cust.ID},
		Vnic: "ol9-eth1", Network: backend.Ref{ID: f.network.ID}}); err != nil {
		t.Fatal(err)
	}

	res, err := m.Clone(ctx, backend.CloneRequest{SourceType: "VmTemplate", Source: backend.Ref{Name: "ol9"}, DestType: "Vm", DestName: "web",
		Copies: 20, Customizer: backend.Ref{Name: "two-nets"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Copies) != 20 {
		t.Fatalf("clone made %d copies; want 20", len(res.Copies))
	}
	macs := map[string]string{}
	disks := map[string]bool{}
	for i, cp := range res.Copies {
		if want := fmt.Sprintf("web-%d", i+1); cp.Name != want || cp.Err != nil || cp.Job == "" {
			t.Fatalf("copy %d = %+v; want %s made by a job of its own", i, cp, want)
		}
		vm, err := m.VM(ctx, backend.Ref{ID: cp.ID})
		if err != nil {
			t.Fatal(err)
		}
		if vm.Name != cp.Name || vm.Status != backend.VMStopped || vm.MemoryMiB != 256 || vm.CPUCount != 2 || len(vm.Disks) != 1 || len(vm.Vnics) != 2 {
			t.Fatalf("clone %s = %+v", cp.Name, vm)
		}
		d, err := m.VirtualDisk(ctx, backend.Ref{ID: vm.Disks[0].ID})
		if err != nil {
			t.Fatal(err)
		}
		if disks[d.ID] || d.ID == tpl.Disks[0].DiskID || !d.Sparse || d.SizeMiB != 8 || d.Name != cp.Name+"-xvda" {
			t.Fatalf("disk of %s = %+v", cp.Name, d)
		}
		disks[d.ID] = true
		for _, vn := range vm.Vnics {
			v, err := m.Vnic(ctx, backend.Ref{ID: vn.ID})
			if err != nil {
				t.Fatal(err)
			}
			if other, dup := macs[v.MAC]; dup {
				t.Fatalf("%s and %s share MAC %s", other, v.Name, v.MAC)
			}
			macs[v.MAC] = v.Name
			if v.Network.ID != f.network.ID {
				t.Fatalf("vnic %s is on %+v; want net1", v.Name, v.Network)
			}
		}
		p := filepath.Join(f.repoDir, "VirtualDisks", d.ID+".img")
		if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, image) {
			t.Fatalf("the disk of %s differs from the template's (%d bytes, %v)", cp.Name, len(got), err)
		}
		if a := allocated(t, p); a >= 8<<20 {
			t.Fatalf("the disk of %s has %d bytes allocated; a sparse copy of 1 MiB of data and 7 of zeros has fewer", cp.Name, a)
		}
	}
	// The import moved the template's disk without its size; the first
	// copy told it.
	if tpl, err = m.VMTemplate(ctx, backend.Ref{ID: tpl.ID}); err != nil || tpl.Disks[0].SizeMiB != 8 {
		t.Fatalf("the template's disk after its first copy = %+v, %v; want 8 MiB", tpl.Disks, err)
	}
	// The vm.cfg of a clone names its own id, disk and MACs, and keeps what
	// the template's gave beyond the records (its boot loader).
	cl := f.c.AgentClient(0)
	params, err := cl.GetVMConfig(context.Background(), f.repo.ID, res.Copies[4].ID)
	if err != nil {
		t.Fatal(err)
	}
	vm5, _ := m.VM(ctx, backend.Ref{ID: res.Copies[4].ID})
	disk5, _ := m.VirtualDisk(ctx, backend.Ref{ID: vm5.Disks[0].ID})
	if params.String(agentapi.KeyUUID) != res.Copies[4].ID || params.String(agentapi.KeySimpleName) != "web-5" ||
		params.String("bootloader") != "/usr/bin/pygrub" || !strings.Contains(fmt.Sprint(params[agentapi.KeyDisk]), disk5.Path+",xvda,w") {
		t.Fatalf("vm.cfg of web-5 = %v", params)
	}
	for _, vn := range vm5.Vnics {
		v, _ := m.Vnic(ctx, backend.Ref{ID: vn.ID})
		if !strings.Contains(fmt.Sprint(params[agentapi.KeyVif]), "mac="+v.MAC+",bridge=xenbr0") {
			t.Fatalf("vm.cfg of web-5 lacks the vif of %s (%s): %v", v.Name, v.MAC, params[agentapi.KeyVif])
		}
	}

	// All 20 start.
	var wg sync.WaitGroup
	errs := make([]error, len(res.Copies))
	for i, cp := range res.Copies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = m.StartVM(ctx, backend.Ref{ID: cp.ID})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start %s: %v", res.Copies[i].Name, err)
		}
	}

	// A running VM is not cloned; stopped, it is saved as a template, whose
	// clone starts.
	if _, err := m.Clone(ctx, backend.CloneRequest{SourceType: "Vm", Source: backend.Ref{Name: "web-1"}, DestType: "VmTemplate", DestName: "golden"}); backend.KindOf(err) != backend.KindInvalidState {
		t.Fatalf("clone of a running VM = %v; want InvalidState", err)
	}
	if _, err := m.StopVM(ctx, backend.Ref{Name: "web-1"}); err != nil {
		t.Fatal(err)
	}
	saved, err := m.Clone(ctx, backend.CloneRequest{SourceType: "Vm", Source: backend.Ref{Name: "web-1"}, DestType: "VmTemplate", DestName: "golden"})
	if err != nil {
		t.Fatal(err)
	}
	golden, err := m.VMTemplate(ctx, backend.Ref{ID: saved.Copies[0].ID})
	if err != nil {
		t.Fatal(err)
	}
	if golden.Name != "golden" || golden.State != backend.TemplateApproved || golden.Origin != "Vm web-1" || len(golden.Disks) != 1 ||
		len(golden.Vnics) != 2 || golden.MemoryMiB != 256 {
		t.Fatalf("saved template = %+v", golden)
	}
	if got := f.files(t, "Templates/"+golden.ID); !slices.Equal(got, []string{"vm.cfg"}) {
		t.Fatalf("Templates/%s holds %q", golden.ID, got)
	}
	// As in Oracle VM 3, the template is also addressed as a Vm.
	again, err := m.Clone(ctx, backend.CloneRequest{SourceType: "Vm", Source: backend.Ref{Name: "golden"}, DestType: "Vm", DestName: "app", Copies: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Copies) != 2 || again.Copies[0].Name != "app-1" || again.Copies[1].Name != "app-2" {
		t.Fatalf("clone of the saved template = %+v", again)
	}
	app, err := m.StartVM(ctx, backend.Ref{Name: "app-2"})
	if err != nil || app.Status != backend.VMRunning {
		t.Fatalf("start app-2 = %+v, %v", app, err)
	}
	if vms, err := m.ListVMs(ctx, backend.Filter{}); err != nil || len(vms) != 22 {
		t.Fatalf("%d VMs, %v; want 22", len(vms), err)
	}
}

// A name that is taken fails the clone before anything is copied, naming
// it: a VM's for destType Vm, a template's for destType VmTemplate.
func TestCloneRefusesTakenNamesBeforeCopying(t *testing.T) {
	f := newCloneFleet(t, 1)
	m, ctx := f.m, f.ctx
	src, err := m.CreateVM(ctx, backend.CreateVMRequest{Name: "src", Repository: backend.Ref{ID: f.repo.ID}, MemoryMiB: 256, CPUCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	d, err := m.CreateVirtualDisk(ctx, backend.NewVirtualDisk{Name: "src-root", Repository: backend.Ref{ID: f.repo.ID}, SizeMiB: 4, Sparse: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.AddDiskToVM(ctx, backend.Ref{ID: d.ID}, backend.Ref{ID: src.ID}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := m.CreateVM(ctx, backend.CreateVMRequest{Name: "web-3", Repository: backend.Ref{ID: f.repo.ID}, MemoryMiB: 256, CPUCount: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Clone(ctx, backend.CloneRequest{SourceType: "Vm", Source: backend.Ref{Name: "src"}, DestType: "VmTemplate", DestName: "tpl"}); err != nil {
		t.Fatal(err)
	}
	disksBefore, vmsBefore := f.files(t, "VirtualDisks"), f.files(t, "VirtualMachines")
	for _, tc := range []struct {
		req  backend.CloneRequest
		want string
	}{
		{backend.CloneRequest{SourceType: "Vm", Source: backend.Ref{Name: "src"}, DestType: "Vm", DestName: "web", Copies: 5},
			"clone Vm src refused before copying: a Vm named web-3 exists already; choose another destName"},
		{backend.CloneRequest{SourceType: "Vm", Source: backend.Ref{Name: "src"}, DestType: "Vm", DestName: "web-3"},
			"a Vm named web-3 exists already"},
		{backend.CloneRequest{SourceType: "Vm", Source: backend.Ref{Name: "src"}, DestType: "Vm", DestName: "src"},
			"a Vm named src exists already"},
		{backend.CloneRequest{SourceType: "VmTemplate", Source: backend.Ref{Name: "tpl"}, DestType: "VmTemplate", DestName: "tpl"},
			"a VmTemplate named tpl exists already"},
	} {
		_, err := m.Clone(ctx, tc.req)
		if backend.KindOf(err) != backend.KindConflict || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("clone %+v = %v; want Conflict %q", tc.req, err, tc.want)
		}
	}
	// With two names taken, both are named.
	if _, err := m.CreateVM(ctx, backend.CreateVMRequest{Name: "web-5", Repository: backend.Ref{ID: f.repo.ID}, MemoryMiB: 256, CPUCount: 1}); err != nil {
		t.Fatal(err)
	}
	_, err = m.Clone(ctx, backend.CloneRequest{SourceType: "Vm", Source: backend.Ref{Name: "src"}, DestType: "Vm", DestName: "web", Copies: 5})
	if err == nil || !strings.Contains(err.Error(), "2 Vm names are taken already: web-3, web-5") {
		t.Fatalf("clone onto two taken names = %v", err)
	}
	if got := f.files(t, "VirtualDisks"); !slices.Equal(got, disksBefore) {
		t.Fatalf("a refused clone copied disks: %q, before %q", got, disksBefore)
	}
	if got := f.files(t, "VirtualMachines"); len(got) != len(vmsBefore)+1 { // web-5
		t.Fatalf("a refused clone wrote vm.cfg: %q, before %q", got, vmsBefore)
	}
	if vms, _ := m.ListVMs(ctx, backend.Filter{}); len(vms) != 3 {
		t.Fatalf("%d VMs after refused clones; want 3", len(vms))
	}
}

// vmWithDisks makes a stopped VM with n disks of sizeMiB each, whose
// images hold random data (written behind the manager's back, as a guest
// would), so that every copy has data to copy.
func (f *cloneFleet) vmWithDisks(t *testing.T, name string, n int, sizeMiB int64) backend.VM {
	t.Helper()
	vm, err := f.m.CreateVM(f.ctx, backend.CreateVMRequest{Name: name, Repository: backend.Ref{ID: f.repo.ID}, MemoryMiB: 256, CPUCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		d, err := f.m.CreateVirtualDisk(f.ctx, backend.NewVirtualDisk{Name: fmt.Sprintf("%s-d%d", name, i), Repository: backend.Ref{ID: f.repo.ID}, SizeMiB: sizeMiB, Sparse: true})
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, sizeMiB<<20)
		rand.Read(data)
		if err := os.WriteFile(filepath.Join(f.repoDir, "VirtualDisks", d.ID+".img"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := f.m.AddDiskToVM(f.ctx, backend.Ref{ID: d.ID}, backend.Ref{ID: vm.ID}, i); err != nil {
			t.Fatal(err)
		}
	}
	return vm
}

// A clone aborted while it copies its second disk of three stops before
// the third and leaves nothing: the disks it copied are removed, no vm.cfg
// is written, no record made; the copy's job and the clone's end Aborted.
func TestCloneAbortedBetweenDisksLeavesNothing(t *testing.T) {
	f := newCloneFleet(t, 1)
	m, ctx := f.m, f.ctx
	f.vmWithDisks(t, "big", 3, 2)
	disksBefore, vmsBefore := f.files(t, "VirtualDisks"), f.files(t, "VirtualMachines")
	// Each copy_file waits a while at the agent, so that the abort comes
	// while the second disk is copied.
	sim := f.c.AgentClient(0)
	if err := sim.Call(context.Background(), agentapi.MethodSimSet, nil, map[string]any{"latency_ms": map[string]any{agentapi.MethodCopyFile: 1000}}); err != nil {
		t.Fatal(err)
	}
	var parent string
	async := m.With(backend.RunOptions{Async: true, Observe: func(id string) { parent = id }})
	if _, err := async.Clone(ctx, backend.CloneRequest{SourceType: "Vm", Source: backend.Ref{Name: "big"}, DestType: "Vm", DestName: "bigcopy"}); backend.JobIDOf(err) == "" {
		t.Fatalf("asynchronous clone = %v; want the job started", err)
	}
	var child string
	deadline := time.Now().Add(60 * time.Second)
	for child == "" {
		if time.Now().After(deadline) {
			t.Fatal("the copy never reached its second disk")
		}
		jobs, err := m.Jobs(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			if j.ID != parent && j.Status == backend.JobRunning && strings.Contains(j.Message, "copying disk 2 of 3") {
				child = j.ID
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	j, err := m.AbortJob(ctx, parent)
	if err != nil || j.Status != backend.JobAborted {
		t.Fatalf("abort the clone = %+v, %v; want Aborted", j, err)
	}
	if cj, err := m.WaitJob(ctx, child); err != nil || cj.Status != backend.JobAborted {
		t.Fatalf("the copy's job = %+v, %v; want Aborted", cj, err)
	}
	if got := f.files(t, "VirtualDisks"); !slices.Equal(got, disksBefore) {
		t.Fatalf("an aborted clone left disks: %q, before %q", got, disksBefore)
	}
	if got := f.files(t, "VirtualMachines"); !slices.Equal(got, vmsBefore) {
		t.Fatalf("an aborted clone left a vm.cfg: %q, before %q", got, vmsBefore)
	}
	if _, err := m.VM(ctx, backend.Ref{Name: "bigcopy"}); backend.KindOf(err) != backend.KindNotFound {
		t.Fatalf("an aborted clone left a record: %v", err)
	}
	if disks, _ := m.VirtualDisks(ctx, backend.Filter{}); len(disks) != 3 {
		t.Fatalf("%d disk records after an aborted clone; want the source's 3", len(disks))
	}
}

// A clone into a repository that fills up fails, and the disk it had
// copied before is removed: the repository holds nothing afterwards, and
// no record is made. A THIN_CLONE where the file system cannot share
// blocks is refused saying what to use, and leaves nothing either.
func TestCloneIntoFullRepositoryLeavesNothing(t *testing.T) {
	disk := fulldisk.Mount(t, 24)
	f := newCloneFleet(t, 1)
	m, ctx := f.m, f.ctx
	full := f.c.CreateRepository("small", managertest.Pool, filepath.Join(disk.Dir, "repo"))
	f.vmWithDisks(t, "data", 2, 16) // 32 MiB of data: the first disk fits, the second does not
	_, err := m.Clone(ctx, backend.CloneRequest{SourceType: "Vm", Source: backend.Ref{Name: "data"}, DestType: "Vm", DestName: "datacopy",
		Repository: backend.Ref{ID: full.ID}})
	if backend.KindOf(err) != backend.KindInsufficientResources {
		t.Fatalf("clone into a repository too small = %v; want InsufficientResources", err)
	}
	for _, dir := range []string{"VirtualDisks", "VirtualMachines"} {
		entries, err := os.ReadDir(filepath.Join(disk.Dir, "repo", dir))
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 0 {
			t.Fatalf("the failed clone left %d entries in %s of the full repository: %v", len(entries), dir, entries)
		}
	}
	if _, err := m.VM(ctx, backend.Ref{Name: "datacopy"}); backend.KindOf(err) != backend.KindNotFound {
		t.Fatalf("a failed clone left a record: %v", err)
	}
	if disks, _ := m.VirtualDisks(ctx, backend.Filter{Repository: backend.Ref{ID: full.ID}}); len(disks) != 0 {
		t.Fatalf("a failed clone left disk records: %+v", disks)
	}

	cust, err := m.CreateCloneCustomizer(ctx, "thin", "", "Vm", backend.Ref{Name: "data"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.CreateCloneStorageMapping(ctx, backend.CloneStorageMappingRequest{Name: "d1-thin", Customizer: backend.Ref{ID: cust.ID},
		DiskMapping: "data-d1", CloneType: backend.CloneThinClone, Repository: backend.Ref{ID: f.repo.ID}}); err != nil {
		t.Fatal(err)
	}
	disksBefore := f.files(t, "VirtualDisks")
	_, err = m.Clone(ctx, backend.CloneRequest{SourceType: "Vm", Source: backend.Ref{Name: "data"}, DestType: "Vm", DestName: "thin",
		Customizer: backend.Ref{ID: cust.ID}})
	if backend.KindOf(err) != backend.KindInvalidState || !strings.Contains(err.Error(), "THIN_CLONE needs a repository whose file system shares blocks (reflink): use SPARSE_COPY or NON_SPARSE_COPY") {
		t.Fatalf("THIN_CLONE on %s = %v; want InvalidState saying what to use", f.repoDir, err)
	}
	if got := f.files(t, "VirtualDisks"); !slices.Equal(got, disksBefore) {
		t.Fatalf("a refused THIN_CLONE left disks: %q, before %q", got, disksBefore)
	}
}

// While a clone copies from a template, the template is neither edited nor
// deleted: both are refused at once, naming the clone's job, and show
// VmTemplate names the job; once the clone has ended, delete removes the
// template's disk and directory.
func TestTemplateNotChangedWhileCloned(t *testing.T) {
	f := newCloneFleet(t, 1)
	m, ctx := f.m, f.ctx
	f.vmWithDisks(t, "src", 1, 1)
	saved, err := m.Clone(ctx, backend.CloneRequest{SourceType: "Vm", Source: backend.Ref{Name: "src"}, DestType: "VmTemplate", DestName: "tpl"})
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := m.VMTemplate(ctx, backend.Ref{ID: saved.Copies[0].ID})
	if err != nil {
		t.Fatal(err)
	}
	sim := f.c.AgentClient(0)
	if err := sim.Call(context.Background(), agentapi.MethodSimSet, nil, map[string]any{"latency_ms": map[string]any{agentapi.MethodCopyFile: 1500}}); err != nil {
		t.Fatal(err)
	}
	var parent string
	async := m.With(backend.RunOptions{Async: true, Observe: func(id string) { parent = id }})
	if _, err := async.Clone(ctx, backend.CloneRequest{SourceType: "VmTemplate", Source: backend.Ref{Name: "tpl"}, DestType: "Vm", DestName: "c", Copies: 2}); backend.JobIDOf(err) == "" {
		t.Fatalf("asynchronous clone = %v; want the job started", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		v, err := m.VMTemplate(ctx, backend.Ref{ID: tpl.ID})
		if err != nil {
			t.Fatal(err)
		}
		if v.CloningJob == parent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("show VmTemplate never named the clone's job")
		}
		time.Sleep(10 * time.Millisecond)
	}
	want := "VmTemplate tpl is being cloned (job " + parent + ")"
	if _, err := m.DeleteVMTemplate(ctx, backend.Ref{Name: "tpl"}); backend.KindOf(err) != backend.KindConflict || !strings.Contains(err.Error(), want) {
		t.Fatalf("delete during a clone = %v; want Conflict %q", err, want)
	}
	if _, err := m.EditVMTemplate(ctx, backend.Ref{Name: "tpl"}, backend.EditTemplateRequest{Description: new("x")}); backend.KindOf(err) != backend.KindConflict || !strings.Contains(err.Error(), want) {
		t.Fatalf("edit during a clone = %v; want Conflict %q", err, want)
	}
	if j, err := m.WaitJob(ctx, parent); err != nil || j.Status != backend.JobSuccess {
		t.Fatalf("the clone = %+v, %v", j, err)
	}
	if _, err := m.DeleteVMTemplate(ctx, backend.Ref{Name: "tpl"}); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(f.files(t, "VirtualDisks"), tpl.Disks[0].DiskID+".img") || len(f.files(t, "Templates")) != 0 {
		t.Fatalf("delete VmTemplate left files: %q, %q", f.files(t, "VirtualDisks"), f.files(t, "Templates"))
	}
	if vms, _ := m.ListVMs(ctx, backend.Filter{}); len(vms) != 3 {
		t.Fatalf("%d VMs; want src and its 2 clones", len(vms))
	}
}

// An abort of a clone's job aborts every copy's: with one copy at a time,
// the copy made before the abort stays, whole; the one in flight and the
// one waiting for its turn leave nothing.
func TestCloneAbortedKeepsTheCopiesMade(t *testing.T) {
	f := newCloneFleet(t, 1)
	m, ctx := f.m, f.ctx
	f.vmWithDisks(t, "src", 1, 1)
	if _, err := m.EditManager(ctx, backend.EditManagerRequest{CloneParallelismPerServer: new(int64(1))}); err != nil {
		t.Fatal(err)
	}
	disksBefore := f.files(t, "VirtualDisks")
	sim := f.c.AgentClient(0)
	if err := sim.Call(context.Background(), agentapi.MethodSimSet, nil, map[string]any{"latency_ms": map[string]any{agentapi.MethodCopyFile: 1000}}); err != nil {
		t.Fatal(err)
	}
	var parent string
	async := m.With(backend.RunOptions{Async: true, Observe: func(id string) { parent = id }})
	if _, err := async.Clone(ctx, backend.CloneRequest{SourceType: "Vm", Source: backend.Ref{Name: "src"}, DestType: "Vm", DestName: "c", Copies: 3}); backend.JobIDOf(err) == "" {
		t.Fatalf("asynchronous clone = %v; want the job started", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		j, err := m.Job(ctx, parent)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(j.Message, "1 of 3 copies done") {
			break
		}
		if time.Now().After(deadline) || j.Status != backend.JobRunning {
			t.Fatalf("the clone never finished its first copy: %+v", j)
		}
		time.Sleep(10 * time.Millisecond)
	}
	j, err := m.AbortJob(ctx, parent)
	if err != nil || j.Status != backend.JobAborted || !strings.Contains(j.Error, "1 of 3 copies were made before, and stay") {
		t.Fatalf("abort the clone = %+v, %v; want Aborted with one copy made", j, err)
	}
	vms, err := m.ListVMs(ctx, backend.Filter{Name: "c-*"})
	if err != nil || len(vms) != 1 {
		t.Fatalf("clones after the abort: %+v, %v; want the one made before it", vms, err)
	}
	made, err := m.VM(ctx, backend.Ref{ID: vms[0].ID})
	if err != nil || len(made.Disks) != 1 {
		t.Fatalf("the copy made before the abort = %+v, %v", made, err)
	}
	want := append(slices.Clone(disksBefore), made.Disks[0].ID+".img")
	slices.Sort(want)
	if got := f.files(t, "VirtualDisks"); !slices.Equal(got, want) {
		t.Fatalf("VirtualDisks after the abort: %q; want the source's and the made copy's, %q", got, want)
	}
	if got := f.files(t, "VirtualMachines"); len(got) != 2 {
		t.Fatalf("VirtualMachines after the abort: %q; want src and the made copy", got)
	}
}
