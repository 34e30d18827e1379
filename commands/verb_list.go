package commands

import (
	"context"
)

func verbList() *VerbInfo {
	v := &VerbInfo{Name: "list", Help: "List the objects of a type, one '  id:<id>  name:<name>' row each."}
	for _, typ := range ObjectTypes {
		v.Specs = append(v.Specs, &Spec{Type: typ, Help: "List every " + typ + ".", Run: runList})
	}
	return v
}

func runList(ctx context.Context, x *Exec) (*Result, error) {
	res := &Result{}
	b := x.Backend
	switch x.Cmd.Spec.Type {
	case "ServerPool":
		pools, err := b.ServerPools(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range pools {
			res.Rows = append(res.Rows, Row{ID: p.ID, Name: p.Name})
		}
	case "Server":
		servers, err := b.Servers(ctx)
		if err != nil {
			return nil, err
		}
		for _, s := range servers {
			res.Rows = append(res.Rows, Row{ID: s.ID, Name: s.Name})
		}
	case "Repository":
		repos, err := b.Repositories(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range repos {
			res.Rows = append(res.Rows, Row{ID: r.ID, Name: r.Name})
		}
	case "Vm":
		vms, err := b.VMs(ctx)
		if err != nil {
			return nil, err
		}
		for _, v := range vms {
			res.Rows = append(res.Rows, Row{ID: v.ID, Name: v.Name})
		}
	}
	return res, nil
}
