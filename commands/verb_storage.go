package commands

import (
	"context"
	"strconv"
	"strings"

	"xenmanager/backend"
)

func networkProps(n backend.Network) []Prop {
	return []Prop{{"Name", n.Name}, {"Id", n.ID}, {"Server Pool", ref(n.Pool)}, {"Bridge", n.Bridge},
		{"Description", n.Description}, {"Vnics", strconv.Itoa(n.Vnics)}}
}

func diskProps(d backend.VirtualDisk) []Prop {
	return []Prop{{"Name", d.Name}, {"Id", d.ID}, {"Repository", ref(d.Repository)},
		{"Size (MiB)", itoa(d.SizeMiB)}, {"Sparse", yesNo(d.Sparse)}, {"Vm", ref(d.Vm)}, {"Slot", slotOf(d)},
		{"Path", d.Path}, {"Description", d.Description}}
}

func slotOf(d backend.VirtualDisk) string {
	if d.Vm.ID == "" {
		return ""
	}
	return strconv.Itoa(d.Slot)
}

func vnicProps(v backend.Vnic) []Prop {
	return []Prop{{"Name", v.Name}, {"Id", v.ID}, {"Mac Address", v.MAC}, {"Vm", ref(v.Vm)}, {"Network", ref(v.Network)}}
}

// splitRefs reads a comma-separated list of names or ids.
func splitRefs(s string) []backend.Ref {
	var out []backend.Ref
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, objectRef(p))
		}
	}
	return out
}

func createNetworkSpec() *Spec {
	return &Spec{
		Type: "Network", Help: "Create a network of a pool: VNICs on it attach to its bridge on every server of the pool.",
		Attrs: []Attr{
			{Name: "name", Kind: AttrString, Required: true, Help: "the network's name"},
			{Name: "bridge", Kind: AttrString, Default: "xenbr0", Help: "the servers' bridge"},
			{Name: "description", Kind: AttrString, Help: "free text"},
		},
		Clause: &Clause{Prep: "on", Types: []string{"ServerPool"}, Required: true},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			n, err := x.Backend.CreateNetwork(ctx, x.Str("name"), x.TargetRef(), x.Str("bridge"), x.Str("description"))
			return rowOf(n.ID, n.Name, err)
		},
	}
}

func createDiskSpec() *Spec {
	return &Spec{
		Type: "VirtualDisk", Help: "Create a disk image in a repository (a sparse file unless sparse=No).",
		Attrs: []Attr{
			{Name: "name", Kind: AttrString, Required: true, Help: "the disk's name"},
			{Name: "size", Kind: AttrInt, Min: 1, Max: backend.VirtualDiskMiB.Max / 1024, Required: true, Help: "size in GiB"},
			{Name: "sparse", Kind: AttrYesNo, Default: "Yes", Help: "No allocates every block now (takes longer)"},
			{Name: "description", Kind: AttrString, Help: "free text"},
		},
		Clause: &Clause{Prep: "on", Types: []string{"Repository"}, Required: true},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			d, err := x.Backend.CreateVirtualDisk(ctx, x.Str("name"), x.TargetRef(), x.Int("size")*1024,
				x.Str("sparse") == "Yes", x.Str("description"))
			return rowOf(d.ID, d.Name, err)
		},
	}
}

func createVnicSpec() *Spec {
	return &Spec{
		Type: "Vnic", Help: "Add a network interface on a network to a stopped VM.",
		Attrs: []Attr{
			{Name: "network", Kind: AttrObject, Object: "Network", Required: true, Help: "the network it attaches to"},
			{Name: "name", Kind: AttrString, Help: "the VNIC's name (default <vm>-eth<n>)"},
			{Name: "mac", Kind: AttrString, Help: "a MAC address such as 00:21:f6:12:34:56 (default: a new one)"},
		},
		Clause: &Clause{Prep: "on", Types: []string{"Vm"}, Required: true},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			v, err := x.Backend.CreateVnic(ctx, x.Str("name"), x.TargetRef(), objectRef(x.Str("network")), strings.ToLower(x.Str("mac")))
			return rowOf(v.ID, v.Name, err)
		},
	}
}

func runListNetworks(ctx context.Context, x *Exec) (*Result, error) {
	nets, err := x.Backend.Networks(ctx, backend.Filter{Name: x.Str("name"), Pool: objectRef(x.Str("serverPool"))})
	if err != nil {
		return nil, err
	}
	res := &Result{Rows: []Row{}}
	for _, n := range nets {
		res.Rows = append(res.Rows, Row{ID: n.ID, Name: n.Name, Cols: []Prop{{"serverPool", n.Pool.Name}, {"bridge", n.Bridge}, {"vnics", strconv.Itoa(n.Vnics)}}})
	}
	return res, nil
}

func runListDisks(ctx context.Context, x *Exec) (*Result, error) {
	disks, err := x.Backend.VirtualDisks(ctx, backend.Filter{Name: x.Str("name"), Repository: objectRef(x.Str("repository")),
		Pool: objectRef(x.Str("serverPool"))})
	if err != nil {
		return nil, err
	}
	res := &Result{Rows: []Row{}}
	for _, d := range disks {
		res.Rows = append(res.Rows, Row{ID: d.ID, Name: d.Name, Cols: []Prop{{"repository", d.Repository.Name},
			{"sizeMiB", itoa(d.SizeMiB)}, {"vm", d.Vm.Name}}})
	}
	return res, nil
}

func runListMappings(ctx context.Context, x *Exec) (*Result, error) {
	maps, err := x.Backend.DiskMappings(ctx, objectRef(x.Str("vm")))
	if err != nil {
		return nil, err
	}
	res := &Result{Rows: []Row{}}
	for _, mp := range maps {
		what := mp.Disk.Name
		if mp.Cdrom.ID != "" {
			what = mp.Cdrom.Name
		}
		res.Rows = append(res.Rows, Row{ID: mp.ID, Name: mp.Vm.Name + "/" + what, Cols: []Prop{{"vm", mp.Vm.Name},
			{"virtualDisk", mp.Disk.Name}, {"slot", strconv.Itoa(mp.Slot)}, {"virtualCdrom", mp.Cdrom.Name}}})
	}
	return res, nil
}

func runListVnics(ctx context.Context, x *Exec) (*Result, error) {
	vnics, err := x.Backend.Vnics(ctx, objectRef(x.Str("vm")))
	if err != nil {
		return nil, err
	}
	res := &Result{Rows: []Row{}}
	for _, v := range vnics {
		if n := x.Str("name"); n != "" && n != v.Name {
			continue
		}
		res.Rows = append(res.Rows, Row{ID: v.ID, Name: v.Name, Cols: []Prop{{"vm", v.Vm.Name}, {"network", v.Network.Name}, {"mac", v.MAC}}})
	}
	return res, nil
}

func runShowStorage(ctx context.Context, x *Exec) (*Result, error) {
	b := x.Backend
	switch x.Cmd.Spec.Type {
	case "Network":
		n, err := b.Network(ctx, x.Ref())
		if err != nil {
			return nil, err
		}
		return &Result{Props: networkProps(n)}, nil
	case "VirtualDisk":
		d, err := b.VirtualDisk(ctx, x.Ref())
		if err != nil {
			return nil, err
		}
		return &Result{Props: diskProps(d)}, nil
	case "Vnic":
		v, err := b.Vnic(ctx, x.Ref())
		if err != nil {
			return nil, err
		}
		return &Result{Props: vnicProps(v)}, nil
	}
	return nil, failf(CodeUnknownType, "show does not act on %s", x.Cmd.Spec.Type)
}

func managerProps(mi backend.ManagerInfo) []Prop {
	return []Prop{{"Name", mi.Name}, {"Id", mi.ID}, {"Version", Version}, {"Agent API Version", backend.AgentAPIVersion},
		{"Started", mi.Started.Format(timeLayout)}, {"Server Pools", strconv.Itoa(mi.Pools)}, {"Servers", strconv.Itoa(mi.Servers)},
		{"Vms", strconv.Itoa(mi.VMs)}, {"Running Jobs", strconv.Itoa(mi.RunningJobs)}}
}

func runListManager(ctx context.Context, x *Exec) (*Result, error) {
	mi, err := x.Backend.Info(ctx)
	if err != nil {
		return nil, err
	}
	return &Result{Rows: []Row{{ID: mi.ID, Name: mi.Name}}}, nil
}

func runShowManager(ctx context.Context, x *Exec) (*Result, error) {
	mi, err := x.Backend.Info(ctx)
	if err != nil {
		return nil, err
	}
	return &Result{Props: managerProps(mi)}, nil
}
