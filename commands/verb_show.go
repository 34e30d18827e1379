package commands

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"xenmanager/backend"
)

func verbShow() *VerbInfo {
	v := &VerbInfo{Name: "show", Help: "Show one object's attributes as 'Key = value' lines."}
	special := map[string]func(context.Context, *Exec) (*Result, error){"Job": runShowJob, "User": runShowUser, "SshKey": runShowKey, "Tag": runShowTag,
		"Network": runShowStorage, "VirtualDisk": runShowStorage, "Vnic": runShowStorage, "Manager": runShowManager,
		"VirtualCdrom": runShowCdrom}
	for _, typ := range ObjectTypes {
		if typ == "Event" || typ == "AuditRecord" || typ == "VmDiskMapping" {
			continue // listed, not shown one by one
		}
		run := runShow
		if r, ok := special[typ]; ok {
			run = r
		}
		// There is one manager: show Manager takes no instance.
		v.Specs = append(v.Specs, &Spec{Type: typ, Instance: typ != "Manager", Help: "Show one " + typ + ".", Run: run})
	}
	return v
}

func runShow(ctx context.Context, x *Exec) (*Result, error) {
	b := x.Backend
	switch x.Cmd.Spec.Type {
	case "ServerPool":
		p, err := b.ServerPool(ctx, x.Ref())
		if err != nil {
			return nil, err
		}
		return &Result{Props: append(poolProps(p), Prop{"Tags", strings.Join(b.TagsOf(ctx, p.ID), ", ")})}, nil
	case "Server":
		s, err := b.Server(ctx, x.Ref())
		if err != nil {
			return nil, err
		}
		return &Result{Props: append(serverProps(s), Prop{"Tags", strings.Join(b.TagsOf(ctx, s.ID), ", ")})}, nil
	case "Repository":
		r, err := b.Repository(ctx, x.Ref())
		if err != nil {
			return nil, err
		}
		return &Result{Props: append(repoProps(r), Prop{"Tags", strings.Join(b.TagsOf(ctx, r.ID), ", ")})}, nil
	case "Vm":
		v, err := b.VM(ctx, x.Ref())
		if err != nil {
			return nil, err
		}
		return &Result{Props: append(vmProps(v), Prop{"Tags", strings.Join(b.TagsOf(ctx, v.ID), ", ")})}, nil
	}
	return nil, fmt.Errorf("show: no handler for %s", x.Cmd.Spec.Type)
}

// ref prints a reference as Oracle VM does: "<id>  [<name>]".
func ref(r backend.NamedRef) string {
	if r.ID == "" {
		return ""
	}
	return r.ID + "  [" + r.Name + "]"
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func poolProps(p backend.ServerPool) []Prop {
	props := []Prop{{"Name", p.Name}, {"Id", p.ID}, {"Description", p.Description}}
	for i, s := range p.Servers {
		props = append(props, Prop{fmt.Sprintf("Server %d", i+1), ref(s)})
	}
	for i, r := range p.Repositories {
		props = append(props, Prop{fmt.Sprintf("Repository %d", i+1), ref(r)})
	}
	return append(props, Prop{"Master Server", ref(p.Master)}, Prop{"Start Policy", p.StartPolicy}, Prop{"Vms", strconv.Itoa(p.VMs)})
}

func serverProps(s backend.Server) []Prop {
	return []Prop{
		{"Name", s.Name},
		{"Id", s.ID},
		{"Status", s.Status},
		{"Hostname", s.Hostname},
		{"IP Address", s.Address},
		{"Agent Port", strconv.Itoa(s.Port)},
		{"Server Pool", ref(s.Pool)},
		{"Manufacturer", s.Manufacturer},
		{"Product Name", s.Product},
		{"Processor Type", s.CPUModel},
		{"Processor Sockets Populated", itoa(s.CPUSockets)},
		{"Cores per Processor Socket", itoa(s.CoresPerSocket)},
		{"Threads per Core", itoa(s.ThreadsPerCore)},
		{"Processor Speed (GHz)", fmt.Sprintf("%.3f", float64(s.CPUKHz)/1e6)},
		{"Memory (MiB)", itoa(s.TotalMemoryMiB)},
		{"Dom0 Memory (MiB)", itoa(s.Dom0MemoryMiB)},
		{"OVM Version", s.OVMVersion},
		{"Agent Version", s.AgentVersion},
		{"Unique Id", s.UniqueID},
		{"Certificate SHA-256", s.CertSPKISHA256},
		{"Running Vms", strconv.Itoa(s.RunningVMs)},
		{"Roles", serverRoles(s)},
		{"Maintenance Mode", yesNo(s.Maintenance)},
	}
}

// serverRoles prints a server's roles as Oracle VM names them.
func serverRoles(s backend.Server) string {
	var out []string
	if s.IsMaster {
		out = append(out, "Server Pool Master")
	}
	for _, r := range strings.Split(s.Roles, ",") {
		switch strings.TrimSpace(r) {
		case "utility":
			out = append(out, "Utility")
		case "xen":
			out = append(out, "VM Server")
		}
	}
	return strings.Join(out, ", ")
}

func repoProps(r backend.Repository) []Prop {
	return []Prop{
		{"Name", r.Name},
		{"Id", r.ID},
		{"Server Pool", ref(r.Pool)},
		{"File System Location", r.FSLocation},
		{"Mount Point", r.MountPoint},
		{"Vms", strconv.Itoa(r.VMs)},
	}
}

func vmProps(v backend.VM) []Prop {
	return []Prop{
		{"Name", v.Name},
		{"Id", v.ID},
		{"Status", v.Status},
		{"Server", ref(v.Server)},
		{"Server Pool", ref(v.Pool)},
		{"Repository", ref(v.Repository)},
		{"Memory (MB)", itoa(v.MemoryMiB)},
		{"Processors", itoa(v.CPUCount)},
		{"Domain Type", domainTypeName(v.DomainType)},
		{"Description", v.Description},
		{"Max. Processors", itoa(maxInt(v.CPUCountLimit, v.CPUCount))},
		{"CPU Pinning", v.CPUPinning},
		{"Preferred Servers", refsList(v.PreferredServers)},
		{"High Availability", yesNo(v.HA)},
		{"Operating System", v.OSType},
		{"Boot Order", v.BootOrder},
		{"Start Policy", v.StartPolicy},
		{"Virtual Disks", refsList(v.Disks)},
		{"Virtual Cdroms", refsList(v.Cdroms)},
		{"Vnics", refsList(v.Vnics)},
	}
}

func maxInt(a, b int64) int64 { return max(a, b) }

func refsList(refs []backend.NamedRef) string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.Name
	}
	return strings.Join(out, ", ")
}
