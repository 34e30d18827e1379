package commands

import (
	"context"
	"strings"

	"xenmanager/backend"
)

// vnicType is the Vnic: a VM's network interface on a Network.
var vnicType = &objectType{
	Name: "Vnic",
	List: &Spec{Help: "List VNICs.", Attrs: []Attr{{Name: "name", Kind: AttrString, Help: "only VNICs with this name"},
		{Name: "vm", Kind: AttrObject, Object: "Vm", Help: "only this VM's VNICs"}}, Run: runListVnics},
	Show:       shownBy((*backend.Manager).Vnic, vnicFields),
	ShowFields: fieldsOf(vnicFields),
	ListFields: rowFieldsOf(vnicRow),
	RenameHelp: "Rename a VNIC.",
}

func vnicFields(v backend.Vnic) []Field {
	return []Field{strField("Name", "name", v.Name), strField("Id", "id", v.ID), strField("Mac Address", "mac", v.MAC),
		refField("Vm", "vm", v.Vm), refField("Network", "network", v.Network)}
}

func vnicRow(v backend.Vnic) Row {
	return Row{ID: v.ID, Name: v.Name, Fields: []Field{refCol("vm", "vm", v.Vm), refCol("network", "network", v.Network), strField("mac", "mac", v.MAC)}}
}

func runListVnics(ctx context.Context, x *Exec) (*Result, error) {
	l, err := x.Backend.StreamVnics(ctx, objectRef(x.Str("vm")))
	if err != nil {
		return nil, err
	}
	n := x.Str("name")
	return streamedRows(l, func(v backend.Vnic) bool { return n == "" || n == v.Name }, vnicRow), nil
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

func deleteVnicSpec() *Spec {
	return &Spec{
		Type: "Vnic", Instance: true, Help: "Remove a VNIC from its stopped VM.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			v, err := x.Backend.DeleteVnic(ctx, x.Ref())
			return rowOf(v.ID, v.Name, err)
		},
	}
}
