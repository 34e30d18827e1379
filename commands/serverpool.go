package commands

import (
	"context"
	"fmt"

	"xenmanager/backend"
)

// poolType is the ServerPool: servers that share repositories and networks.
var poolType = &objectType{
	Name:       "ServerPool",
	List:       &Spec{Help: "List server pools.", Attrs: []Attr{filterName}, Run: listedBy((*backend.Manager).ServerPools, poolRow)},
	Show:       shownBy((*backend.Manager).ServerPool, poolFields),
	ShowFields: fieldsOf(poolFields),
	ListFields: rowFieldsOf(poolRow),
}

func poolRow(p backend.ServerPool) Row {
	return Row{ID: p.ID, Name: p.Name, Fields: []Field{
		intField("servers", "serverCount", int64(len(p.Servers))), intField("repositories", "repositoryCount", int64(len(p.Repositories))),
		intField("vms", "vmCount", int64(p.VMs))}}
}

// poolFields print the pool's servers and repositories one line each in
// the text form (Server 1, Server 2 ...), as Oracle VM does, and as two
// arrays in the machine form.
func poolFields(p backend.ServerPool) []Field {
	fields := []Field{strField("Name", "name", p.Name), strField("Id", "id", p.ID), strField("Description", "description", p.Description)}
	for i, s := range p.Servers {
		fields = append(fields, refField(fmt.Sprintf("Server %d", i+1), "", s).textOnly())
	}
	fields = append(fields, refsField("", "servers", p.Servers).machineOnly())
	for i, r := range p.Repositories {
		fields = append(fields, refField(fmt.Sprintf("Repository %d", i+1), "", r).textOnly())
	}
	fields = append(fields, refsField("", "repositories", p.Repositories).machineOnly())
	fields = append(fields, refField("Master Server", "masterServer", p.Master), strField("Start Policy", "startPolicy", p.StartPolicy),
		intField("Vms", "vmCount", int64(p.VMs)), boolField("High Availability", "highAvailability", p.HA.Enabled),
		refField("HA Repository", "haRepository", p.HA.Repository))
	return append(fields, strField("HA Renew Interval", "haRenewInterval", p.HA.Renew.String()),
		strField("HA Fence Timeout", "haFenceTimeout", p.HA.Fence.String()),
		strField("HA Restart Margin", "haRestartMargin", p.HA.Margin.String()))
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
		Type: "ServerPool", Instance: true, Help: "Rename a pool, change its description or start policy, or turn its high availability on or off.",
		Attrs: []Attr{
			{Name: "name", Kind: AttrString, Help: "a new name"},
			{Name: "description", Kind: AttrString, Help: "free text"},
			{Name: "startPolicy", Kind: AttrEnum, Enum: backend.StartPolicies[:2], Help: "placement of VMs whose startPolicy is USE_POOL_POLICY"},
			{Name: "highAvailability", Kind: AttrYesNo, Help: "Yes: the pool's servers keep leases in its HA repository and fence themselves when they lose them, and the manager restarts the HA VMs of a dead server elsewhere"},
			{Name: "haRepository", Kind: AttrObject, Object: "Repository", Help: "the pool's repository where its servers keep their leases (needed for highAvailability=Yes)"},
			{Name: "haRenewInterval", Kind: AttrString, Default: backend.DefaultHARenew.String(), Help: "how often each server renews its lease (seconds, or a duration such as 500ms)"},
			{Name: "haFenceTimeout", Kind: AttrString, Default: backend.DefaultHAFence.String(), Help: "a server that has not renewed its lease for this long stops its VMs itself (at least 3 renewals)"},
			{Name: "haRestartMargin", Kind: AttrString, Default: backend.DefaultHAMargin.String(), Help: "how long after the fence timeout the manager waits before it restarts a dead server's HA VMs elsewhere"},
		},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			if err := needSomething(x); err != nil {
				return nil, err
			}
			e := backend.PoolEdit{Name: optStr(x, "name"), Description: optStr(x, "description"), StartPolicy: optStr(x, "startPolicy"),
				HA: backend.HAChange{Enabled: optBool(x, "highAvailability"), RenewInterval: optStr(x, "haRenewInterval"),
					FenceTimeout: optStr(x, "haFenceTimeout"), Margin: optStr(x, "haRestartMargin")}}
			if r := optStr(x, "haRepository"); r != nil {
				ref := objectRef(*r)
				e.HA.Repository = &ref
			}
			p, err := x.Backend.EditServerPool(ctx, x.Ref(), e)
			if err != nil {
				return nil, err
			}
			return &Result{Fields: poolFields(p)}, nil
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
				fields := outcomeFields(fmt.Sprintf("Success (%d Vms changed)", r.Result.VMsChanged), r.Err)
				if r.Err != nil {
					failed++
					if first == nil {
						first = r.Err
					}
				} else {
					fields = append(fields, intField("", "vmsChanged", int64(r.Result.VMsChanged)).machineOnly())
				}
				res.Rows[i] = Row{ID: r.Server.ID, Name: r.Server.Name, Fields: fields}
			}
			if failed > 0 {
				return res, &multiError{failed: failed, total: len(out), first: first}
			}
			return res, nil
		},
	}
}
