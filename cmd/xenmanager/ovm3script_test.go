package main

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// ovm3Script is a provisioning script in the manner of those Oracle VM 3
// users wrote and published, piped into ssh: a VM with its limits and boot
// order at create, a disk and an ISO mapped by create VmDiskMapping, a VNIC,
// the VM saved as a template with a clone customizer and the template
// cloned, then the CD taken out and the VNIC removed. One line uses an attribute of
// Oracle VM's that this manager does not know (keymapName): that command
// fails, saying so, and the others run. %ISO% is the ISO's URL.
const ovm3Script = `create Network name=ovm3-net bridge=xenbr0 on ServerPool name=demo-pool
edit Manager importAllowedNetworks=127.0.0.0/8
importIso Repository name=demo-repo url=%ISO% name=OL7.iso
create Vm name=ol7 osType='Oracle Linux 7' repository=demo-repo memory=2048 memoryLimit=2048 cpuCount=2 bootOrder='CDROM,DISK' domainType=XEN_HVM_PV_DRIVERS on ServerPool name=demo-pool
create VirtualDisk name=ol7-root size=30 sparse=yes shareable=No on Repository name=demo-repo
create VirtualDisk name=ol7-quorum size=1 sparse=Yes shareable=YES on Repository name=demo-repo
create VmDiskMapping slot=0 virtualDisk=ol7-root name=ol7-root-map on Vm name=ol7
create VmDiskMapping slot=1 virtualCd=OL7.iso name=ol7-cd on Vm name=ol7
create VmDiskMapping slot=2 virtualDisk=ol7-quorum name=ol7-quorum-map on Vm name=ol7
create Vnic name=ol7-eth0 network=ovm3-net on Vm name=ol7
edit Vm name=ol7 keymapName=en-us
start Vm name=ol7
show Vm name=ol7
stop Vm name=ol7
create VmCloneCustomizer name=ol7-cust on Vm name=ol7
create VmCloneNetworkMapping name=ol7-net-map network=ovm3-net vnic=ol7-eth0 on VmCloneCustomizer name=ol7-cust
create VmCloneStorageMapping name=ol7-root-copy cloneType=SPARSE_COPY vmDiskMapping=ol7-root-map repository=demo-repo on VmCloneCustomizer name=ol7-cust
clone Vm name=ol7 destType=VmTemplate destName=ol7-tpl serverPool=demo-pool cloneCustomizer=ol7-cust targetRepository=demo-repo
create VmCloneCustomizer name=tpl-cust on Vm name=ol7-tpl
clone Vm name=ol7-tpl destType=Vm destName=ol7-copy serverPool=demo-pool targetRepository=demo-repo
delete VmCloneCustomizer name=ol7-cust
delete VmDiskMapping name=ol7-cd
delete Vnic name=ol7-eth0
show Vm name=ol7
list VmDiskMapping vm=ol7
show VirtualDisk name=ol7-quorum
list VmTemplate
list Vm
`

// A script written for Oracle VM 3 runs unchanged through the stock OpenSSH
// client against a manager and its agents: every command but the one with
// an unknown attribute succeeds, in order, and the VM ends as the script
// made it. The clone lines are Oracle VM 3's too: a customizer with a
// network and a storage mapping, the VM saved as a template with it, a
// customizer made on the template addressed as a Vm, and a clone of it.
func TestOpenSSHScriptWrittenForOVM3(t *testing.T) {
	needTools(t)
	iso := make([]byte, 32768, 40000)
	iso = append(iso, 1)
	iso = append(iso, "CD001"...)
	iso = append(iso, make([]byte, 40000-len(iso))...)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(iso) }))
	t.Cleanup(web.Close)
	m := startManager(t, filepath.Join(t.TempDir(), "data"), 1)

	script := strings.ReplaceAll(ovm3Script, "%ISO%", web.URL+"/OL7.iso")
	out, status := m.ssh(script, false)
	// The unknown attribute is a parse error: the batch ends with 2.
	if status != 2 {
		t.Fatalf("exit %d, want 2 (one line the language does not know)\n%s", status, out)
	}
	lines := strings.Split(strings.TrimSuffix(script, "\n"), "\n")
	var commands, statuses []string
	for _, l := range strings.Split(out, "\n") {
		if c, ok := strings.CutPrefix(l, "Command: "); ok {
			commands = append(commands, c)
		}
		if s, ok := strings.CutPrefix(l, "Status: "); ok {
			statuses = append(statuses, s)
		}
	}
	if len(commands) != len(lines) || len(statuses) != len(lines) {
		t.Fatalf("%d commands and %d statuses reported for %d lines\n%s", len(commands), len(statuses), len(lines), out)
	}
	for i, l := range lines {
		want := "Success"
		if strings.Contains(l, "keymapName") {
			want = "Failure"
		}
		if commands[i] != l || statuses[i] != want {
			t.Errorf("line %d %q: reported %q, %s; want %s", i+1, l, commands[i], statuses[i], want)
		}
	}
	if !strings.Contains(out, "Error Msg: XM_0004E: unknown attribute 'keymapName' for edit Vm; accepted: ") {
		t.Errorf("the unknown attribute's error does not say what it is and what is accepted\n%s", out)
	}

	shows := strings.Split(out, "Command: show Vm name=ol7")
	if len(shows) != 3 {
		t.Fatalf("two show Vm outputs expected\n%s", out)
	}
	running, final := shows[1], shows[2]
	for key, want := range map[string]string{"Status": "Running", "Operating System": "Oracle Linux 7", "Boot Order": "CDROM,DISK",
		"Memory (MB)": "2048", "Max. Memory (MB)": "2048", "Processors": "2", "Domain Type": "XEN_HVM_PV_DRIVERS",
		"Virtual Disks": "ol7-root, ol7-quorum", "Virtual Cdroms": "OL7.iso", "Vnics": "ol7-eth0"} {
		if got := showValue(running, key); got != want {
			t.Errorf("show Vm while running: %s = %q, want %q", key, got, want)
		}
	}
	for key, want := range map[string]string{"Status": "Stopped", "Virtual Disks": "ol7-root, ol7-quorum", "Virtual Cdroms": "", "Vnics": ""} {
		if got := showValue(final, key); got != want {
			t.Errorf("show Vm at the end: %s = %q, want %q", key, got, want)
		}
	}
	if !strings.Contains(final, "name:ol7-root-map") || !strings.Contains(final, "name:ol7-quorum-map") || strings.Contains(final, "name:ol7-cd") {
		t.Errorf("list VmDiskMapping at the end:\n%s", final)
	}
	if showValue(final, "Shareable") != "Yes" || showValue(final, "Vms") != "ol7" {
		t.Errorf("show VirtualDisk of the shareable disk:\n%s", final)
	}
	if !strings.Contains(final, "name:ol7-tpl") || !strings.Contains(final, "name:ol7-copy") {
		t.Errorf("list VmTemplate and list Vm at the end lack the template or its clone:\n%s", final)
	}
}

// showValue is the value of "  Key = value" in the first show output of
// out, "" when absent.
func showValue(out, key string) string {
	m := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(key) + ` = (.*)$`).FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return strings.TrimSpace(m[1])
}
