package shell

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
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/store/fulldisk"
)

// The rest of issue 14 over SSH, beside TestTemplateImportApproveCloneTwentyOverSSH:
// an OVA whose disk is a VMDK, archives that cannot be imported, a clone
// aborted half-way from a second session and a clone into a repository
// that fills up. Each checks what is left behind as an administrator
// would: the repository's directories on disk and list VmTemplate,
// list VirtualDisk and list Vm.

// archiveFile is a file of a test archive.
type archiveFile struct {
	name string
	body []byte
}

// tarOf is a tar of files, in the order given, gzip-compressed when gz.
func tarOf(t *testing.T, gz bool, files ...archiveFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	var zw *gzip.Writer
	tw := tar.NewWriter(&buf)
	if gz {
		zw = gzip.NewWriter(&buf)
		tw = tar.NewWriter(zw)
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// randomBytes is n bytes of random data: no block of zeros, so that a
// sparse copy copies every byte.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// serveFiles serves bodies by URL path (404 for any other) on 127.0.0.1:0
// and returns the server's URL.
func serveFiles(t *testing.T, bodies map[string][]byte) string {
	t.Helper()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := bodies[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}))
	t.Cleanup(web.Close)
	return web.URL
}

// needQemuImg skips the test with one loud line where qemu-img (which the
// agent runs to convert an appliance's disks) is missing, or fails it in
// CI.
func needQemuImg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("required in CI: qemu-img (package qemu-utils): %v", err)
		}
		t.Skipf("SKIPPED, the machine lacks qemu-img (package qemu-utils), which imports of appliances run: %v", err)
	}
}

// streamOptimizedVMDK is raw converted by qemu-img into a streamOptimized
// VMDK, the form OVAs carry.
func streamOptimizedVMDK(t *testing.T, raw []byte) []byte {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "disk.raw"), filepath.Join(dir, "disk1.vmdk")
	if err := os.WriteFile(in, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", in, out).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v: %s", err, b)
	}
	vmdk, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return vmdk
}

// applianceOVF is an OVF descriptor of one VM (2 vCPUs, 512 MiB, one NIC
// on "VM Network") whose disk of capacityMiB is the file href in format
// ("" leaves ovf:format out).
func applianceOVF(href, format string, capacityMiB int) string {
	formatAttr := ""
	if format != "" {
		formatAttr = fmt.Sprintf(` ovf:format=%q`, format)
	}
	return fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
  xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
  <References><File ovf:href=%q ovf:id="file1"/></References>
  <DiskSection><Info>Virtual disk information</Info>
    <Disk ovf:capacity="%d" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk1" ovf:fileRef="file1"%s/>
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
`, href, capacityMiB, formatAttr)
}

const vmdkFormat = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"

// repoFiles lists the names in dir of the repository at repoDir, hidden
// ones (an agent's temporary files) included; none when dir is absent.
func repoFiles(t *testing.T, repoDir, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(repoDir, dir))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	out := []string{}
	for _, en := range entries {
		out = append(out, en.Name())
	}
	return out
}

// waitRepoFiles waits, bounded, until dir of the repository holds exactly
// want (sorted), and fails the test with what it holds otherwise. An
// agent removes the temporary file of a call it sees dropped as it notices,
// which may be just after the manager has answered.
func waitRepoFiles(t *testing.T, repoDir, dir string, want []string, why string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := repoFiles(t, repoDir, dir)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s holds %q; want %q", why, dir, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// listed are the names of the rows of a list command's text output.
func listed(out string) []string {
	names := []string{}
	for _, m := range regexp.MustCompile(`(?m)^  id:\S+  name:(\S+)`).FindAllStringSubmatch(out, -1) {
		names = append(names, m[1])
	}
	slices.Sort(names)
	return names
}

// mustList runs a list command and returns the names it lists, sorted.
func (e *env) mustList(command string) []string {
	e.t.Helper()
	return listed(e.mustRun(command))
}

// An OVA whose disk is a streamOptimized VMDK, imported over SSH by an
// Operator, approved by an Administrator, becomes a template with the
// OVF's memory, processors and operating system and its NIC on the pool's
// network named as the OVF's; its disk, converted to raw, holds the
// appliance's bytes; two clones of it are made in one command, hold the
// same bytes, and start.
func TestTemplateApplianceWithVMDKOverSSH(t *testing.T) {
	needQemuImg(t)
	raw := append(randomBytes(1<<20), make([]byte, 7<<20)...) // 8 MiB: data, then zeros
	ova := tarOf(t, false, archiveFile{"web.ovf", []byte(applianceOVF("disk1.vmdk", vmdkFormat, 8))},
		archiveFile{"disk1.vmdk", streamOptimizedVMDK(t, raw)})
	url := serveFiles(t, map[string][]byte{"/web.ova": ova})

	e := newEnv(t, 1, 8192)
	repoDir := filepath.Join(t.TempDir(), "repo")
	e.setupPool(repoDir)
	e.mustRun(`edit Manager importAllowedNetworks=127.0.0.0/8; create Network name="VM Network" bridge=xenbr1 on ServerPool name=pool1`)
	e.mustRun("create User name=op password=op-secret-1 role=Operator; add User name=op to ServerPool name=pool1")
	if out, st := e.runAs("op", "op-secret-1", "importVirtualAppliance Repository name=repo1 url="+url+"/web.ova name=webapp"); st != 0 ||
		!strings.Contains(out, "name:webapp") {
		t.Fatalf("importVirtualAppliance: exit %d\n%s", st, out)
	}
	e.mustRun("approve VmTemplate name=webapp")
	out := e.mustRun("show VmTemplate name=webapp")
	for key, want := range map[string]string{"State": "Approved", "Memory (MB)": "512", "Processors": "2",
		"Operating System": "Oracle Linux 8 (64-bit)", "Created By": "op"} {
		if got := prop(out, key); got != want {
			t.Errorf("show VmTemplate: %s = %q, want %q", key, got, want)
		}
	}
	if !strings.Contains(prop(out, "Vnic 1"), " on VM Network ") || prop(out, "Disk 1") == "" || prop(out, "Disk 2") != "" {
		t.Fatalf("show VmTemplate: want one disk and its NIC on VM Network\n%s", out)
	}
	if got := repoFiles(t, repoDir, "Templates"); len(got) != 1 || !slices.Equal(repoFiles(t, repoDir, "Templates/"+got[0]), []string{"vm.cfg"}) {
		t.Fatalf("Templates holds %q; want the template's directory, holding only its vm.cfg", got)
	}

	out, st := e.runAs("op", "op-secret-1", "clone VmTemplate name=webapp destType=Vm destName=web copies=2")
	if st != 0 || strings.Count(out, "result:Success") != 2 {
		t.Fatalf("clone copies=2: exit %d\n%s", st, out)
	}
	images := repoFiles(t, repoDir, "VirtualDisks")
	if len(images) != 3 {
		t.Fatalf("VirtualDisks holds %q; want the template's image and its 2 clones'", images)
	}
	for _, img := range images {
		got, err := os.ReadFile(filepath.Join(repoDir, "VirtualDisks", img))
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("VirtualDisks/%s differs from the appliance's disk (%d bytes, %v)", img, len(got), err)
		}
	}
	if _, st := e.runAs("op", "op-secret-1", "start Vm name=web-* multiple=Yes"); st != 0 {
		t.Fatalf("start the appliance's clones: exit %d", st)
	}
	if got := e.mustList("list Vm status=Running"); !slices.Equal(got, []string{"web-1", "web-2"}) {
		t.Fatalf("running after the start: %q", got)
	}
}

// Archives that cannot be imported fail over SSH with an error saying
// what was wrong and what is accepted, and leave nothing: no record, no
// file in Templates/ or VirtualDisks/ (a disk moved before the failure is
// removed again), hidden temporary ones included. What qemu-img printed
// about a damaged image stays in the agent's log.
func TestTemplateImportBrokenArchivesOverSSH(t *testing.T) {
	needQemuImg(t)
	img := randomBytes(64 << 10)
	vmdk := streamOptimizedVMDK(t, append(randomBytes(1<<20), make([]byte, 1<<20)...))
	damaged := slices.Clone(vmdk)
	for i := 512; i < len(damaged); i++ { // the magic stays; what follows is garbage
		damaged[i] ^= 0x5a
	}
	ovf := []byte(applianceOVF("disk1.vmdk", vmdkFormat, 2))
	url := serveFiles(t, map[string][]byte{
		"/notatar.tgz": []byte("this is not an archive at all"),
		// The second disk its vm.cfg names is not there: the first has
		// been moved into VirtualDisks when that shows.
		"/missing.tgz": tarOf(t, true, archiveFile{"t/vm.cfg", []byte("memory = 256\ndisk = ['file:/x/a.img,xvda,w', 'file:/x/b.img,xvdb,w']\n")},
			archiveFile{"t/a.img", img}),
		"/phy.tgz":      tarOf(t, true, archiveFile{"vm.cfg", []byte("memory = 256\ndisk = ['phy:/dev/sda,xvda,w']\n")}, archiveFile{"a.img", img}),
		"/nomemory.tgz": tarOf(t, true, archiveFile{"vm.cfg", []byte("disk = ['file:/x/a.img,xvda,w']\n")}, archiveFile{"a.img", img}),
		"/gz.ova":       tarOf(t, true, archiveFile{"web.ovf", ovf}, archiveFile{"disk1.vmdk", vmdk}),
		"/noovf.ova":    tarOf(t, false, archiveFile{"disk1.vmdk", vmdk}),
		"/nodisk.ova":   tarOf(t, false, archiveFile{"web.ovf", ovf}),
		"/damaged.ova":  tarOf(t, false, archiveFile{"web.ovf", ovf}, archiveFile{"disk1.vmdk", damaged}),
		"/notvmdk.ova":  tarOf(t, false, archiveFile{"web.ovf", ovf}, archiveFile{"disk1.vmdk", img}),
	})

	e := newEnv(t, 1, 8192)
	repoDir := filepath.Join(t.TempDir(), "repo")
	e.setupPool(repoDir)
	e.mustRun("edit Manager importAllowedNetworks=127.0.0.0/8; create Network name=net1 bridge=xenbr0 on ServerPool name=pool1")
	for _, tc := range []struct {
		verb, path string
		code       string
		msgs       []string // what was wrong, and what is accepted
	}{
		{"importTemplate", "/notatar.tgz", "XM_0400E", []string{"is not a tar archive, or is truncated (it ends inside an entry or a header); " +
			"accepted is a tar archive, gzip-compressed or not, of vm.cfg and the disk images it names"}},
		{"importTemplate", "/missing.tgz", "XM_0404E", []string{"the template's vm.cfg names disk image b.img, which the archive does not hold " +
			"beside the vm.cfg; an archive holds vm.cfg and every disk image it names"}},
		{"importTemplate", "/phy.tgz", "XM_0400E", []string{`the template's vm.cfg has disk "phy:/dev/sda,xvda,w"`, "accepted are image files (file:, tap:aio:) beside the vm.cfg"}},
		{"importTemplate", "/nomemory.tgz", "XM_0400E", []string{"Cannot obtain memory size from vm.cfg"}},
		{"importTemplate", "/gone.tgz", "XM_0404E", []string{"HTTP 404"}},
		{"importVirtualAppliance", "/gz.ova", "XM_0400E", []string{"is gzip-compressed; an OVA is an uncompressed tar archive"}},
		{"importVirtualAppliance", "/noovf.ova", "XM_0400E", []string{"holds no OVF descriptor (no .ovf file at its top)"}},
		{"importVirtualAppliance", "/notatar.tgz", "XM_0400E", []string{"is not a tar archive, or is truncated (it ends inside an entry or a header); " +
			"accepted is an OVA, an uncompressed tar archive of one OVF descriptor, an optional manifest and its disk images"}},
		{"importVirtualAppliance", "/nodisk.ova", "XM_0400E", []string{"disk1.vmdk"}},
		{"importVirtualAppliance", "/damaged.ova", "XM_0400E", []string{"disk vmdisk1 (disk1.vmdk) cannot be read by qemu-img; the image is damaged or not of an accepted format (",
			"the agent's log has qemu-img's words"}},
		{"importVirtualAppliance", "/notvmdk.ova", "XM_0400E", []string{"disk vmdisk1 (disk1.vmdk): the descriptor says vmdk, but the file is no such image; accepted formats: "}},
	} {
		command := tc.verb + " Repository name=repo1 url=" + url + tc.path + " name=t"
		out := e.failCode(command, tc.code, tc.msgs...)
		t.Logf("%s:\n%s", tc.path, out)
		for _, internal := range []string{"qemu-img:", "Could not", "goroutine", "xmlrpc", "panic", "/OVS/Repositories/", "src "} {
			if strings.Contains(out, internal) {
				t.Errorf("%s: the error echoes %q from inside the agent:\n%s", command, internal, out)
			}
		}
		for _, dir := range []string{"Templates", "VirtualDisks"} {
			waitRepoFiles(t, repoDir, dir, []string{}, command)
		}
		if got := e.mustList("list VmTemplate"); len(got) != 0 {
			t.Fatalf("%s left templates: %q", command, got)
		}
		if got := e.mustList("list VirtualDisk"); len(got) != 0 {
			t.Fatalf("%s left disks: %q", command, got)
		}
	}
	if got := e.mustList("list Vm"); len(got) != 0 {
		t.Fatalf("failed imports left VMs: %q", got)
	}
}

// importDisksTemplate has the Administrator import a template whose
// vm.cfg names one image per body, each served as an uncompressed tar,
// and returns the template's image files in VirtualDisks.
func (e *env) importDisksTemplate(repoDir, name string, bodies ...[]byte) []string {
	e.t.Helper()
	var disks []string
	files := []archiveFile{{}}
	for i, b := range bodies {
		f := fmt.Sprintf("disk%d.img", i)
		disks = append(disks, fmt.Sprintf("'file:/OVS/seed_pool/%s/%s,xvd%c,w'", name, f, 'a'+i))
		files = append(files, archiveFile{name + "/" + f, b})
	}
	files[0] = archiveFile{name + "/vm.cfg", []byte("memory = 256\nvcpus = 1\ndisk = [" + strings.Join(disks, ", ") + "]\nvif = ['bridge=xenbr0']\n")}
	url := serveFiles(e.t, map[string][]byte{"/" + name + ".tar": tarOf(e.t, false, files...)})
	before := repoFiles(e.t, repoDir, "VirtualDisks")
	e.mustRun("edit Manager importAllowedNetworks=127.0.0.0/8")
	e.mustRun("importTemplate Repository name=repo1 url=" + url + "/" + name + ".tar name=" + name)
	var images []string
	for _, f := range repoFiles(e.t, repoDir, "VirtualDisks") {
		if !slices.Contains(before, f) {
			images = append(images, f)
		}
	}
	if len(images) != len(bodies) {
		e.t.Fatalf("the import of %s made %q in VirtualDisks; want %d images", name, images, len(bodies))
	}
	return images
}

// abort Job, from a second SSH session, stops a clone copies=3 half-way:
// with one copy at a time and each copy slowed at the agent
// (copy_mib_per_s), the abort lands after the first copy is made and
// while the second is being written. A copy stops between disks, so abort
// Job answers once the disk in flight is copied (the log says after how
// long). The first copy stays, whole; the copy in flight and the one not
// started leave nothing: no file in the repository (neither the image the
// copy in flight wrote nor a temporary file), no vm.cfg, no record. The
// clone's own session ends with an error saying so, listing each copy.
func TestTemplateCloneAbortedHalfWayOverSSH(t *testing.T) {
	e := newEnv(t, 1, 8192)
	repoDir := filepath.Join(t.TempDir(), "repo")
	e.setupPool(repoDir)
	e.mustRun("create Network name=net1 bridge=xenbr0 on ServerPool name=pool1; edit Manager cloneParallelismPerServer=1")
	tplImages := e.importDisksTemplate(repoDir, "tpl", randomBytes(8<<20))
	// 8 MiB at 2 MiB/s: each copy lasts 4 s at the agent, the window in
	// which the abort lands in the second.
	if err := e.agentClient(0).Call(context.Background(), agentapi.MethodSimSet, nil, map[string]any{"copy_mib_per_s": 2}); err != nil {
		t.Fatal(err)
	}
	vmsBefore := repoFiles(t, repoDir, "VirtualMachines")

	type outcome struct {
		out    string
		status int
	}
	cloned := make(chan outcome, 1)
	go func() {
		out, st := e.run("clone VmTemplate name=tpl destType=Vm destName=c copies=3")
		cloned <- outcome{out, st}
	}()
	var parent string
	re := regexp.MustCompile(`(?m)^  id:([0-9a-f]{32})  name:clone VmTemplate tpl to 3 Vm \(c-1 \.\. c-3\)`)
	eventually(t, "the clone's job listed Running", func() bool {
		if m := re.FindStringSubmatch(e.mustRun("list Job status=Running")); m != nil {
			parent = m[1]
		}
		return parent != ""
	})
	eventually(t, "the clone's first copy made", func() bool {
		return strings.HasPrefix(prop(e.mustRun("show Job id="+parent), "Message"), "1 of 3 copies done")
	})
	eventually(t, "the second copy being written (its temporary file in VirtualDisks)", func() bool {
		for _, f := range repoFiles(t, repoDir, "VirtualDisks") {
			if strings.HasPrefix(f, ".") && strings.Contains(f, ".tmp-") {
				return true
			}
		}
		return false
	})
	inFlight := time.Now()
	out := e.mustRun("abort Job id=" + parent)
	if prop(out, "Status") != "Aborted" {
		t.Fatalf("abort Job:\n%s", out)
	}
	t.Logf("abort Job answered %v after the second copy was seen in flight (each copy lasts 4 s; abort waits for the disk in flight)",
		time.Since(inFlight).Round(time.Millisecond))
	var o outcome
	select {
	case o = <-cloned:
	case <-time.After(time.Minute):
		t.Fatal("the clone's session never ended after the abort")
	}
	made := regexp.MustCompile(`name:(c-[1-3]) +result:Success`).FindAllStringSubmatch(o.out, -1)
	if o.status == 0 || !strings.Contains(o.out, "job "+parent+" was aborted: 1 of 3 copies were made before, and stay; the others left nothing") ||
		len(made) != 1 || strings.Count(o.out, "was aborted") != 3 {
		t.Fatalf("the aborted clone's session: exit %d; want the copy made, the two others aborted\n%s", o.status, o.out)
	}
	// The copies wait for their turn in no set order: which was made
	// before the abort is what the session said.
	c1Name := made[0][1]
	if got := e.mustList("list Vm"); !slices.Equal(got, []string{c1Name}) {
		t.Fatalf("VMs after the abort: %q; want %s, the copy made before it", got, c1Name)
	}
	if got := e.mustList("list VmTemplate"); !slices.Equal(got, []string{"tpl"}) {
		t.Fatalf("templates after the abort: %q", got)
	}
	c1 := e.mustRun("show Vm name=" + c1Name)
	c1Disk := prop(c1, "Virtual Disks")
	if disks := e.mustList("list VirtualDisk"); !slices.Equal(disks, []string{c1Disk}) {
		t.Fatalf("disks after the abort: %q; want %s's only (a template's disks are no VirtualDisk)", disks, c1Name)
	}
	c1Image := prop(e.mustRun(`show VirtualDisk name="`+c1Disk+`"`), "Id") + ".img"
	want := append(slices.Clone(tplImages), c1Image)
	slices.Sort(want)
	waitRepoFiles(t, repoDir, "VirtualDisks", want, "after the abort")
	if fi, err := os.Stat(filepath.Join(repoDir, "VirtualDisks", c1Image)); err != nil || fi.Size() != 8<<20 {
		t.Fatalf("%s's image, made before the abort: %v, %v; want 8 MiB", c1Name, fi, err)
	}
	c1ID := prop(c1, "Id")
	waitRepoFiles(t, repoDir, "VirtualMachines", append(slices.Clone(vmsBefore), c1ID), "after the abort")
	for _, name := range []string{"c-1", "c-2", "c-3"} {
		if name != c1Name {
			e.failCode("show Vm name="+name, "XM_0404E")
		}
	}
}

// A clone into a repository without room fails over SSH with an error
// that says so, and leaves nothing: no file in the repository (the disk
// copied before the one that did not fit, and the temporary file of a copy
// cut short, are removed), no vm.cfg, no record. Both ways are tried: a
// disk the repository has no room for (refused before its copy), and a
// repository that fills up while a copy writes into it (another writer
// takes the last byte while the copy is slowed at the agent).
func TestTemplateCloneIntoFullRepositoryOverSSH(t *testing.T) {
	disk := fulldisk.Mount(t, 8)
	e := newEnv(t, 1, 8192)
	repoDir := filepath.Join(t.TempDir(), "repo")
	e.setupPool(repoDir)
	smallDir := filepath.Join(disk.Dir, "repo")
	e.mustRun("create Network name=net1 bridge=xenbr0 on ServerPool name=pool1; create Repository name=small fsLocation=" + smallDir + " on ServerPool name=pool1")
	// 12 MiB of data: the first disk fits in 8 MiB, the second does not.
	e.importDisksTemplate(repoDir, "data", randomBytes(6<<20), randomBytes(6<<20))
	disksBefore, vmsBefore, tplsBefore := e.mustList("list VirtualDisk"), e.mustList("list Vm"), e.mustList("list VmTemplate")
	leftNothing := func(why string) {
		t.Helper()
		for _, dir := range []string{"VirtualDisks", "VirtualMachines"} {
			waitRepoFiles(t, smallDir, dir, []string{}, why)
		}
		if got := e.mustList("list VirtualDisk"); !slices.Equal(got, disksBefore) {
			t.Fatalf("%s: disks %q; before %q", why, got, disksBefore)
		}
		if got := e.mustList("list Vm"); !slices.Equal(got, vmsBefore) {
			t.Fatalf("%s: VMs %q; before %q", why, got, vmsBefore)
		}
		if got := e.mustList("list VmTemplate"); !slices.Equal(got, tplsBefore) {
			t.Fatalf("%s: templates %q; before %q", why, got, tplsBefore)
		}
		e.failCode("show Vm name=datacopy", "XM_0404E")
	}
	noInternals := func(out string) {
		t.Helper()
		for _, internal := range []string{"goroutine", "xmlrpc", "panic", "no space left on device", "errno"} {
			if strings.Contains(strings.ToLower(out), internal) {
				t.Errorf("the error echoes %q from inside the agent:\n%s", internal, out)
			}
		}
	}
	const clone = "clone VmTemplate name=data destType=Vm destName=datacopy targetRepository=small"

	e.failCode(clone, "XM_0507E", "repository small has ", " MiB free; the sparse copy of ", " needs 6 MiB")
	leftNothing("a clone whose second disk did not fit")

	// 4 MiB at a time, 2 MiB a second: the first disk's copy writes its
	// first chunk, then waits 2 s, in which the repository fills up.
	if err := e.agentClient(0).Call(context.Background(), agentapi.MethodSimSet, nil, map[string]any{"copy_mib_per_s": 2}); err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		out    string
		status int
	}
	cloned := make(chan outcome, 1)
	go func() {
		out, st := e.run(clone)
		cloned <- outcome{out, st}
	}()
	eventually(t, "the first disk's copy writing into the repository", func() bool {
		for _, f := range repoFiles(t, smallDir, "VirtualDisks") {
			if strings.HasPrefix(f, ".") && strings.Contains(f, ".tmp-") {
				return true
			}
		}
		return false
	})
	disk.Fill()
	var o outcome
	select {
	case o = <-cloned:
	case <-time.After(time.Minute):
		t.Fatal("the clone's session never ended after its repository filled up")
	}
	t.Logf("clone into a repository that fills up:\n%s", o.out)
	if o.status == 0 || !strings.Contains(o.out, "Error Msg: XM_0507E: ") || !strings.Contains(o.out, "full") {
		t.Fatalf("clone into a repository that fills up: exit %d; want XM_0507E saying it is full\n%s", o.status, o.out)
	}
	noInternals(o.out)
	leftNothing("a clone whose repository filled up")
	disk.Free()
}
