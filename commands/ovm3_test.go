package commands

import (
	"maps"
	"strings"
	"testing"
)

// The forms that provisioning scripts written for Oracle VM 3 use parse as
// written: single-quoted values, Yes/No in any case, the limits and boot
// order at create, and create/delete VmDiskMapping beside add/remove.
// What the language does not know fails that command, saying what it
// accepts.
func TestParseOVM3ScriptForms(t *testing.T) {
	tests := []struct {
		in       string
		typ      string
		inst     string
		attrs    map[string]string
		target   string
		wantCode Code
		wantMsg  string
	}{
		{in: "create Vm name=N osType='Oracle Linux 7' repository=R memory=2048 memoryLimit=2048 cpuCount=2 bootOrder='CDROM,DISK' domainType=XEN_HVM_PV_DRIVERS on ServerPool name=P",
			typ: "Vm", target: "on ServerPool name=P",
			attrs: map[string]string{"name": "N", "osType": "Oracle Linux 7", "repository": "R", "memory": "2048", "memoryLimit": "2048",
				"cpuCount": "2", "bootOrder": "CDROM,DISK", "domainType": "XEN_HVM_PV_DRIVERS"}},
		{in: "create Vm name=N repository=R cpuCountLimit=4 bootorder=cdrom,disk ostype=\"Oracle Linux 6\"", typ: "Vm",
			attrs: map[string]string{"name": "N", "repository": "R", "cpuCountLimit": "4", "bootOrder": "CDROM,DISK", "osType": "Oracle Linux 6"}},
		{in: "create VirtualDisk name=D size=30 sparse=yes shareable=No on Repository name=R", typ: "VirtualDisk", target: "on Repository name=R",
			attrs: map[string]string{"name": "D", "size": "30", "sparse": "Yes", "shareable": "No"}},
		{in: "create VirtualDisk name=D size=30 sparse=NO shareable=yEs on Repository name=R", typ: "VirtualDisk", target: "on Repository name=R",
			attrs: map[string]string{"name": "D", "size": "30", "sparse": "No", "shareable": "Yes"}},
		{in: "create VmDiskMapping slot=0 virtualDisk=D name=M on Vm name=N", typ: "VmDiskMapping", target: "on Vm name=N",
			attrs: map[string]string{"slot": "0", "virtualDisk": "D", "name": "M"}},
		{in: "create VmDiskMapping slot=1 virtualCd=ISO name=M2 on Vm name=N", typ: "VmDiskMapping", target: "on Vm name=N",
			attrs: map[string]string{"slot": "1", "virtualCd": "ISO", "name": "M2"}},
		{in: "delete VmDiskMapping name=M", typ: "VmDiskMapping", inst: "name=M"},
		{in: "show VmDiskMapping name=M", typ: "VmDiskMapping", inst: "name=M"},
		{in: "create Vnic name=E network=NET on Vm name=N", typ: "Vnic", target: "on Vm name=N",
			attrs: map[string]string{"name": "E", "network": "NET"}},
		{in: "delete Vnic name=E", typ: "Vnic", inst: "name=E"},
		{in: "edit Vm name=N memoryLimit=4096", typ: "Vm", inst: "name=N", attrs: map[string]string{"memoryLimit": "4096"}},

		{in: "create Vm name=N repository=R osTyp=x", wantCode: CodeUnknownAttribute, wantMsg: "did you mean 'osType'?"},
		{in: "create Vm name=N repository=R memoryLimit=0", wantCode: CodeInvalidValue, wantMsg: "integer from 1 to"},
		{in: "create Vm name=N repository=R bootOrder='DISK,FLOPPY'", wantCode: CodeInvalidValue, wantMsg: "use one of DISK, CDROM"},
		{in: "create VirtualDisk name=D size=30 shareable=maybe on Repository name=R", wantCode: CodeInvalidValue, wantMsg: "use Yes or No"},
		{in: "create VirtualDisk name=D size=30 sharable=Yes on Repository name=R", wantCode: CodeUnknownAttribute, wantMsg: "did you mean 'shareable'?"},
		{in: "create VmDiskMapping slot=64 virtualDisk=D on Vm name=N", wantCode: CodeInvalidValue, wantMsg: "integer from 0 to 63"},
		{in: "create VmDiskMapping virtualDisk=D", wantCode: CodeClause, wantMsg: "needs 'on Vm <instance>'"},
		{in: "create VmDiskMapping virtualDisk=D on VirtualDisk name=D", wantCode: CodeClause, wantMsg: "needs an object type after it: Vm"},
		{in: "create VmDiskMapping virtualCdrom=ISO on Vm name=N", wantCode: CodeUnknownAttribute, wantMsg: "accepted: slot, virtualDisk, virtualCd, name"},
		{in: "delete VmDiskMapping", wantCode: CodeMissingInstance},
		{in: "create VmCloneThing name=C on Vm name=N", wantCode: CodeUnknownType, wantMsg: "unknown object type 'VmCloneThing' for create"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			cmd, perr := Default.Parse(tc.in)
			if tc.wantCode != "" {
				if perr == nil || perr.Code != tc.wantCode || !strings.Contains(perr.Msg, tc.wantMsg) {
					t.Fatalf("got %v, want %s saying %q", perr, tc.wantCode, tc.wantMsg)
				}
				return
			}
			if perr != nil {
				t.Fatalf("refused: %v", perr)
			}
			if cmd.Spec.Type != tc.typ {
				t.Errorf("type %s, want %s", cmd.Spec.Type, tc.typ)
			}
			inst := ""
			if cmd.Instance != nil {
				inst = cmd.Instance.String()
			}
			if inst != tc.inst {
				t.Errorf("instance %q, want %q", inst, tc.inst)
			}
			target := ""
			if cmd.Target != nil {
				target = cmd.Target.Prep + " " + cmd.Target.Type + " " + cmd.Target.Instance.String()
			}
			if target != tc.target {
				t.Errorf("target %q, want %q", target, tc.target)
			}
			if tc.attrs == nil {
				tc.attrs = map[string]string{}
			}
			if !maps.Equal(cmd.Attrs, tc.attrs) {
				t.Errorf("attributes %v, want %v", cmd.Attrs, tc.attrs)
			}
		})
	}
}
