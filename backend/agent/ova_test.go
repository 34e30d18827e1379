package agent_test

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentapi/vmcfg"
)

// needQemuImg skips a test without qemu-img (package qemu-utils), with one
// loud line, or fails it in CI, which installs it.
func needQemuImg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("required in CI: qemu-img (package qemu-utils): %v", err)
		}
		t.Skipf("SKIPPED, the machine lacks qemu-img (package qemu-utils), which imports of appliances run: %v", err)
	}
}

// qemuImg runs qemu-img in dir.
func qemuImg(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("qemu-img", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// testOVF is an OVF 1 descriptor in VMware's shape: one virtual system of
// 1024 MiB and 2 vCPUs, one disk of file disk1.vmdk and 8 MiB, one NIC on
// "VM Network". prolog goes between the XML declaration and the envelope.
func testOVF(prolog, diskFile string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>` + prolog + `
<Envelope vmw:buildId="build-1" xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
  xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
  xmlns:vmw="http://www.vmware.com/schema/ovf">
  <References><File ovf:href="` + diskFile + `" ovf:id="file1" ovf:size="1234"/></References>
  <DiskSection><Info>Virtual disk information</Info>
    <Disk ovf:capacity="8" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk1" ovf:fileRef="file1"
      ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection><Info>The list of logical networks</Info><Network ovf:name="VM Network"/></NetworkSection>
  <VirtualSystem ovf:id="web-appliance">
    <Info>A virtual machine</Info>
    <Name>Web Appliance</Name>
    <OperatingSystemSection ovf:id="101"><Description>Oracle Linux 8 (64-bit)</Description></OperatingSystemSection>
    <VirtualHardwareSection>
      <Item><rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits><rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>
      <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>1024</rasd:VirtualQuantity></Item>
      <Item><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceType>6</rasd:ResourceType></Item>
      <Item><rasd:AddressOnParent>0</rasd:AddressOnParent><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID><rasd:Parent>3</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>
      <Item><rasd:AutomaticAllocation>true</rasd:AutomaticAllocation><rasd:Connection>VM Network</rasd:Connection>
        <rasd:InstanceID>5</rasd:InstanceID><rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType><rasd:ResourceType>10</rasd:ResourceType></Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
`
}

type archiveFile struct {
	name string
	data []byte
}

// tarOf is an uncompressed tar of files, in order.
func tarOf(t *testing.T, files ...archiveFile) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		must(t, tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg}))
		_, err := tw.Write(f.data)
		must(t, err)
	}
	must(t, tw.Close())
	return b.Bytes()
}

// manifestOf is an OVF manifest of files, SHA256 lines; wrong names a file
// whose digest it gets wrong.
func manifestOf(wrong string, files ...archiveFile) []byte {
	var b bytes.Buffer
	for _, f := range files {
		sum := sha256.Sum256(f.data)
		if f.name == wrong {
			sum[0] ^= 1
		}
		fmt.Fprintf(&b, "SHA256(%s)= %x\n", f.name, sum)
	}
	return b.Bytes()
}

// serve serves path -> body on 127.0.0.1 and returns the server's URL.
func serve(t *testing.T, bodies map[string][]byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := bodies[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// web is the option of an import from the tests' web servers (httptest,
// on 127.0.0.1), whose network imports refuse unless allowed.
func web(kind string) agentapi.ImportOption {
	return agentapi.ImportOption{Kind: kind, AllowedNetworks: []string{"127.0.0.0/8"}}
}

// TestImportOVA: an appliance whose disk is a streamOptimized VMDK lands
// in Templates/<id>/ as a vm.cfg made from its OVF and a raw image holding
// the disk's bytes; its manifest is checked.
func TestImportOVA(t *testing.T) {
	needQemuImg(t)
	c, fsLoc := tplAgent(t, "")
	work := t.TempDir()
	raw := make([]byte, 8<<20)
	_, _ = rand.Read(raw[1<<20 : 2<<20])
	must(t, os.WriteFile(filepath.Join(work, "disk.raw"), raw, 0o644))
	qemuImg(t, work, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", "disk.raw", "disk1.vmdk")
	vmdk, err := os.ReadFile(filepath.Join(work, "disk1.vmdk"))
	must(t, err)
	files := []archiveFile{{"web.ovf", []byte(testOVF("", "disk1.vmdk"))}, {"disk1.vmdk", vmdk}}
	ova := tarOf(t, append(files[:1:1], archiveFile{"web.mf", manifestOf("", files...)}, files[1])...)
	url := serve(t, map[string][]byte{"/web.ova": ova})

	must(t, c.ImportVirtualDisk(t.Context(), url+"/web.ova", "tpl1", "r1", web(agentapi.ImportKindOVA)))
	dir := filepath.Join(fsLoc, "Templates", "tpl1")
	wantNames(t, dir, "0.img", "vm.cfg")
	wantNames(t, filepath.Join(fsLoc, "Templates"), "tpl1")
	img, err := os.ReadFile(filepath.Join(dir, "0.img"))
	must(t, err)
	if !bytes.Equal(img, raw) {
		t.Errorf("the raw image (%d bytes) is not the appliance's disk (%d bytes)", len(img), len(raw))
	}
	data, err := os.ReadFile(filepath.Join(dir, "vm.cfg"))
	must(t, err)
	cfg, err := vmcfg.Parse(data)
	must(t, err)
	want := agentapi.VMParams{
		"name": "tpl1", "OVM_simple_name": "Web Appliance", "OVM_os_type": "Oracle Linux 8 (64-bit)",
		"memory": int64(1024), "maxmem": int64(1024), "vcpus": int64(2), "maxvcpus": int64(2), "boot": "c",
		"disk":         []string{"file:/OVS/Repositories/r1/Templates/tpl1/0.img,xvda,w"},
		"vif":          []string{""},
		"OVF_networks": []string{"VM Network"},
	}
	if fmt.Sprint(cfg) != fmt.Sprint(want) {
		t.Errorf("vm.cfg =\n%v\nwant\n%v", cfg, want)
	}
	if got, err := c.GetTemplateConfig(t.Context(), "r1", "tpl1"); err != nil || got.String("OVM_simple_name") != "Web Appliance" {
		t.Errorf("get_template_config = %v, %v", got, err)
	}
	p, err := c.GetOperationProgress(t.Context(), agentapi.ProgressImport+"tpl1")
	must(t, err)
	if p.State != agentapi.ProgressDone || p.Done != int64(len(ova)) {
		t.Errorf("progress = %+v, want done with the %d bytes downloaded", p, len(ova))
	}
}

// TestImportBadAppliances: an appliance or template whose checksum differs
// from its manifest, whose disk names a backing file, whose OVF has a DTD,
// or that has no OVF is refused with what is wrong, and leaves nothing.
func TestImportBadAppliances(t *testing.T) {
	needQemuImg(t)
	c, fsLoc := tplAgent(t, "")
	work := t.TempDir()
	qemuImg(t, work, "create", "-q", "-f", "vmdk", "base.vmdk", "8M")
	qemuImg(t, work, "create", "-q", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", "child.vmdk", "8M")
	qemuImg(t, work, "create", "-q", "-f", "vmdk", "-o", "subformat=streamOptimized", "disk1.vmdk", "8M")
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(work, name))
		must(t, err)
		return b
	}
	ovf := archiveFile{"a.ovf", []byte(testOVF("", "disk1.vmdk"))}
	disk := archiveFile{"disk1.vmdk", read("disk1.vmdk")}
	child := archiveFile{"disk1.vmdk", read("child.vmdk")}
	dtd := archiveFile{"a.ovf", []byte(testOVF(`<!DOCTYPE Envelope [<!ENTITY big "Web Appliance">]>`, "disk1.vmdk"))}
	escape := archiveFile{"a.ovf", []byte(testOVF("", "../../../etc/passwd"))}
	cfg := []byte("memory = 512\nvcpus = 1\ndisk = ['file:/OVS/Repositories/r1/Templates/t1/System.img,xvda,w']\n")
	tplFiles := []archiveFile{{"vm.cfg", cfg}, {"System.img", make([]byte, 4096)}}
	url := serve(t, map[string][]byte{
		"/mismatch.ova": tarOf(t, ovf, archiveFile{"a.mf", manifestOf("disk1.vmdk", ovf, disk)}, disk),
		"/unlisted.ova": tarOf(t, ovf, archiveFile{"a.mf", manifestOf("", ovf)}, disk),
		"/backing.ova":  tarOf(t, ovf, child),
		"/dtd.ova":      tarOf(t, dtd, disk),
		"/noovf.ova":    tarOf(t, disk),
		"/notatar.ova":  []byte("this is not an archive at all"),
		"/escape.ova":   tarOf(t, escape, disk),
		"/tpl.tar":      tarOf(t, append(tplFiles, archiveFile{"t.mf", manifestOf("System.img", tplFiles...)})...),
		"/tplsum.tar": tarOf(t, append(tplFiles, archiveFile{"SHA256SUMS.sha256",
			[]byte(fmt.Sprintf("%x  System.img\n", sha256.Sum256([]byte("other bytes"))))})...),
	})
	cases := []struct {
		name, path, kind, msg string
	}{
		{"checksum", "/mismatch.ova", agentapi.ImportKindOVA, "the SHA256 checksum of disk1.vmdk does not match manifest a.mf"},
		{"unlisted", "/unlisted.ova", agentapi.ImportKindOVA, "manifest a.mf does not list disk1.vmdk"},
		{"backing file", "/backing.ova", agentapi.ImportKindOVA, "disk vmdisk1 (disk1.vmdk): it names a backing file"},
		{"DTD", "/dtd.ova", agentapi.ImportKindOVA, "holds a <!DOCTYPE ...> declaration; DTDs and entities are not accepted"},
		{"no OVF", "/noovf.ova", agentapi.ImportKindOVA, "holds no OVF descriptor"},
		{"not a tar", "/notatar.ova", agentapi.ImportKindOVA,
			"is not a tar archive, or is truncated (it ends inside an entry or a header); accepted is an OVA, an uncompressed tar archive of one OVF descriptor, an optional manifest and its disk images"},
		{"href outside", "/escape.ova", agentapi.ImportKindOVA, `has href "../../../etc/passwd"; only the name of a file of the archive is accepted`},
		{"template manifest", "/tpl.tar", agentapi.ImportKindTemplate, "the SHA256 checksum of System.img does not match manifest t.mf"},
		{"template sha256sum", "/tplsum.tar", agentapi.ImportKindTemplate, "the SHA256 checksum of System.img does not match manifest SHA256SUMS.sha256"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := c.ImportVirtualDisk(t.Context(), url+tc.path, "t1", "r1", web(tc.kind))
			wantCallFault(t, err, agentapi.FaultInvalidArgument, tc.msg)
			wantNames(t, filepath.Join(fsLoc, "Templates"))
		})
	}
}
