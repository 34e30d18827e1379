package commands

import (
	"context"
	"strconv"

	"xenmanager/backend"
	"xenmanager/backend/agentapi"
)

func showVM(v backend.VM) *Result { return &Result{Props: vmProps(v)} }

func rowVM(v backend.VM) *Result { return &Result{Rows: []Row{{ID: v.ID, Name: v.Name}}} }

func verbStart() *VerbInfo {
	return &VerbInfo{Name: "start", Help: "Start an object.", Specs: []*Spec{{
		Type: "Vm", Instance: true, Attrs: []Attr{attrMultiple},
		Help: "Start a stopped VM on the pool's server with the most free memory that fits it.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			return vmAction(ctx, x, x.Backend.StartVM, showVM)
		},
	}}}
}

func verbStop() *VerbInfo {
	return &VerbInfo{Name: "stop", Help: "Stop an object cleanly.", Specs: []*Spec{
		{
			Type: "Vm", Instance: true, Attrs: []Attr{attrMultiple},
			Help: "Shut a running VM down cleanly.",
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				return vmAction(ctx, x, x.Backend.StopVM, showVM)
			},
		},
		{
			Type: "Server", Instance: true,
			Help: "Power a server off through its agent (sys_shutdown); refused while VMs run there. It stays Stopped until discovered again.",
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				s, err := x.Backend.StopServer(ctx, x.Ref())
				if err != nil {
					return nil, err
				}
				return &Result{Props: serverProps(s)}, nil
			},
		},
	}}
}

func verbDelete() *VerbInfo {
	return &VerbInfo{Name: "delete", Help: "Delete an object; what is in use is refused, naming what uses it.", Specs: []*Spec{
		{
			Type: "Vm", Instance: true, Attrs: []Attr{attrMultiple},
			Help: "Delete a stopped VM and its files in the repository.",
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				return vmAction(ctx, x, x.Backend.DeleteVM, rowVM)
			},
		},
		{
			Type: "Server", Instance: true, Help: "Forget a server that is in no pool, releasing its ownership.",
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				s, err := x.Backend.DeleteServer(ctx, x.Ref())
				return rowOf(s.ID, s.Name, err)
			},
		},
		{
			Type: "ServerPool", Instance: true, Help: "Delete an empty server pool.",
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				p, err := x.Backend.DeleteServerPool(ctx, x.Ref())
				return rowOf(p.ID, p.Name, err)
			},
		},
		{
			Type: "Repository", Instance: true, Help: "Forget a repository that holds no VMs; its servers unmount it and its files stay.",
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				r, err := x.Backend.DeleteRepository(ctx, x.Ref())
				return rowOf(r.ID, r.Name, err)
			},
		},
		{
			Type: "Network", Instance: true, Help: "Delete a network no VNIC uses.",
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				n, err := x.Backend.DeleteNetwork(ctx, x.Ref())
				return rowOf(n.ID, n.Name, err)
			},
		},
		deleteCdromSpec(),
		{
			Type: "VirtualDisk", Instance: true, Help: "Delete a disk no VM uses, and its image file.",
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				d, err := x.Backend.DeleteVirtualDisk(ctx, x.Ref())
				return rowOf(d.ID, d.Name, err)
			},
		},
		{
			Type: "Vnic", Instance: true, Help: "Remove a VNIC from its stopped VM.",
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				v, err := x.Backend.DeleteVnic(ctx, x.Ref())
				return rowOf(v.ID, v.Name, err)
			},
		},
		{
			Type: "Tag", Instance: true, Help: "Delete a tag; it comes off every object.",
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				t, err := x.Backend.DeleteTag(ctx, x.Ref())
				return rowOf(t.ID, t.Name, err)
			},
		},
		{
			Type: "User", Instance: true, Help: "Delete a user (not yourself, not the last Administrator).",
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				u, err := x.Backend.DeleteUser(ctx, x.Ref())
				return rowOf(u.ID, u.Name, err)
			},
		},
		{
			Type: "SshKey", Instance: true, Help: "Delete an SSH key (by id: list SshKey shows them).",
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				if x.Cmd.Instance == nil || !x.Cmd.Instance.ByID {
					return nil, failf(CodeMissingInstance, "SSH keys are named by id: delete SshKey id=<id> (list SshKey shows them)")
				}
				k, err := x.Backend.DeleteSSHKey(ctx, x.Cmd.Instance.Value)
				return rowOf(k.ID, k.Name, err)
			},
		},
	}}
}

// rowOf is the result of a command on one object: its id and name.
func rowOf(id, name string, err error) (*Result, error) {
	if err != nil {
		return nil, err
	}
	return &Result{Rows: []Row{{ID: id, Name: name}}}, nil
}

func verbAdd() *VerbInfo {
	return &VerbInfo{Name: "add", Help: "Add an object to another.", Specs: []*Spec{
		{
			Type: "Server", Instance: true,
			Help:   "Make a discovered server a member of a server pool: the first becomes master, the others join; it learns the pool's repositories.",
			Clause: &Clause{Prep: "to", Types: []string{"ServerPool"}, Required: true},
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				s, err := x.Backend.AddServerToPool(ctx, x.Ref(), x.TargetRef())
				return rowOf(s.ID, s.Name, err)
			},
		},
		addCdromSpec(),
		{
			Type: "VirtualDisk", Instance: true, Attrs: []Attr{{Name: "slot", Kind: AttrInt, Min: 0, Max: 63, Help: "the slot (0 is xvda; default: the first free one)"}},
			Help:   "Map a disk to a stopped VM (a VmDiskMapping); the VM's vm.cfg lists it.",
			Clause: &Clause{Prep: "to", Types: []string{"Vm"}, Required: true},
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				d, err := x.Backend.AddDiskToVM(ctx, x.Ref(), x.TargetRef(), slotAttr(x))
				return rowOf(d.ID, d.Name, err)
			},
		},
		{
			Type: "Tag", Instance: true,
			Help:   "Put a tag on an object (list <Type> tag=<name> finds them).",
			Clause: &Clause{Prep: "to", Types: []string{"Vm", "Server", "ServerPool", "Repository"}, Required: true},
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				t, err := x.Backend.TagObject(ctx, x.Ref(), x.Cmd.Target.Type, x.TargetRef(), false)
				return rowOf(t.ID, t.Name, err)
			},
		},
		{
			Type: "User", Instance: true,
			Help:   "Let a user see and act on a server pool's objects (Administrators see every pool).",
			Clause: &Clause{Prep: "to", Types: []string{"ServerPool"}, Required: true},
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				u, err := x.Backend.AddUserToPool(ctx, x.Ref(), x.TargetRef())
				return rowOf(u.ID, u.Name, err)
			},
		},
	}}
}

func verbRemove() *VerbInfo {
	return &VerbInfo{Name: "remove", Help: "Remove an object from another.", Specs: []*Spec{
		{
			Type: "Server", Instance: true,
			Help:   "Take a server out of its pool (leave_server_pool); refused while VMs run there.",
			Clause: &Clause{Prep: "from", Types: []string{"ServerPool"}, Required: true},
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				s, err := x.Backend.RemoveServerFromPool(ctx, x.Ref(), x.TargetRef())
				return rowOf(s.ID, s.Name, err)
			},
		},
		removeCdromSpec(),
		{
			Type: "VirtualDisk", Instance: true,
			Help:   "Unmap a disk from a stopped VM; the disk stays.",
			Clause: &Clause{Prep: "from", Types: []string{"Vm"}, Required: true},
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				d, err := x.Backend.RemoveDiskFromVM(ctx, x.Ref(), x.TargetRef())
				return rowOf(d.ID, d.Name, err)
			},
		},
		{
			Type: "Tag", Instance: true,
			Help:   "Take a tag off an object.",
			Clause: &Clause{Prep: "from", Types: []string{"Vm", "Server", "ServerPool", "Repository"}, Required: true},
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				t, err := x.Backend.TagObject(ctx, x.Ref(), x.Cmd.Target.Type, x.TargetRef(), true)
				return rowOf(t.ID, t.Name, err)
			},
		},
		{
			Type: "User", Instance: true,
			Help:   "Take a server pool away from a user.",
			Clause: &Clause{Prep: "from", Types: []string{"ServerPool"}, Required: true},
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				u, err := x.Backend.RemoveUserFromPool(ctx, x.Ref(), x.TargetRef())
				return rowOf(u.ID, u.Name, err)
			},
		},
	}}
}

func verbDiscoverServer() *VerbInfo {
	return &VerbInfo{Name: "discoverServer", Help: "Take a server under management through its agent.", Specs: []*Spec{{
		Help: "Contact the agent, pin its certificate, take ownership and record the hardware. Discovering a known server again updates its address, password and pin.",
		Attrs: []Attr{
			{Name: "ipAddress", Kind: AttrString, Required: true, Help: "the server's IP address or host name"},
			{Name: "password", Kind: AttrSecret, Required: true, Help: "the agent password"},
			{Name: "port", Kind: AttrInt, Min: 1, Max: 65535, Default: strconv.Itoa(agentapi.DefaultPort), Help: "the agent's HTTPS port"},
		},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			s, err := x.Backend.DiscoverServer(ctx, backendDiscover(x))
			if err != nil {
				return nil, err
			}
			return &Result{Rows: []Row{{ID: s.ID, Name: s.Name}}}, nil
		},
	}}}
}

func verbExit() *VerbInfo {
	return &VerbInfo{Name: "exit", Help: "End the session.", Specs: []*Spec{{
		Help: "End the session.",
		Run:  func(context.Context, *Exec) (*Result, error) { return &Result{Exit: true}, nil },
	}}}
}

func backendDiscover(x *Exec) backend.DiscoverRequest {
	return backend.DiscoverRequest{Address: x.Str("ipAddress"), Port: int(x.Int("port")), Password: x.Str("password")}
}
