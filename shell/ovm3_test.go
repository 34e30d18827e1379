package shell

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// vmConfig is the vm.cfg of VM name as the agent holds it.
func (e *env) vmConfig(name string) map[string]any {
	e.t.Helper()
	repoID := prop(e.mustRun("show Repository name=repo1"), "Id")
	cfg, err := e.agentClient(0).GetVMConfig(context.Background(), repoID, prop(e.mustRun("show Vm name="+name), "Id"))
	if err != nil {
		e.t.Fatal(err)
	}
	return cfg
}

// domainMemory is the memory the agent's domain of VM name has now.
func (e *env) domainMemory(name string) int64 {
	e.t.Helper()
	id := prop(e.mustRun("show Vm name="+name), "Id")
	domains, err := e.agentClient(0).ListVMs(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	for _, d := range domains {
		if d.Name == id {
			return d.MemoryMiB
		}
	}
	e.t.Fatalf("no domain of Vm %s", name)
	return 0
}

// create Vm takes Oracle VM 3's settings at once, with edit Vm's checks:
// osType and bootOrder are written into vm.cfg, memoryLimit and
// cpuCountLimit are its maxmem and maxvcpus, up to which a running VM
// grows live.
func TestOVM3CreateVmSettings(t *testing.T) {
	e := newEnv(t, 1, 8192)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))

	e.mustRun("create Vm name=ol7 osType='Oracle Linux 7' repository=repo1 memory=1024 memoryLimit=2048 cpuCount=1 cpuCountLimit=2 " +
		"bootOrder='CDROM,DISK' domainType=XEN_HVM_PV_DRIVERS on ServerPool name=pool1")
	out := e.mustRun("show Vm name=ol7")
	for key, want := range map[string]string{"Operating System": "Oracle Linux 7", "Boot Order": "CDROM,DISK", "Memory (MB)": "1024",
		"Max. Memory (MB)": "2048", "Processors": "1", "Max. Processors": "2", "Domain Type": "XEN_HVM_PV_DRIVERS"} {
		if got := prop(out, key); got != want {
			t.Errorf("show Vm: %s = %q, want %q", key, got, want)
		}
	}
	cfg := e.vmConfig("ol7")
	for key, want := range map[string]string{"OVM_os_type": "Oracle Linux 7", "boot": "dc", "memory": "1024", "maxmem": "2048",
		"vcpus": "1", "maxvcpus": "2", "OVM_domain_type": "xen_hvm_pv_drivers"} {
		if got := fmt.Sprint(cfg[key]); got != want {
			t.Errorf("vm.cfg: %s = %q, want %q", key, got, want)
		}
	}
	// Without them, what create Vm has always written.
	e.mustRun("create Vm name=plain repository=repo1 memory=512")
	if out := e.mustRun("show Vm name=plain"); prop(out, "Max. Memory (MB)") != "512" || prop(out, "Boot Order") != "DISK" {
		t.Errorf("show Vm of a VM made without limits:\n%s", out)
	}
	if cfg := e.vmConfig("plain"); fmt.Sprint(cfg["maxmem"]) != "512" || fmt.Sprint(cfg["boot"]) != "c" {
		t.Errorf("vm.cfg of a VM made without limits: maxmem %v, boot %v", cfg["maxmem"], cfg["boot"])
	}

	// Limits below what they limit, and a boot order not in the list, are
	// refused at create as at edit, and leave no VM.
	e.failCode("create Vm name=bad repository=repo1 memory=2048 memoryLimit=1024", "XM_0400E", "memory 2048 MiB is above memoryLimit 1024 MiB")
	e.failCode("create Vm name=bad repository=repo1 cpuCount=4 cpuCountLimit=2", "XM_0400E", "cpuCount 4 is above cpuCountLimit 2")
	e.failCode("create Vm name=bad repository=repo1 bootOrder=FLOPPY", "XM_0006E", "bootOrder='FLOPPY' is not valid")
	e.failCode("create Vm name=bad repository=repo1 memoryLimit=0", "XM_0006E", "memoryLimit='0' is not valid")
	if out := e.mustRun("list Vm"); strings.Contains(out, "name:bad") {
		t.Fatalf("a refused create left a VM:\n%s", out)
	}

	// A running VM's memory grows live up to its memoryLimit, no further;
	// the limit changes only while it is stopped.
	e.mustRun("start Vm name=ol7")
	e.mustRun("edit Vm name=ol7 memory=2048")
	if got := e.domainMemory("ol7"); got != 2048 {
		t.Fatalf("the domain has %d MiB after a live increase to 2048", got)
	}
	e.failCode("edit Vm name=ol7 memory=3072", "XM_0412E", "Running with maxmem 2048 MiB; more memory needs Stopped")
	e.failCode("edit Vm name=ol7 memoryLimit=4096", "XM_0412E", "changing memoryLimit (maxmem) needs Stopped")
	e.mustRun("stop Vm name=ol7")
	e.failCode("edit Vm name=ol7 memory=3072", "XM_0400E", "memory 3072 MiB is above memoryLimit 2048 MiB")
	e.mustRun("edit Vm name=ol7 memory=3072 memoryLimit=4096")
	if cfg := e.vmConfig("ol7"); fmt.Sprint(cfg["memory"]) != "3072" || fmt.Sprint(cfg["maxmem"]) != "4096" {
		t.Fatalf("vm.cfg after edit: memory %v, maxmem %v", cfg["memory"], cfg["maxmem"])
	}
}

// create VmDiskMapping and delete VmDiskMapping (Oracle VM 3's forms) put
// disks and ISOs in VMs and take them out under the name given; a
// shareable disk is in several VMs at once (written "w!" in vm.cfg), one
// that is not in one.
func TestOVM3DiskMappingsAndShareableDisks(t *testing.T) {
	mux := http.NewServeMux()
	iso := isoImage()
	mux.HandleFunc("/install.iso", func(w http.ResponseWriter, r *http.Request) { w.Write(iso) })
	web := httptest.NewServer(mux)
	t.Cleanup(web.Close)

	e := newEnv(t, 1, 8192)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	e.mustRun("edit Manager importAllowedNetworks=127.0.0.0/8")
	e.mustRun("importIso Repository name=repo1 url=" + web.URL + "/install.iso name=install")
	e.mustRun("create VirtualDisk name=quorum size=1 sparse=yes shareable=YES on Repository name=repo1")
	e.mustRun("create VirtualDisk name=own size=1 sparse=YES shareable=no on Repository name=repo1")
	if out := e.mustRun("show VirtualDisk name=quorum"); prop(out, "Shareable") != "Yes" || prop(out, "Sparse") != "Yes" {
		t.Fatalf("show VirtualDisk of a shareable disk:\n%s", out)
	}
	if out := e.mustRun("show VirtualDisk name=own"); prop(out, "Shareable") != "No" {
		t.Fatalf("show VirtualDisk of a disk that is not shareable:\n%s", out)
	}
	e.mustRun("create Vm name=a repository=repo1 memory=512; create Vm name=b repository=repo1 memory=512")

	e.mustRun("create VmDiskMapping slot=0 virtualDisk=own name=a-boot on Vm name=a")
	e.failCode("create VmDiskMapping slot=0 virtualDisk=own name=b-boot on Vm name=b", "XM_0409E",
		"VirtualDisk own is in use by Vm a (slot 0)", "only a shareable disk")
	e.failCode("create VmDiskMapping slot=3 virtualDisk=own on Vm name=a", "XM_0409E", "in use by Vm a (slot 0); a disk is in a VM once")
	e.mustRun("create VmDiskMapping slot=1 virtualDisk=quorum name=a-quorum on Vm name=a")
	e.mustRun("create VmDiskMapping slot=1 virtualDisk=quorum name=b-quorum on Vm name=b")
	e.failCode("create VmDiskMapping slot=2 virtualDisk=quorum on Vm name=b", "XM_0409E", "a disk is in a VM once")

	aDisks, bDisks := fmt.Sprint(e.vmConfig("a")["disk"]), fmt.Sprint(e.vmConfig("b")["disk"])
	if !strings.Contains(aDisks, ",xvda,w ") || !strings.Contains(aDisks, ",xvdb,w!") || !strings.Contains(bDisks, ",xvdb,w!") {
		t.Fatalf("vm.cfg disks: a %s, b %s", aDisks, bDisks)
	}
	out := e.mustRun("show VirtualDisk name=quorum")
	if prop(out, "Vms") != "a, b" || !strings.HasSuffix(prop(out, "Vm"), "[a]") || prop(out, "Slot") != "1" {
		t.Fatalf("show VirtualDisk of a disk in two VMs:\n%s", out)
	}
	out = e.mustRun("list VmDiskMapping")
	for _, name := range []string{"name:a-boot", "name:a-quorum", "name:b-quorum"} {
		if !strings.Contains(out, name) {
			t.Fatalf("list VmDiskMapping lacks %s:\n%s", name, out)
		}
	}
	out = e.mustRun("show VmDiskMapping name=b-quorum")
	if !strings.HasSuffix(prop(out, "Vm"), "[b]") || !strings.HasSuffix(prop(out, "Virtual Disk"), "[quorum]") || prop(out, "Slot") != "1" || prop(out, "Virtual Cdrom") != "" {
		t.Fatalf("show VmDiskMapping:\n%s", out)
	}

	// Both run with the shared disk; it cannot be deleted under them.
	e.mustRun("start Vm name=a; start Vm name=b")
	e.failCode("delete VirtualDisk name=quorum", "XM_0409E", "in use by Vm a (slot 1), Vm b (slot 1); remove it from those VMs first")
	e.failCode("delete VmDiskMapping name=b-quorum", "XM_0412E", "removing a disk needs Stopped")
	e.failCode("create VmDiskMapping virtualCd=install on Vm name=a", "XM_0412E", "adding a VirtualCdrom needs Stopped")
	e.mustRun("stop Vm name=a; stop Vm name=b")

	e.mustRun("delete VmDiskMapping name=b-quorum")
	if disks := fmt.Sprint(e.vmConfig("b")["disk"]); strings.Contains(disks, "xvdb") {
		t.Fatalf("vm.cfg of b after delete VmDiskMapping: %s", disks)
	}
	if out := e.mustRun("show VirtualDisk name=quorum"); prop(out, "Vms") != "a" {
		t.Fatalf("show VirtualDisk after one mapping went:\n%s", out)
	}

	// An ISO, by Oracle VM 3's virtualCd=.
	e.mustRun("create VmDiskMapping slot=2 virtualCd=install name=a-cd on Vm name=a")
	if disks := fmt.Sprint(e.vmConfig("a")["disk"]); !strings.Contains(disks, ",xvdc:cdrom,r") {
		t.Fatalf("vm.cfg of a after mapping an ISO: %s", disks)
	}
	if out := e.mustRun("show VmDiskMapping name=a-cd"); !strings.HasSuffix(prop(out, "Virtual Cdrom"), "[install]") || prop(out, "Virtual Disk") != "" || prop(out, "Slot") != "2" {
		t.Fatalf("show VmDiskMapping of an ISO:\n%s", out)
	}
	e.failCode("create VmDiskMapping slot=3 virtualCd=install on Vm name=a", "XM_0409E", "VirtualCdrom install is in Vm a already (slot 2)")
	e.mustRun("delete VmDiskMapping name=a-cd")
	if disks := fmt.Sprint(e.vmConfig("a")["disk"]); strings.Contains(disks, "cdrom") {
		t.Fatalf("vm.cfg of a after delete VmDiskMapping of the ISO: %s", disks)
	}

	// A mapping made by add has no name of its own: it goes by
	// <vm>/<device>, and delete VmDiskMapping finds it so.
	e.mustRun("add VirtualCdrom name=install to Vm name=b")
	if out := e.mustRun("list VmDiskMapping vm=b"); !strings.Contains(out, "name:b/install") {
		t.Fatalf("list VmDiskMapping of an unnamed mapping:\n%s", out)
	}
	e.mustRun("delete VmDiskMapping name=b/install")

	// Bad input fails that command alone, saying what was wrong.
	e.failCode("create VmDiskMapping slot=0 on Vm name=b", "XM_0005E", "needs one of 'virtualDisk=' and 'virtualCd='")
	e.failCode("create VmDiskMapping virtualDisk=own virtualCd=install on Vm name=b", "XM_0005E", "needs one of")
	e.failCode("create VmDiskMapping virtualDisk=nosuch on Vm name=b", "XM_0404E", `VirtualDisk "nosuch" not found`)
	e.failCode("create VmDiskMapping virtualCd=quorum on Vm name=b", "XM_0404E", `VirtualCdrom "quorum" not found`)
	e.failCode("create VmDiskMapping virtualDisk=quorum name=bad/name on Vm name=b", "XM_0400E", "invalid VmDiskMapping name")
	e.failCode("create VmDiskMapping slot=0 virtualCd=install on Vm name=a", "XM_0409E", "slot 0 of Vm a holds a disk")
	e.failCode("create VmDiskMapping virtualDisk=quorum on Vm name=nosuch", "XM_0404E", `Vm "nosuch" not found`)
	e.failCode("delete VmDiskMapping name=nosuch", "XM_0404E", `VmDiskMapping "nosuch" not found`)
	e.mustRun("delete VmDiskMapping name=a-quorum; delete VmDiskMapping name=a-boot; delete VirtualDisk name=quorum; delete VirtualDisk name=own")
	if out := e.mustRun("list VmDiskMapping"); strings.Contains(out, "  id:") {
		t.Fatalf("mappings remain:\n%s", out)
	}
}
