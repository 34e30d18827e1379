package commands

import (
	"context"
	"strings"

	"xenmanager/backend"
)

var startPolicies = []string{"BEST_SERVER", "CURRENT_SERVER", "USE_POOL_POLICY"}

var bootOrders = []string{"DISK", "CDROM", "PXE", "DISK,CDROM", "CDROM,DISK", "PXE,DISK"}

// needSomething fails an edit that names no attribute.
func needSomething(x *Exec) error {
	if len(x.Cmd.Attrs) == 0 {
		return failf(CodeMissingAttribute, "%s %s needs at least one of: %s", x.Cmd.Spec.Verb, x.Cmd.Spec.Type, strings.Join(attrNames(x.Cmd.Spec), ", "))
	}
	return nil
}

func verbEdit() *VerbInfo {
	return &VerbInfo{Name: "edit", Help: "Change an object's settings.", Specs: []*Spec{
		{
			Type: "Vm", Instance: true,
			Help: "Change a VM's settings; memory and cpuCount of a running VM change live within what it started with.",
			Attrs: []Attr{
				{Name: "name", Kind: AttrString, Help: "a new name"},
				{Name: "description", Kind: AttrString, Help: "free text"},
				attrMemory,
				attrCPUCount,
				attrCPUCountLimit,
				{Name: "cpuPinning", Kind: AttrString, Help: "physical CPUs the vCPUs may use, such as 0-1 or 0,2 (hard partitioning); empty to remove"},
				{Name: "preferredServers", Kind: AttrString, Help: "comma-separated server names or ids placement picks from; empty to remove"},
				{Name: "highAvailability", Kind: AttrYesNo, Help: "restart the VM elsewhere when its server fails"},
				{Name: "domainType", Kind: AttrEnum, Enum: domainTypes, Help: "virtualization mode; stopped VMs only"},
				{Name: "osType", Kind: AttrString, Help: "the guest's operating system, for information"},
				{Name: "bootOrder", Kind: AttrEnum, Enum: bootOrders, Help: "devices to boot from, in order"},
				{Name: "startPolicy", Kind: AttrEnum, Enum: startPolicies, Help: "where start places the VM"},
			},
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				if err := needSomething(x); err != nil {
					return nil, err
				}
				req := backend.EditVMRequest{Name: optStr(x, "name"), Description: optStr(x, "description"),
					MemoryMiB: optInt(x, "memory"), CPUCount: optInt(x, "cpuCount"), CPUCountLimit: optInt(x, "cpuCountLimit"),
					CPUPinning: optStr(x, "cpuPinning"), HA: optBool(x, "highAvailability"), OSType: optStr(x, "osType"),
					BootOrder: optStr(x, "bootOrder"), StartPolicy: optStr(x, "startPolicy")}
				if dt := optStr(x, "domainType"); dt != nil {
					lower := strings.ToLower(*dt)
					req.DomainType = &lower
				}
				if ps := optStr(x, "preferredServers"); ps != nil {
					refs := []backend.Ref{}
					for _, n := range strings.Split(*ps, ",") {
						if n = strings.TrimSpace(n); n != "" {
							refs = append(refs, objectRef(n))
						}
					}
					req.PreferredServers = &refs
				}
				v, err := x.Backend.EditVM(ctx, x.Ref(), req)
				if err != nil {
					return nil, err
				}
				return showVM(v), nil
			},
		},
		{
			Type: "Server", Instance: true,
			Help: "Rename a server, put it in or out of maintenance mode (nothing new is placed there), or change its roles.",
			Attrs: []Attr{
				{Name: "name", Kind: AttrString, Help: "a new name"},
				{Name: "maintenanceMode", Kind: AttrYesNo, Help: "Yes: place nothing new on this server"},
				{Name: "roles", Kind: AttrEnum, Enum: []string{"xen,utility", "xen", "utility"}, Help: "Server Pool roles: xen runs VMs, utility does storage work"},
			},
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				if err := needSomething(x); err != nil {
					return nil, err
				}
				s, err := x.Backend.EditServer(ctx, x.Ref(), backend.EditServerRequest{Name: optStr(x, "name"),
					Maintenance: optBool(x, "maintenanceMode"), Roles: optStr(x, "roles")})
				if err != nil {
					return nil, err
				}
				return &Result{Props: serverProps(s)}, nil
			},
		},
		{
			Type: "ServerPool", Instance: true, Help: "Rename a pool, or change its description or start policy.",
			Attrs: []Attr{
				{Name: "name", Kind: AttrString, Help: "a new name"},
				{Name: "description", Kind: AttrString, Help: "free text"},
				{Name: "startPolicy", Kind: AttrEnum, Enum: startPolicies[:2], Help: "placement of VMs whose startPolicy is USE_POOL_POLICY"},
			},
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				if err := needSomething(x); err != nil {
					return nil, err
				}
				p, err := x.Backend.EditServerPool(ctx, x.Ref(), optStr(x, "name"), optStr(x, "description"), optStr(x, "startPolicy"))
				if err != nil {
					return nil, err
				}
				return &Result{Props: poolProps(p)}, nil
			},
		},
		{
			Type: "User", Instance: true, Help: "Change a user's role (Administrators) or password (yourself, or Administrators).",
			Attrs: []Attr{
				{Name: "role", Kind: AttrEnum, Enum: roles, Help: "what the user may do"},
				{Name: "password", Kind: AttrSecret, Help: "a new password (at least 8 characters)"},
			},
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				if err := needSomething(x); err != nil {
					return nil, err
				}
				u, err := x.Backend.EditUser(ctx, x.Ref(), optStr(x, "role"), optStr(x, "password"))
				if err != nil {
					return nil, err
				}
				return &Result{Props: userProps(u)}, nil
			},
		},
		renameSpec(backend.RenameRepository, "Rename a repository (in the manager's records; its alias on the servers stays)."),
		renameSpec(backend.RenameVirtualDisk, "Rename a virtual disk or change its description."),
		renameSpec(backend.RenameVirtualCdrom, "Rename an ISO or change its description."),
		renameSpec(backend.RenameNetwork, "Rename a network or change its description."),
		renameSpec(backend.RenameVnic, "Rename a VNIC."),
		renameSpec(backend.RenameTag, "Rename a tag or change its description."),
	}}
}

// renameSpec declares edit on a type whose only editable attributes are its
// name and, where it has one, its description.
func renameSpec(typ backend.Renamable, help string) *Spec {
	attrs := []Attr{{Name: "name", Kind: AttrString, Help: "a new name"}}
	if typ.HasDescription() {
		attrs = append(attrs, Attr{Name: "description", Kind: AttrString, Help: "free text"})
	}
	return &Spec{Type: string(typ), Instance: true, Help: help, Attrs: attrs,
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			if err := needSomething(x); err != nil {
				return nil, err
			}
			r, err := x.Backend.EditNamed(ctx, typ, x.Ref(), optStr(x, "name"), optStr(x, "description"))
			return rowOf(r.ID, r.Name, err)
		}}
}
