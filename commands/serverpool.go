package commands

import (
	"context"
	"fmt"
	"strconv"

	"xenmanager/backend"
)

// poolType is the ServerPool: servers that share repositories and networks.
var poolType = &objectType{
	Name: "ServerPool",
	List: &Spec{Help: "List server pools.", Attrs: []Attr{filterName}, Run: listedBy((*backend.Manager).ServerPools, poolRow)},
	Show: shownBy((*backend.Manager).ServerPool, poolProps),
}

func poolRow(p backend.ServerPool) Row {
	return Row{ID: p.ID, Name: p.Name, Cols: []Prop{
		{"servers", strconv.Itoa(len(p.Servers))}, {"repositories", strconv.Itoa(len(p.Repositories))},
		{"vms", strconv.Itoa(p.VMs)}}}
}

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

func createPoolSpec() *Spec {
	return &Spec{
		Type: "ServerPool", Help: "Create an empty server pool; add servers to it with 'add Server ... to ServerPool ...'.",
		Attrs: []Attr{
			{Name: "name", Kind: AttrString, Required: true, Help: "the pool's name"},
			{Name: "description", Kind: AttrString, Help: "free text"},
		},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			p, err := x.Backend.CreateServerPool(ctx, x.Str("name"), x.Str("description"))
			return rowOf(p.ID, p.Name, err)
		},
	}
}

func editPoolSpec() *Spec {
	return &Spec{
		Type: "ServerPool", Instance: true, Help: "Rename a pool, or change its description or start policy.",
		Attrs: []Attr{
			{Name: "name", Kind: AttrString, Help: "a new name"},
			{Name: "description", Kind: AttrString, Help: "free text"},
			{Name: "startPolicy", Kind: AttrEnum, Enum: backend.StartPolicies[:2], Help: "placement of VMs whose startPolicy is USE_POOL_POLICY"},
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
	}
}

func deletePoolSpec() *Spec {
	return &Spec{
		Type: "ServerPool", Instance: true, Help: "Delete an empty server pool.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			p, err := x.Backend.DeleteServerPool(ctx, x.Ref())
			return rowOf(p.ID, p.Name, err)
		},
	}
}

func refreshPoolSpec() *Spec {
	return &Spec{
		Type: "ServerPool", Instance: true,
		Help: "Refresh every server of a pool at once, one result line per server.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			out, err := x.Backend.RefreshServerPool(ctx, x.Ref())
			if out == nil {
				return nil, err
			}
			res := &Result{Rows: make([]Row, len(out))}
			failed, first := 0, error(nil)
			for i, r := range out {
				result := fmt.Sprintf("Success (%d Vms changed)", r.Result.VMsChanged)
				if r.Err != nil {
					result = fmt.Sprintf("%s: %s", codeFor(r.Err), backend.Message(r.Err))
					failed++
					if first == nil {
						first = r.Err
					}
				}
				res.Rows[i] = Row{ID: r.Server.ID, Name: r.Server.Name, Cols: []Prop{{resultCol, result}}}
			}
			if failed > 0 {
				return res, &multiError{failed: failed, total: len(out), first: first}
			}
			return res, nil
		},
	}
}
