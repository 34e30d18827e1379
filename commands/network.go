package commands

import (
	"context"

	"xenmanager/backend"
)

// networkType is the Network of a pool: VNICs on it attach to its bridge on
// every server of the pool.
var networkType = &objectType{
	Name: "Network",
	List: &Spec{Help: "List networks.", Attrs: []Attr{filterName, filterServerPool},
		Run: listedBy((*backend.Manager).Networks, networkRow)},
	Show:       shownBy((*backend.Manager).Network, networkFields),
	ShowFields: fieldsOf(networkFields),
	ListFields: rowFieldsOf(networkRow),
	RenameHelp: "Rename a network or change its description.",
}

func networkRow(n backend.Network) Row {
	return Row{ID: n.ID, Name: n.Name, Fields: []Field{refCol("serverPool", "serverPool", n.Pool), strField("bridge", "bridge", n.Bridge),
		intField("vnics", "vnicCount", int64(n.Vnics))}}
}

func networkFields(n backend.Network) []Field {
	return []Field{strField("Name", "name", n.Name), strField("Id", "id", n.ID), refField("Server Pool", "serverPool", n.Pool),
		strField("Bridge", "bridge", n.Bridge), strField("Description", "description", n.Description), intField("Vnics", "vnicCount", int64(n.Vnics))}
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

func deleteNetworkSpec() *Spec {
	return &Spec{
		Type: "Network", Instance: true, Help: "Delete a network no VNIC uses.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			n, err := x.Backend.DeleteNetwork(ctx, x.Ref())
			return rowOf(n.ID, n.Name, err)
		},
	}
}
