package commands

import (
	"context"
	"strings"
)

func verbGetVmCfgFileContent() *VerbInfo {
	return &VerbInfo{Name: "getVmCfgFileContent", Help: "Show a VM's vm.cfg.", Specs: []*Spec{{
		Type: "Vm", Instance: true,
		Help: "Show the vm.cfg a server of the VM's pool reads from the repository, in Xen's syntax, console passwords masked.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			text, err := x.Backend.VMConfigFile(ctx, x.Ref())
			if err != nil {
				return nil, err
			}
			return &Result{Text: strings.Split(strings.TrimSuffix(text, "\n"), "\n")}, nil
		},
	}}}
}
