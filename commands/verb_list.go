package commands

import (
	"context"
	"strconv"
	"strings"

	"xenmanager/backend"
)

// Filters of list, by object type.
var (
	filterName       = Attr{Name: "name", Kind: AttrString, Help: "only objects whose name matches: a name or a glob pattern (web*, db-?, [ab]*)"}
	filterServer     = Attr{Name: "server", Kind: AttrObject, Object: "Server", Help: "only objects on this server (name, pattern or id)"}
	filterServerPool = Attr{Name: "serverPool", Kind: AttrObject, Object: "ServerPool", Help: "only objects in this pool (name, pattern or id)"}
	filterRepository = Attr{Name: "repository", Kind: AttrObject, Object: "Repository", Help: "only objects in this repository (name, pattern or id)"}
	filterTag        = Attr{Name: "tag", Kind: AttrObject, Object: "Tag", Help: "only objects carrying this tag (name, pattern or id)"}
	filterVMStatus   = Attr{Name: "status", Kind: AttrEnum, Enum: []string{"Running", "Stopped", "Suspended", "Paused"}, Help: "only VMs in this state"}
	filterSrvStatus  = Attr{Name: "status", Kind: AttrString, Help: "only servers in this state (Running)"}
)

func verbList() *VerbInfo {
	return &VerbInfo{Name: "list", Help: "List objects of a type, one '  id:<id>  name:<name>' row each; filters narrow the list.", Specs: []*Spec{
		{Type: "ServerPool", Help: "List server pools.", Attrs: []Attr{filterName, filterTag}, Run: runList},
		{Type: "Server", Help: "List servers.", Attrs: []Attr{filterName, filterSrvStatus, filterServerPool, filterTag}, Run: runList},
		{Type: "Repository", Help: "List repositories.", Attrs: []Attr{filterName, filterServerPool, filterTag}, Run: runList},
		{Type: "Vm", Help: "List VMs.", Attrs: []Attr{filterName, filterVMStatus, filterServer, filterServerPool, filterRepository, filterTag}, Run: runList},
		{Type: "Tag", Help: "List tags.", Attrs: []Attr{filterName}, Run: runListTags},
		{Type: "Network", Help: "List networks.", Attrs: []Attr{filterName, filterServerPool}, Run: runListNetworks},
		{Type: "VirtualDisk", Help: "List virtual disks.", Attrs: []Attr{filterName, filterRepository, filterServerPool}, Run: runListDisks},
		listCdromSpec(),
		{Type: "VmDiskMapping", Help: "List which disk is in which VM's slot.", Attrs: []Attr{{Name: "vm", Kind: AttrObject, Object: "Vm", Help: "only this VM's mappings"}}, Run: runListMappings},
		{Type: "Vnic", Help: "List VNICs.", Attrs: []Attr{{Name: "name", Kind: AttrString, Help: "only VNICs with this name"}, {Name: "vm", Kind: AttrObject, Object: "Vm", Help: "only this VM's VNICs"}}, Run: runListVnics},
		{Type: "Manager", Help: "List the manager.", Run: runListManager},
		{Type: "Job", Help: "List recent jobs, newest first.", Attrs: []Attr{{Name: "status", Kind: AttrEnum,
			Enum: []string{"Running", "Success", "Failure", "Aborted"}, Help: "only jobs in this state"}}, Run: runListJobs},
		{Type: "Event", Help: "List recent events, newest first.", Attrs: eventAttrs, Run: runGetEvents},
		{Type: "User", Help: "List users (yourself unless you are an Administrator).", Attrs: []Attr{filterName}, Run: runListUsers},
		{Type: "SshKey", Help: "List SSH keys (yours unless you are an Administrator).", Run: runListKeys},
		{Type: "AuditRecord", Help: "List the newest audited commands (Administrators).", Attrs: []Attr{auditLimit}, Run: runListAudit},
	}}
}

func runList(ctx context.Context, x *Exec) (*Result, error) {
	f := backend.Filter{
		Name:       x.Str("name"),
		Status:     x.Str("status"),
		Server:     objectRef(x.Str("server")),
		Pool:       objectRef(x.Str("serverPool")),
		Repository: objectRef(x.Str("repository")),
		Tag:        objectRef(x.Str("tag")),
	}
	res := &Result{Rows: []Row{}}
	b := x.Backend
	switch x.Cmd.Spec.Type {
	case "ServerPool":
		pools, err := b.ServerPools(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, p := range pools {
			res.Rows = append(res.Rows, Row{ID: p.ID, Name: p.Name, Cols: []Prop{
				{"servers", strconv.Itoa(len(p.Servers))}, {"repositories", strconv.Itoa(len(p.Repositories))},
				{"vms", strconv.Itoa(p.VMs)}}})
		}
	case "Server":
		servers, err := b.Servers(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, s := range servers {
			res.Rows = append(res.Rows, Row{ID: s.ID, Name: s.Name, Cols: []Prop{
				{"status", s.Status}, {"address", s.Address}, {"serverPool", s.Pool.Name},
				{"memoryMiB", itoa(s.TotalMemoryMiB)}, {"vms", strconv.Itoa(s.RunningVMs)}}})
		}
	case "Repository":
		repos, err := b.Repositories(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, r := range repos {
			res.Rows = append(res.Rows, Row{ID: r.ID, Name: r.Name, Cols: []Prop{
				{"serverPool", r.Pool.Name}, {"fsLocation", r.FSLocation}, {"vms", strconv.Itoa(r.VMs)}}})
		}
	case "Vm":
		vms, err := b.ListVMs(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, v := range vms {
			res.Rows = append(res.Rows, Row{ID: v.ID, Name: v.Name, Cols: []Prop{
				{"status", v.Status}, {"server", v.Server.Name}, {"memory", itoa(v.MemoryMiB)},
				{"cpus", itoa(v.CPUCount)}, {"repository", v.Repository.Name}}})
		}
	}
	return res, nil
}

// objectRef reads an attribute that names an object: an id when it has the
// id's shape, a name or pattern otherwise, nothing when empty.
func objectRef(s string) backend.Ref {
	switch {
	case s == "":
		return backend.Ref{}
	case backend.IsID(strings.ToLower(s)):
		return backend.Ref{ID: strings.ToLower(s)}
	}
	return backend.Ref{Name: s}
}
