package commands

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"xenmanager/backend"
	"xenmanager/backend/agentapi"
)

// serverType is the Server: a Xen host whose agent the manager owns.
var serverType = &objectType{
	Name: "Server",
	List: &Spec{Help: "List servers.", Attrs: []Attr{filterName,
		{Name: "status", Kind: AttrString, Help: "only servers in this state (Running)"}, filterServerPool},
		Run: streamedBy((*backend.Manager).StreamServers, serverRow)},
	Show:       shownBy((*backend.Manager).Server, serverFields),
	ShowFields: fieldsOf(serverFields),
	ListFields: rowFieldsOf(serverRow),
}

func serverRow(s backend.Server) Row {
	return Row{ID: s.ID, Name: s.Name, Fields: []Field{
		strField("status", "status", s.Status), strField("address", "ipAddress", s.Address),
		strField("hypervisor", "hypervisor", s.HypervisorType), refCol("serverPool", "serverPool", s.Pool),
		intField("memoryMiB", "memoryMiB", s.TotalMemoryMiB), intField("vms", "runningVmCount", int64(s.RunningVMs))}}
}

func serverFields(s backend.Server) []Field {
	return []Field{
		strField("Name", "name", s.Name),
		strField("Id", "id", s.ID),
		strField("Status", "status", s.Status),
		strField("Hypervisor", "", serverHypervisor(s)).textOnly(),
		strField("", "hypervisor", s.HypervisorType).machineOnly(),
		strField("", "hypervisorVersion", s.HypervisorVersion).machineOnly(),
		strField("Hostname", "hostname", s.Hostname),
		strField("IP Address", "ipAddress", s.Address),
		intField("Agent Port", "port", int64(s.Port)),
		refField("Server Pool", "serverPool", s.Pool),
		strField("Manufacturer", "manufacturer", s.Manufacturer),
		strField("Product Name", "productName", s.Product),
		strField("Processor Type", "processorType", s.CPUModel),
		intField("Processor Sockets Populated", "processorSockets", s.CPUSockets),
		intField("Cores per Processor Socket", "coresPerSocket", s.CoresPerSocket),
		intField("Threads per Core", "threadsPerCore", s.ThreadsPerCore),
		floatField("Processor Speed (GHz)", "processorSpeedGHz", float64(s.CPUKHz)/1e6, 3),
		intField("Memory (MiB)", "memoryMiB", s.TotalMemoryMiB),
		intField("Dom0 Memory (MiB)", "dom0MemoryMiB", s.Dom0MemoryMiB),
		strField("OVM Version", "ovmVersion", s.OVMVersion),
		strField("Agent Version", "agentVersion", s.AgentVersion),
		strField("Unique Id", "uniqueId", s.UniqueID),
		strField("Certificate SHA-256", "certificateSha256", s.CertSPKISHA256),
		intField("Running Vms", "runningVmCount", int64(s.RunningVMs)),
		strField("Roles", "", serverRoles(s)).textOnly(),
		stringsField("", "roles", serverRoleNames(s), ",").machineOnly(),
		boolField("", "poolMaster", s.IsMaster).machineOnly(),
		boolField("Maintenance Mode", "maintenanceMode", s.Maintenance),
	}
}

// serverRoleNames are the server's roles as edit Server's roles= names
// them (xen, utility).
func serverRoleNames(s backend.Server) []string {
	out := []string{}
	for _, r := range strings.Split(s.Roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}

// serverHypervisor is the server's hypervisor type followed by its version
// when the agent knows it ("xen 4.17.3", "simulated"), so that a simulated
// host is never taken for a real one.
func serverHypervisor(s backend.Server) string {
	if s.HypervisorVersion == "" {
		return s.HypervisorType
	}
	return s.HypervisorType + " " + s.HypervisorVersion
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

// showServer is the result of an action that leaves a server to look at.
func showServer(s backend.Server, err error) (*Result, error) {
	if err != nil {
		return nil, err
	}
	return &Result{Fields: serverFields(s)}, nil
}

func verbDiscoverServer() *VerbInfo {
	return &VerbInfo{Name: "discoverServer", Help: "Take a server under management through its agent.", Specs: []*Spec{{
		Help: "Contact the agent, pin its certificate, take ownership and record the hypervisor and hardware. Discovering a known server again updates its address, password, pin and hypervisor.",
		Attrs: []Attr{
			{Name: "ipAddress", Kind: AttrString, Required: true, Help: "the server's IP address or host name"},
			{Name: "password", Kind: AttrSecret, Required: true, Help: "the agent password"},
			{Name: "port", Kind: AttrInt, Min: 1, Max: 65535, Default: strconv.Itoa(agentapi.DefaultPort), Help: "the agent's HTTPS port"},
		},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			s, err := x.Backend.DiscoverServer(ctx, backend.DiscoverRequest{Address: x.Str("ipAddress"), Port: int(x.Int("port")),
				Password: x.Str("password")})
			return rowOf(s.ID, s.Name, err)
		},
	}}}
}

// serverEditResult is what edit Server prints: the server and, when it
// entered maintenance mode, the VMs that left it and those that stayed.
// The result is printed with the error of an evacuation that left VMs
// behind, so that the operator sees what moved as well as what did not.
func serverEditResult(e backend.ServerEdit, err error) (*Result, error) {
	if e.Server.ID == "" {
		return nil, err
	}
	fields := serverFields(e.Server)
	if e.Evacuation != nil {
		fields = append(fields, evacuationFields(*e.Evacuation)...)
	}
	return &Result{Fields: fields}, err
}

// evacuationFields are the VMs an evacuation moved (Evacuated Vm 1 = web1
// to ovs2 (job <id>)) and those that stayed, with why (Stayed Vm 1 = big:
// <reason>), one line each in the text form as show ServerPool lists its
// servers, and as two lists in the machine form.
func evacuationFields(ev backend.Evacuation) []Field {
	var fields []Field
	var moved, stayed []backend.NamedRef
	for i, mv := range ev.Moved() {
		where := "to " + mv.To.Name
		if mv.To.Name == "" {
			where = "stopped meanwhile"
		}
		if mv.JobID != "" {
			where += " (job " + mv.JobID + ")"
		}
		fields = append(fields, strField(fmt.Sprintf("Evacuated Vm %d", i+1), "", mv.VM.Name+" "+where).textOnly())
		moved = append(moved, mv.VM)
	}
	for i, mv := range ev.Stayed() {
		fields = append(fields, strField(fmt.Sprintf("Stayed Vm %d", i+1), "", mv.VM.Name+": "+backend.Message(mv.Err)).textOnly())
		stayed = append(stayed, mv.VM)
	}
	return append(fields, refsField("", "evacuatedVms", moved).machineOnly(), refsField("", "stayedVms", stayed).machineOnly())
}

func editServerSpec() *Spec {
	return &Spec{
		Type: "Server", Instance: true,
		Help: "Rename a server, put it in or out of maintenance mode, or change its roles. Entering maintenance mode live-migrates the server's running VMs to other servers of the pool (evacuationParallelism of edit Manager at once); the server stays in maintenance mode even when a VM cannot leave, and the command then fails naming it.",
		Attrs: []Attr{
			{Name: "name", Kind: AttrString, Help: "a new name"},
			{Name: "maintenanceMode", Kind: AttrYesNo, Help: "Yes: place nothing new on this server and migrate its running VMs off it (Yes again retries those that stayed); No: only let VMs be placed here again"},
			{Name: "roles", Kind: AttrEnum, Enum: []string{"xen,utility", "xen", "utility"}, Help: "Server Pool roles: only a xen server gets VMs (placement, migrate destServer=); utility does repository work (importIso, disks, ISOs); xen is not taken from a server that runs VMs"},
		},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			if err := needSomething(x); err != nil {
				return nil, err
			}
			return serverEditResult(x.Backend.EditServer(ctx, x.Ref(), backend.EditServerRequest{Name: optStr(x, "name"),
				Maintenance: optBool(x, "maintenanceMode"), Roles: optStr(x, "roles")}))
		},
	}
}

func stopServerSpec() *Spec {
	return &Spec{
		Type: "Server", Instance: true,
		Help: "Power a server off through its agent (sys_shutdown); refused while VMs run there. It stays Stopped until discovered again.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			return showServer(x.Backend.StopServer(ctx, x.Ref()))
		},
	}
}

func restartServerSpec() *Spec {
	return &Spec{
		Type: "Server", Instance: true,
		Help: "Reboot a server through its agent (sys_reboot), refused while VMs run there; waits until it is back and rediscovered.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			return showServer(x.Backend.RestartServer(ctx, x.Ref()))
		},
	}
}

// attrServerForce is force=Yes of remove and delete Server: on a server
// the manager records as not answering, go on without its agent.
var attrServerForce = Attr{Name: "force", Kind: AttrYesNo, Default: "No",
	Help: "Yes: on a server that does not answer (Unreachable, Stopped), go on without its agent once no VM is recorded on it (stop Vm force=Yes records them stopped); the agent is told nothing"}

func deleteServerSpec() *Spec {
	return &Spec{
		Type: "Server", Instance: true,
		Help:  "Forget a server that is in no pool, releasing its ownership; force=Yes forgets a server that does not answer without calling its agent.",
		Attrs: []Attr{attrServerForce},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			s, err := x.Backend.DeleteServer(ctx, x.Ref(), x.Str("force") == "Yes")
			return rowOf(s.ID, s.Name, err)
		},
	}
}

func addServerSpec() *Spec {
	return &Spec{
		Type: "Server", Instance: true,
		Help:   "Make a discovered server a member of a server pool: the first becomes master, the others join; it learns the pool's repositories. A pool takes servers of one hypervisor type.",
		Clause: &Clause{Prep: "to", Types: []string{"ServerPool"}, Required: true},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			s, err := x.Backend.AddServerToPool(ctx, x.Ref(), x.TargetRef())
			return rowOf(s.ID, s.Name, err)
		},
	}
}

func removeServerSpec() *Spec {
	return &Spec{
		Type: "Server", Instance: true,
		Help:   "Take a server out of its pool (leave_server_pool); refused while VMs run there. force=Yes takes a server that does not answer out in the manager's records only; if it was the master, another member becomes master.",
		Attrs:  []Attr{attrServerForce},
		Clause: &Clause{Prep: "from", Types: []string{"ServerPool"}, Required: true},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			s, err := x.Backend.RemoveServerFromPool(ctx, x.Ref(), x.TargetRef(), x.Str("force") == "Yes")
			return rowOf(s.ID, s.Name, err)
		},
	}
}

// refreshServerFields are what refresh Server prints: the server, then how
// many of its VMs changed state.
func refreshServerFields(r backend.Refreshed) []Field {
	return append(serverFields(r.Server), intField("Vms Changed", "vmsChanged", int64(r.VMsChanged)))
}

func refreshServerSpec() *Spec {
	return &Spec{
		Type: "Server", Instance: true,
		Help: "Re-read a server's identity, hypervisor and hardware from its agent and bring the state of its VMs in line with the domains it runs.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			r, err := x.Backend.RefreshServer(ctx, x.Ref())
			if err != nil {
				return nil, err
			}
			return &Result{Fields: refreshServerFields(r)}, nil
		},
	}
}
