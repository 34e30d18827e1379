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

// repoFiles makes files of repository r1 in a directory and returns it
// with a path resolver over them: the XML builder's unit tests are about
// the XML, not about the resolution (host.ResolvePath has its own tests).
func repoFiles(t *testing.T, files ...string) (string, func(string) (string, error)) {
	root := t.TempDir()
	for _, f := range files {
		p := filepath.Join(root, strings.TrimPrefix(f, "/OVS/Repositories/r1"))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root, func(p string) (string, error) {
		for _, f := range files {
			if p == f {
				return root + strings.TrimPrefix(p, "/OVS/Repositories/r1"), nil
			}
		}
		if strings.HasPrefix(p, "/OVS/Repositories/r1/") {
			return "", agentapi.Errorf(agentapi.FaultNotFound, "%s does not exist", p)
		}
		return "", agentapi.Errorf(agentapi.FaultInvalidArgument, "%s is not inside a repository", p)
	}
}

const (
	kernelPath = "/OVS/Repositories/r1/Kernels/vmlinuz"
	initrdPath = "/OVS/Repositories/r1/Kernels/initrd.gz"
	diskPath   = "/OVS/Repositories/r1/VirtualDisks/d1.img"
	isoPath    = "/OVS/Repositories/r1/ISOs/boot.iso"
)

func baseParams(extra agentapi.VMParams) agentapi.VMParams {
	p := agentapi.VMParams{"name": "vm1", "uuid": "0004fb0000060000249e345354ce9a7c", "memory": int64(128), "vcpus": int64(1)}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

func TestBuildDomain(t *testing.T) {
	root, resolve := repoFiles(t, kernelPath, initrdPath, diskPath, isoPath)
	tests := []struct {
		name   string
		kind   string
		params agentapi.VMParams
		check  func(t *testing.T, d *libvirtxml.Domain)
	}{
		{"QEMU direct kernel boot with a serial console and pvpanic", hypervisor.TypeQEMU,
			baseParams(agentapi.VMParams{"kernel": kernelPath, "ramdisk": initrdPath, "extra": "console=ttyS0 quiet", "maxmem": int64(256), "maxvcpus": int64(2), "on_crash": "preserve"}),
			func(t *testing.T, d *libvirtxml.Domain) {
				want(t, "type", d.Type, "qemu")
				want(t, "name", d.Name, "vm1")
				want(t, "uuid", d.UUID, "0004fb00-0006-0000-249e-345354ce9a7c")
				want(t, "kernel", d.OS.Kernel, root+"/Kernels/vmlinuz")
				want(t, "initrd", d.OS.Initrd, root+"/Kernels/initrd.gz")
				want(t, "cmdline", d.OS.Cmdline, "console=ttyS0 quiet")
				want(t, "machine", d.OS.Type.Machine, "pc")
				want(t, "memory", d.Memory.Value, uint(256))
				want(t, "current memory", d.CurrentMemory.Value, uint(128))
				want(t, "vcpus", d.VCPU.Value, uint(2))
				want(t, "current vcpus", d.VCPU.Current, uint(1))
				want(t, "on_crash", d.OnCrash, "preserve")
				want(t, "panic devices", len(d.Devices.Panics), 1)
				want(t, "serial log", d.Devices.Serials[0].Log.File, "/var/log/console.log")
			}},
		{"QEMU disks, a CD-ROM, a VNIC and a boot order", hypervisor.TypeQEMU,
			baseParams(agentapi.VMParams{"disk": []any{"file:" + diskPath + ",xvda,w", "file:" + isoPath + ",xvdc:cdrom,r"},
				"vif": []any{"mac=00:21:F6:12:34:56,bridge=br0"}, "boot": "dc", "cpus": "0-1"}),
			func(t *testing.T, d *libvirtxml.Domain) {
				want(t, "disks", len(d.Devices.Disks), 2)
				want(t, "disk target", d.Devices.Disks[0].Target.Dev, "vda")
				want(t, "disk file", d.Devices.Disks[0].Source.File.File, root+"/VirtualDisks/d1.img")
				want(t, "cdrom device", d.Devices.Disks[1].Device, "cdrom")
				want(t, "cdrom target", d.Devices.Disks[1].Target.Dev, "hdc")
				want(t, "cdrom read-only", d.Devices.Disks[1].ReadOnly != nil, true)
				want(t, "mac", d.Devices.Interfaces[0].MAC.Address, "00:21:f6:12:34:56")
				want(t, "bridge", d.Devices.Interfaces[0].Source.Bridge.Bridge, "br0")
				want(t, "boot order", len(d.OS.BootDevices), 2)
				want(t, "first boot device", d.OS.BootDevices[0].Dev, "cdrom")
				want(t, "cpuset", d.VCPU.CPUSet, "0-1")
			}},
		{"a shareable disk (w!) is shareable, the others are not", hypervisor.TypeQEMU,
			baseParams(agentapi.VMParams{"disk": []any{"file:" + diskPath + ",xvda,w", "file:" + diskPath + ",xvdb,w!"}}),
			func(t *testing.T, d *libvirtxml.Domain) {
				want(t, "disks", len(d.Devices.Disks), 2)
				want(t, "first disk shareable", d.Devices.Disks[0].Shareable != nil, false)
				want(t, "second disk shareable", d.Devices.Disks[1].Shareable != nil, true)
				want(t, "second disk read-only", d.Devices.Disks[1].ReadOnly != nil, false)
			}},
		{"Xen PV with a kernel", hypervisor.TypeXen,
			baseParams(agentapi.VMParams{"kernel": kernelPath, "disk": []any{"file:" + diskPath + ",xvda,w"}, "vif": []any{"mac=00:21:f6:00:00:01"}}),
			func(t *testing.T, d *libvirtxml.Domain) {
				want(t, "type", d.Type, "xen")
				want(t, "os type", d.OS.Type.Type, "xen")
				want(t, "machine", d.OS.Type.Machine, "xenpv")
				want(t, "disk bus", d.Devices.Disks[0].Target.Bus, "xen")
				want(t, "disk target", d.Devices.Disks[0].Target.Dev, "xvda")
				want(t, "default bridge", d.Devices.Interfaces[0].Source.Bridge.Bridge, "xenbr0")
				want(t, "console", d.Devices.Consoles[0].Target.Type, "xen")
				want(t, "no pvpanic on Xen", len(d.Devices.Panics), 0)
			}},
		{"Xen PV without a kernel boots through pygrub", hypervisor.TypeXen, baseParams(nil),
			func(t *testing.T, d *libvirtxml.Domain) { want(t, "bootloader", d.Bootloader, "pygrub") }},
		{"Xen HVM", hypervisor.TypeXen, baseParams(agentapi.VMParams{"OVM_domain_type": "xen_hvm", "boot": "c"}),
			func(t *testing.T, d *libvirtxml.Domain) {
				want(t, "os type", d.OS.Type.Type, "hvm")
				want(t, "machine", d.OS.Type.Machine, "xenfv")
			}},
		{"the test driver", hypervisor.TypeTest, baseParams(nil),
			func(t *testing.T, d *libvirtxml.Domain) { want(t, "type", d.Type, "test") }},
		{"no uuid in vm.cfg: one derived from repository and id", hypervisor.TypeQEMU, agentapi.VMParams{"memory": int64(64), "vcpus": int64(1)},
			func(t *testing.T, d *libvirtxml.Domain) {
				if len(d.UUID) != 36 {
					t.Errorf("uuid %q is not a uuid", d.UUID)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := buildDomain(buildInput{kind: tc.kind, repoID: "r1", vmID: "vm1", params: tc.params, resolve: resolve, consoleLog: "/var/log/console.log"})
			if err != nil {
				t.Fatal(err)
			}
			x, err := d.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			meta, ok := metaOf(x)
			if !ok || meta.Repo != "r1" || meta.VM != "vm1" {
				t.Errorf("metadata read back as %+v, %v", meta, ok)
			}
			tc.check(t, d)
		})
	}
}

func TestBuildDomainRefusesBadVMCfg(t *testing.T) {
	_, resolve := repoFiles(t, kernelPath, diskPath)
	tests := []struct {
		name   string
		params agentapi.VMParams
		fault  agentapi.FaultCode
		says   string
	}{
		{"a phy: disk", agentapi.VMParams{"disk": []any{"phy:/dev/sda,xvda,w"}}, agentapi.FaultInvalidArgument, "not a file: image"},
		{"a disk without mode", agentapi.VMParams{"disk": []any{"file:" + diskPath + ",xvda"}}, agentapi.FaultInvalidArgument, "file:<path>,<device>"},
		{"a bad device", agentapi.VMParams{"disk": []any{"file:" + diskPath + ",sda1,w"}}, agentapi.FaultInvalidArgument, "device"},
		{"a bad mode", agentapi.VMParams{"disk": []any{"file:" + diskPath + ",xvda,x"}}, agentapi.FaultInvalidArgument, "accepted: r, w, w!"},
		{"a shared read-only mode", agentapi.VMParams{"disk": []any{"file:" + diskPath + ",xvda,r!"}}, agentapi.FaultInvalidArgument, "mode"},
		{"a disk outside repositories", agentapi.VMParams{"disk": []any{"file:/etc/shadow,xvda,w"}}, agentapi.FaultInvalidArgument, "not inside a repository"},
		{"a missing disk", agentapi.VMParams{"disk": []any{"file:/OVS/Repositories/r1/VirtualDisks/none.img,xvda,w"}}, agentapi.FaultNotFound, "does not exist"},
		{"a missing kernel", agentapi.VMParams{"kernel": "/OVS/Repositories/r1/Kernels/none"}, agentapi.FaultNotFound, "kernel"},
		{"a ramdisk without kernel", agentapi.VMParams{"ramdisk": kernelPath}, agentapi.FaultInvalidArgument, "without a kernel"},
		{"a multi-line extra", agentapi.VMParams{"kernel": kernelPath, "extra": "a\nb"}, agentapi.FaultInvalidArgument, "one line"},
		{"a bad vif key", agentapi.VMParams{"vif": []any{"ip=1.2.3.4"}}, agentapi.FaultInvalidArgument, "accepted: mac, bridge"},
		{"a bad mac", agentapi.VMParams{"vif": []any{"mac=00:21:f6"}}, agentapi.FaultInvalidArgument, "mac"},
		{"a bad bridge", agentapi.VMParams{"vif": []any{"bridge=a b"}}, agentapi.FaultInvalidArgument, "bridge"},
		{"a bad cpu list", agentapi.VMParams{"cpus": "2-1"}, agentapi.FaultInvalidArgument, "CPU list"},
		{"a bad on_crash", agentapi.VMParams{"on_crash": "explode"}, agentapi.FaultInvalidArgument, "on_crash"},
		{"a bad boot letter", agentapi.VMParams{"boot": "cz"}, agentapi.FaultInvalidArgument, "letter"},
		{"a bad uuid", agentapi.VMParams{"uuid": "xyz"}, agentapi.FaultInvalidArgument, "uuid"},
		{"three CD-ROMs", agentapi.VMParams{"disk": []any{"file:" + diskPath + ",hdc:cdrom,r", "file:" + diskPath + ",hdd:cdrom,r", "file:" + diskPath + ",hde:cdrom,r"}}, agentapi.FaultInvalidArgument, "CD-ROMs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := buildDomain(buildInput{kind: hypervisor.TypeQEMU, repoID: "r1", vmID: "vm1", params: baseParams(tc.params), resolve: resolve})
			f, ok := agentapi.AsFault(err)
			if !ok || f.Code != tc.fault || !strings.Contains(f.Message, tc.says) {
				t.Fatalf("got %v, want fault %d saying %q", err, tc.fault, tc.says)
			}
		})
	}
}

func TestParseDest(t *testing.T) {
	tests := []struct {
		dest string
		ok   bool
	}{
		{"libvirt:qemu;qemu+tcp://10.0.0.2/system;tcp://10.0.0.2", true},
		{"libvirt:qemu;qemu+tls://[fd00::2]/system;", true},
		{"libvirt:xen;xen+ssh://root@xen2/system;tcp://xen2:49152", true},
		{"10.0.0.2:4000/token/pin", false},                                // a simulated host's
		{"libvirt:qemu;qemu:///system;tcp://10.0.0.2", false},             // no host
		{"libvirt:qemu;qemu+tcp://10.0.0.2/system;udp://10.0.0.2", false}, // not tcp
		{"libvirt:qemu;qemu+tcp://10.0.0.2/system", false},                // two parts
		{"libvirt:qemu;qemu+tcp://10.0.0.2/system;tcp://a b", false},      // a blank
		{"libvirt:qemu;http://10.0.0.2/;tcp://10.0.0.2", false},           // not libvirt
		{"libvirt:qemu;" + strings.Repeat("a", 2000) + ";", false},
	}
	for _, tc := range tests {
		m, err := parseDest(tc.dest)
		if (err == nil) != tc.ok {
			t.Errorf("parseDest(%q) = %v, want ok %v", trim(tc.dest), err, tc.ok)
			continue
		}
		if tc.ok && m.String() != tc.dest {
			t.Errorf("parseDest(%q) does not round-trip: %q", tc.dest, m.String())
		}
	}
}

func TestKindOf(t *testing.T) {
	for uri, kind := range map[string]string{
		"xen:///system": hypervisor.TypeXen, "qemu:///system": hypervisor.TypeQEMU, "qemu+tls://h/system": hypervisor.TypeQEMU,
		"test:///default": hypervisor.TypeTest, "lxc:///": "", "": "", "nonsense": "",
	} {
		got, err := kindOf(uri)
		if got != kind || (err == nil) != (kind != "") {
			t.Errorf("kindOf(%q) = %q, %v; want %q", uri, got, err, kind)
		}
	}
}

func want[T comparable](t *testing.T, what string, got, wanted T) {
	t.Helper()
	if got != wanted {
		t.Errorf("%s = %v, want %v", what, got, wanted)
	}
}
