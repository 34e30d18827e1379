package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"xenmanager/backend/agent/libvirt/guestimage"
)

// testBridge makes an empty Linux bridge for the test's VNICs (libvirt
// puts each guest's tap on it; nothing else is), removed after the test.
func testBridge(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("xmq%d", os.Getpid()%1000000)
	if out, err := exec.Command("ip", "link", "add", name, "type", "bridge").CombinedOutput(); err != nil {
		t.Fatalf("ip link add %s type bridge: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "link", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip link del %s: %v: %s", name, err, out)
		}
	})
	return name
}

// virsh runs virsh on the system daemon and returns its output.
func virsh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("virsh", append([]string{"-c", "qemu:///system"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("virsh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// dashedUUID is a 32-hex-digit id in libvirt's form.
func dashedUUID(id string) string {
	return id[:8] + "-" + id[8:12] + "-" + id[12:16] + "-" + id[16:20] + "-" + id[20:]
}

var macRx = regexp.MustCompile(`(?i)\b[0-9a-f]{2}(:[0-9a-f]{2}){5}\b`)

// TestQEMUCloneTemplateBootsTheClone makes a template of a real guest on
// the libvirt driver (a VM that boots the guest image directly, with a
// disk holding data and a VNIC on a bridge), clones the template into a
// VM and starts it: the clone boots under QEMU (its console says the
// guest is up, libvirt runs the domain), on a copy of the disk (not the
// template's file, holding the same data), with a uuid and a MAC address
// of its own.
func TestQEMUCloneTemplateBootsTheClone(t *testing.T) {
	img := needQEMU(t)
	bridge := testBridge(t)
	f := newQEMUFleet(t, img, map[string][]string{"qemu1": nil})
	f.run(t, fmt.Sprintf("create Network name=qnet bridge=%s on ServerPool name=qpool", bridge))
	f.createGuest(t, "src", "")
	f.run(t, "create VirtualDisk name=src-root size=1 sparse=Yes on Repository name=qrepo")
	srcDisk := filepath.Join(f.repo, "VirtualDisks", field(f.run(t, "show VirtualDisk name=src-root"), "Id")+".img")
	marker := []byte("xenmanager clone test: this block travels with the template\n") // at 8 MiB of the 1 GiB disk
	data, err := os.OpenFile(srcDisk, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := data.WriteAt(bytes.Repeat(marker, 1000), 8<<20); err != nil {
		t.Fatal(err)
	}
	if err := data.Close(); err != nil {
		t.Fatal(err)
	}
	f.run(t, "add VirtualDisk name=src-root to Vm name=src")
	f.run(t, "create Vnic name=src-eth0 network=qnet on Vm name=src")
	srcMAC := field(f.run(t, "show Vnic name=src-eth0"), "Mac Address")

	f.run(t, "clone Vm name=src destType=VmTemplate destName=tpl")
	tplID := field(f.run(t, "show VmTemplate name=tpl"), "Id")
	tplCfg, err := os.ReadFile(filepath.Join(f.repo, "Templates", tplID, "vm.cfg"))
	if err != nil {
		t.Fatalf("the template's vm.cfg: %v", err)
	}
	tplMACs := macRx.FindAllString(string(tplCfg), -1)
	if len(tplMACs) != 1 || !strings.Contains(string(tplCfg), "kernel") {
		t.Fatalf("the template's vm.cfg has no direct boot or not one VNIC:\n%s", tplCfg)
	}

	f.run(t, "clone VmTemplate name=tpl destType=Vm destName=c1")
	cloneID := field(f.run(t, "show Vm name=c1"), "Id")
	// A guest outlives its agent: one the test started goes when the test
	// ends, however it ends (a domain that is gone already is no error).
	t.Cleanup(func() { exec.Command("virsh", "-c", "qemu:///system", "destroy", cloneID).Run() })
	f.run(t, "start Vm name=c1")
	cloneDiskName := "c1-xvda"
	cloneDisk := filepath.Join(f.repo, "VirtualDisks", field(f.run(t, "show VirtualDisk name="+cloneDiskName), "Id")+".img")

	// The clone's guest boots: its console log (the serial console libvirt
	// keeps in the VM's directory) says it is up and counts heartbeats.
	consoleLog := filepath.Join(f.repo, "VirtualMachines", cloneID, "console.log")
	waitUntil(t, "the clone's guest to boot and beat", func() bool {
		b, _ := os.ReadFile(consoleLog)
		return strings.Contains(string(b), guestimage.Ready) && lastHeartbeat(string(b)) >= 2
	})
	if st := strings.TrimSpace(virsh(t, "domstate", cloneID)); st != "running" {
		t.Fatalf("libvirt says the clone's domain is %q", st)
	}
	f.waitVMStatus(t, "c1", "Running")

	// Its identity is its own: the domain's uuid is the clone's id, not
	// the source's; its VNIC has a new MAC address, on the bridge.
	if uuid := strings.TrimSpace(virsh(t, "domuuid", cloneID)); uuid != dashedUUID(cloneID) || cloneID == field(f.run(t, "show Vm name=src"), "Id") {
		t.Errorf("the clone's domain has uuid %s; want its own id %s", uuid, cloneID)
	}
	ifaces := virsh(t, "domiflist", cloneID)
	cloneMACs := macRx.FindAllString(ifaces, -1)
	if len(cloneMACs) != 1 || !strings.Contains(ifaces, bridge) {
		t.Fatalf("the clone's interfaces (want one on %s):\n%s", bridge, ifaces)
	}
	cloneMAC := strings.ToLower(cloneMACs[0])
	if cloneMAC == strings.ToLower(srcMAC) || cloneMAC == strings.ToLower(tplMACs[0]) {
		t.Errorf("the clone's MAC address %s is the source's (%s) or the template's (%s)", cloneMAC, srcMAC, tplMACs[0])
	}
	if vnicMAC := field(f.run(t, "show Vnic name=c1-eth0"), "Mac Address"); strings.ToLower(vnicMAC) != cloneMAC {
		t.Errorf("the manager records MAC %s for the clone's VNIC; QEMU has %s", vnicMAC, cloneMAC)
	}

	// Its disk is a copy: the file QEMU opened is the clone's, not the
	// template's, and holds the source's data.
	blk := virsh(t, "domblklist", cloneID)
	if !strings.Contains(blk, cloneDisk) {
		t.Fatalf("the clone's domain does not use its copy %s:\n%s", cloneDisk, blk)
	}
	want := bytes.Repeat(marker, 1000)
	copied := make([]byte, len(want))
	cf, err := os.Open(cloneDisk)
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()
	if _, err := cf.ReadAt(copied, 8<<20); err != nil || !bytes.Equal(copied, want) {
		t.Errorf("the clone's disk does not hold the source's data at 8 MiB (%v)", err)
	}

	f.run(t, "kill Vm name=c1")
	f.waitVMStatus(t, "c1", "Stopped")
}
