package libvirt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agentapi"
)

// libvirt itself parses the domains the driver builds: a VM with a disk,
// an ISO, a VNIC, a kernel, CPU pinning and lifecycle actions is started
// on the test driver, in the test driver's shape and in Xen's (which the
// test driver takes too: the nearest this machine gets to a Xen host), and
// the domain libvirt reports has each device where vm.cfg put it. (QEMU's
// shape is started by real QEMU in the QEMU tests.)
func TestLibvirtTakesTheDomainsTheDriverBuilds(t *testing.T) {
	for _, kind := range []string{hypervisor.TypeTest, hypervisor.TypeXen} {
		t.Run(kind, func(t *testing.T) {
			h := newTestHost(t)
			for _, f := range []string{"VirtualDisks/d1.img", "ISOs/boot.iso", "Kernels/vmlinuz"} {
				mustOK(t, os.MkdirAll(filepath.Dir(filepath.Join(h.repo, f)), 0o755))
				mustOK(t, os.WriteFile(filepath.Join(h.repo, f), []byte("x"), 0o644))
			}
			params := agentapi.VMParams{"name": "k1", "uuid": uuidOf("k1"), "memory": int64(128), "vcpus": int64(2),
				"cpus": "0-1", "on_crash": "preserve", "kernel": "/OVS/Repositories/r1/Kernels/vmlinuz", "extra": "console=hvc0",
				"disk": []any{"file:/OVS/Repositories/r1/VirtualDisks/d1.img,xvda,w", "file:/OVS/Repositories/r1/ISOs/boot.iso,xvdc:cdrom,r"},
				"vif":  []any{"mac=00:21:f6:00:00:0a,bridge=xenbr0"}}
			built, err := buildDomain(buildInput{kind: kind, repoID: "r1", vmID: "k1", params: params, resolve: h.ResolvePath})
			mustOK(t, err)
			x, err := built.Marshal()
			mustOK(t, err)
			l, err := h.drv.conn.current()
			mustOK(t, err)
			dom, err := l.DomainCreateXML(x, 0)
			mustOK(t, err)
			t.Cleanup(func() { l.DomainDestroy(dom) })
			x, err = l.DomainGetXMLDesc(dom, 0)
			mustOK(t, err)
			var got libvirtxml.Domain
			mustOK(t, got.Unmarshal(x))
			if len(got.Devices.Disks) != 2 || got.Devices.Disks[1].Device != "cdrom" || got.Devices.Disks[1].ReadOnly == nil ||
				!strings.HasSuffix(got.Devices.Disks[0].Source.File.File, "/VirtualDisks/d1.img") {
				t.Errorf("disks as libvirt has them:\n%s", x)
			}
			if len(got.Devices.Interfaces) != 1 || got.Devices.Interfaces[0].MAC.Address != "00:21:f6:00:00:0a" ||
				got.Devices.Interfaces[0].Source.Bridge == nil || got.Devices.Interfaces[0].Source.Bridge.Bridge != "xenbr0" {
				t.Errorf("VNIC as libvirt has it:\n%s", x)
			}
			if got.OS == nil || !strings.HasSuffix(got.OS.Kernel, "/Kernels/vmlinuz") || got.OS.Cmdline != "console=hvc0" ||
				got.VCPU.CPUSet != "0-1" || got.OnCrash != "preserve" {
				t.Errorf("boot, pinning or on_crash as libvirt has them:\n%s", x)
			}
			if meta, ok := metaOf(x); !ok || meta.VM != "k1" || meta.Repo != "r1" {
				t.Errorf("metadata as libvirt keeps it: %+v, %v\n%s", meta, ok, x)
			}
		})
	}
}
