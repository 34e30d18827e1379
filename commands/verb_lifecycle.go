package commands

import (
	"context"

	"xenmanager/backend"
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
	return &VerbInfo{Name: "stop", Help: "Stop an object cleanly.", Specs: []*Spec{{
		Type: "Vm", Instance: true, Attrs: []Attr{attrMultiple},
		Help: "Shut a running VM down cleanly.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			return vmAction(ctx, x, x.Backend.StopVM, showVM)
		},
	}}}
}

func verbDelete() *VerbInfo {
	return &VerbInfo{Name: "delete", Help: "Delete an object.", Specs: []*Spec{{
		Type: "Vm", Instance: true, Attrs: []Attr{attrMultiple},
		Help: "Delete a stopped VM and its files in the repository.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			return vmAction(ctx, x, x.Backend.DeleteVM, rowVM)
		},
	}}}
}

func verbAdd() *VerbInfo {
	return &VerbInfo{Name: "add", Help: "Add an object to another.", Specs: []*Spec{{
		Type: "Server", Instance: true,
		Help:   "Make a discovered server a member of a server pool; it learns the pool's repositories.",
		Clause: &Clause{Prep: "to", Types: []string{"ServerPool"}, Required: true},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			s, err := x.Backend.AddServerToPool(ctx, x.Ref(), x.TargetRef())
			if err != nil {
				return nil, err
			}
			return &Result{Rows: []Row{{ID: s.ID, Name: s.Name}}}, nil
		},
	}}}
}

func verbDiscoverServer() *VerbInfo {
	return &VerbInfo{Name: "discoverServer", Help: "Take a server under management through its agent.", Specs: []*Spec{{
		Help: "Contact the agent, pin its certificate, take ownership and record the hardware. Discovering a known server again updates its address, password and pin.",
		Attrs: []Attr{
			{Name: "ipAddress", Kind: AttrString, Required: true, Help: "the server's IP address or host name"},
			{Name: "password", Kind: AttrSecret, Required: true, Help: "the agent password"},
			{Name: "port", Kind: AttrInt, Min: 1, Max: 65535, Default: "8899", Help: "the agent's HTTPS port"},
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
