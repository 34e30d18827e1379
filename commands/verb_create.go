package commands

import (
	"context"
	"strings"

	"xenmanager/backend"
)

var domainTypes = []string{"XEN_HVM", "XEN_HVM_PV_DRIVERS", "XEN_PVM"}

func domainTypeName(wire string) string { return strings.ToUpper(wire) }

// The VM size attributes of create Vm and edit Vm: their bounds are the
// backend's, which both paths check again.
var (
	attrMemory        = Attr{Name: "memory", Kind: AttrInt, Min: backend.VMMemoryMiB.Min, Max: backend.VMMemoryMiB.Max, Help: "memory in MB"}
	attrCPUCount      = Attr{Name: "cpuCount", Kind: AttrInt, Min: backend.VMCPUs.Min, Max: backend.VMCPUs.Max, Help: "number of virtual CPUs"}
	attrCPUCountLimit = Attr{Name: "cpuCountLimit", Kind: AttrInt, Min: backend.VMCPUs.Min, Max: backend.VMCPUs.Max,
		Help: "the most vCPUs it may have (maxvcpus); stopped VMs only"}
)

// withDefault is a with default def.
func withDefault(a Attr, def string) Attr {
	a.Default = def
	return a
}

func verbCreate() *VerbInfo {
	return &VerbInfo{Name: "create", Help: "Create an object.", Specs: []*Spec{
		{
			Type: "ServerPool", Help: "Create an empty server pool; add servers to it with 'add Server ... to ServerPool ...'.",
			Attrs: []Attr{
				{Name: "name", Kind: AttrString, Required: true, Help: "the pool's name"},
				{Name: "description", Kind: AttrString, Help: "free text"},
			},
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				p, err := x.Backend.CreateServerPool(ctx, x.Str("name"), x.Str("description"))
				if err != nil {
					return nil, err
				}
				return &Result{Rows: []Row{{ID: p.ID, Name: p.Name}}}, nil
			},
		},
		{
			Type: "Repository", Help: "Create a repository on shared storage and make it known to every server of the pool.",
			Attrs: []Attr{
				{Name: "name", Kind: AttrString, Required: true, Help: "the repository's name"},
				{Name: "fsLocation", Kind: AttrString, Required: true, Help: "the shared file system's path (for simulated servers, a local directory)"},
			},
			Clause: &Clause{Prep: "on", Types: []string{"ServerPool"}, Required: true},
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				r, err := x.Backend.CreateRepository(ctx, backend.CreateRepositoryRequest{
					Name: x.Str("name"), FSLocation: x.Str("fsLocation"), Pool: x.TargetRef()})
				if err != nil {
					return nil, err
				}
				return &Result{Rows: []Row{{ID: r.ID, Name: r.Name}}}, nil
			},
		},
		{
			Type: "Vm", Help: "Create a VM (Stopped) in a repository; its vm.cfg is written there.",
			Attrs: []Attr{
				{Name: "name", Kind: AttrString, Required: true, Help: "the VM's name"},
				{Name: "repository", Kind: AttrObject, Object: "Repository", Required: true, Help: "the repository that holds the VM's files (name or id)"},
				withDefault(attrMemory, "1024"),
				withDefault(attrCPUCount, "1"),
				{Name: "domainType", Kind: AttrEnum, Enum: domainTypes, Default: "XEN_HVM", Help: "virtualization mode"},
				{Name: "description", Kind: AttrString, Help: "free text"},
				{Name: "disks", Kind: AttrString, Help: "comma-separated VirtualDisk names or ids, mapped from slot 0 (xvda)"},
				{Name: "networks", Kind: AttrString, Help: "comma-separated Network names or ids, one Vnic on each"},
			},
			Clause: &Clause{Prep: "on", Types: []string{"ServerPool"}},
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				v, err := x.Backend.CreateVM(ctx, backend.CreateVMRequest{
					Name:        x.Str("name"),
					Repository:  objectRef(x.Str("repository")),
					Pool:        x.TargetRef(),
					MemoryMiB:   x.Int("memory"),
					CPUCount:    x.Int("cpuCount"),
					DomainType:  strings.ToLower(x.Str("domainType")),
					Description: x.Str("description"),
					Disks:       splitRefs(x.Str("disks")),
					Networks:    splitRefs(x.Str("networks")),
				})
				if err != nil {
					return nil, err
				}
				return &Result{Rows: []Row{{ID: v.ID, Name: v.Name}}}, nil
			},
		},
		{
			Type: "Tag", Help: "Create a tag to put on objects (add Tag ... to Vm ...).",
			Attrs: []Attr{
				{Name: "name", Kind: AttrString, Required: true, Help: "the tag's name"},
				{Name: "description", Kind: AttrString, Help: "free text"},
			},
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				t, err := x.Backend.CreateTag(ctx, x.Str("name"), x.Str("description"))
				return rowOf(t.ID, t.Name, err)
			},
		},
		createNetworkSpec(),
		createDiskSpec(),
		createVnicSpec(),
		createUserSpec(),
		createSSHKeySpec(),
	}}
}
