package backend_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
)

// tgzOf is a gzip-compressed tar of name -> body files, in the order given.
func tgzOf(t *testing.T, files ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f[0], Mode: 0o644, Size: int64(len(f[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f[1]))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// Imports that cannot be made fail with what was wrong and leave nothing:
// no record, nothing in Templates/ or VirtualDisks/ (a disk moved before
// the failure is removed again).
func TestTemplateImportFailuresLeaveNothing(t *testing.T) {
	f := newCloneFleet(t, 1)
	m, ctx := f.m, f.ctx
	img := strings.Repeat("disk data\n", 1000)
	bodies := map[string][]byte{
		"/notatar.tgz": []byte("this is not an archive at all"),
		// The second disk its vm.cfg names is not in the archive: the first
		// has been moved into VirtualDisks when that shows.
		"/missing.tgz": tgzOf(t, [2]string{"t/vm.cfg", "memory = 256\ndisk = ['file:/x/a.img,xvda,w', 'file:/x/b.img,xvdb,w']\n"},
			[2]string{"t/a.img", img}),
		"/phy.tgz": tgzOf(t, [2]string{"vm.cfg", "memory = 256\ndisk = ['phy:/dev/sda,xvda,w']\n"}, [2]string{"a.img", img}),
		"/twice.tgz": tgzOf(t, [2]string{"vm.cfg", "memory = 256\ndisk = ['file:/x/a.img,xvda,w', 'file:/y/a.img,xvdb,w']\n"},
			[2]string{"a.img", img}),
		"/nomemory.tgz": tgzOf(t, [2]string{"vm.cfg", "disk = ['file:/x/a.img,xvda,w']\n"}, [2]string{"a.img", img}),
	}
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := bodies[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}))
	t.Cleanup(web.Close)
	for _, tc := range []struct {
		path string
		kind backend.Kind
		msg  string
	}{
		{"/notatar.tgz", backend.KindInvalidArgument, "is not a tar archive, or is truncated (it ends inside an entry or a header); accepted is a tar archive, gzip-compressed or not"},
		{"/missing.tgz", backend.KindNotFound, "the template's vm.cfg names disk image b.img, which the archive does not hold beside the vm.cfg; " +
			"an archive holds vm.cfg and every disk image it names"},
		{"/phy.tgz", backend.KindInvalidArgument, "the template's vm.cfg has disk \"phy:/dev/sda,xvda,w\"; accepted are image files"},
		{"/twice.tgz", backend.KindInvalidArgument, "names disk image a.img twice"},
		{"/nomemory.tgz", backend.KindInvalidArgument, "Cannot obtain memory size from vm.cfg"},
		{"/gone.tgz", backend.KindNotFound, "HTTP 404"},
	} {
		_, err := m.ImportTemplate(ctx, backend.Ref{ID: f.repo.ID}, web.URL+tc.path, "t", "")
		if backend.KindOf(err) != tc.kind || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("import %s = %v; want %v %q", tc.path, err, tc.kind, tc.msg)
		}
		for _, dir := range []string{"Templates", "VirtualDisks"} {
			if got := f.files(t, dir); len(got) != 0 {
				t.Fatalf("import %s left %q in %s", tc.path, got, dir)
			}
		}
	}
	if tpls, err := m.VMTemplates(ctx, backend.Filter{}); err != nil || len(tpls) != 0 {
		t.Fatalf("failed imports left %d templates, %v", len(tpls), err)
	}
}

// An import aborted while it downloads stops at once and leaves nothing.
func TestTemplateImportAbortedLeavesNothing(t *testing.T) {
	f := newCloneFleet(t, 1)
	m, ctx := f.m, f.ctx
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000000")
		w.Write(make([]byte, 1<<20))
		w.(http.Flusher).Flush()
		select { // the rest never comes while the test runs
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(web.Close)
	var job string
	async := m.With(backend.RunOptions{Async: true, Observe: func(id string) { job = id }})
	if _, err := async.ImportTemplate(ctx, backend.Ref{ID: f.repo.ID}, web.URL+"/big.tgz", "big", ""); backend.JobIDOf(err) == "" {
		t.Fatalf("asynchronous import = %v; want the job started", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		j, err := m.Job(ctx, job)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(j.Message, "downloading") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the import never reported its download: %+v", j)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if j, err := m.AbortJob(ctx, job); err != nil || j.Status != backend.JobAborted {
		t.Fatalf("abort the import = %+v, %v; want Aborted", j, err)
	}
	// The agent removes its temporary directory when the call is dropped.
	for time.Now().Before(deadline) && len(f.files(t, "Templates")) != 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if got := f.files(t, "Templates"); len(got) != 0 {
		t.Fatalf("an aborted import left %q in Templates", got)
	}
	if _, err := m.VMTemplate(ctx, backend.Ref{Name: "big"}); backend.KindOf(err) != backend.KindNotFound {
		t.Fatalf("an aborted import left a record: %v", err)
	}
}

// An OVA appliance whose disk is a VMDK becomes a template: its memory,
// vCPUs and OS from the OVF, its disk converted to raw and moved into
// VirtualDisks, its NIC on the pool's network named as the OVF's; a clone
// of it starts.
func TestImportVirtualApplianceWithVMDK(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("required in CI: qemu-img (package qemu-utils): %v", err)
		}
		t.Skipf("SKIPPED, the machine lacks qemu-img (package qemu-utils), which imports of appliances run: %v", err)
	}
	f := newCloneFleet(t, 1)
	m, ctx := f.m, f.ctx
	pool, err := m.ServerPool(ctx, backend.Ref{Name: managertest.Pool})
	if err != nil {
		t.Fatal(err)
	}
	vmnet, err := m.CreateNetwork(ctx, "VM Network", backend.Ref{ID: pool.ID}, "xenbr1", "")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	raw := diskImage(8 << 20)
	if err := os.WriteFile(filepath.Join(dir, "disk.raw"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized",
		filepath.Join(dir, "disk.raw"), filepath.Join(dir, "disk1.vmdk")).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img convert: %v: %s", err, out)
	}
	vmdk, err := os.ReadFile(filepath.Join(dir, "disk1.vmdk"))
	if err != nil {
		t.Fatal(err)
	}
	ovf := `<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
  xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
  <References><File ovf:href="disk1.vmdk" ovf:id="file1"/></References>
  <DiskSection><Info>Virtual disk information</Info>
    <Disk ovf:capacity="8" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk1" ovf:fileRef="file1"
      ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection><Info>Networks</Info><Network ovf:name="VM Network"/></NetworkSection>
  <VirtualSystem ovf:id="web-appliance">
    <Info>A virtual machine</Info>
    <Name>Web Appliance</Name>
    <OperatingSystemSection ovf:id="101"><Description>Oracle Linux 8 (64-bit)</Description></OperatingSystemSection>
    <VirtualHardwareSection>
      <Item><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>
      <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>512</rasd:VirtualQuantity></Item>
      <Item><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceType>17</rasd:ResourceType></Item>
      <Item><rasd:Connection>VM Network</rasd:Connection><rasd:InstanceID>4</rasd:InstanceID><rasd:ResourceType>10</rasd:ResourceType></Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
`
	var ova bytes.Buffer
	tw := tar.NewWriter(&ova)
	for _, e := range []struct {
		name string
		body []byte
	}{{"web.ovf", []byte(ovf)}, {"disk1.vmdk", vmdk}} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.body)
	}
	tw.Close()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(ova.Bytes()) }))
	t.Cleanup(web.Close)

	tpl, err := m.ImportVirtualAppliance(ctx, backend.Ref{ID: f.repo.ID}, web.URL+"/web.ova", "webapp", "")
	if err != nil {
		t.Fatal(err)
	}
	if tpl.MemoryMiB != 512 || tpl.CPUCount != 2 || tpl.OSType != "Oracle Linux 8 (64-bit)" || len(tpl.Disks) != 1 || len(tpl.Vnics) != 1 ||
		tpl.Vnics[0].Network.ID != vmnet.ID {
		t.Fatalf("imported appliance: memory %d, cpus %d, os %q, disks %+v, vnics %+v", tpl.MemoryMiB, tpl.CPUCount, tpl.OSType, tpl.Disks, tpl.Vnics)
	}
	got, err := os.ReadFile(filepath.Join(f.repoDir, "VirtualDisks", tpl.Disks[0].DiskID+".img"))
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("the appliance's disk, converted to raw, differs from the original (%d bytes, %v)", len(got), err)
	}
	if got := f.files(t, "Templates/"+tpl.ID); len(got) != 1 || got[0] != "vm.cfg" {
		t.Fatalf("Templates/%s holds %q; want only vm.cfg", tpl.ID, got)
	}
	// An edit writes its vm.cfg again.
	if _, err := m.EditVMTemplate(ctx, backend.Ref{Name: "webapp"}, backend.EditTemplateRequest{MemoryMiB: new(int64(768))}); err != nil {
		t.Fatal(err)
	}
	res, err := m.Clone(ctx, backend.CloneRequest{SourceType: "VmTemplate", Source: backend.Ref{Name: "webapp"}, DestType: "Vm", DestName: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if vm, err := m.StartVM(ctx, backend.Ref{ID: res.Copies[0].ID}); err != nil || vm.Status != backend.VMRunning {
		t.Fatalf("start the appliance's clone = %+v, %v", vm, err)
	}

}
