package commands

import (
	"context"
	"fmt"

	"xenmanager/backend"
)

// antiAffinityType is the AntiAffinityGroup of a pool: VMs of the pool that
// placement never puts two of on one server (start, resume, migrate, HA
// restart), as in Oracle VM.
var antiAffinityType = &objectType{
	Name: "AntiAffinityGroup",
	List: &Spec{Help: "List anti-affinity groups.", Attrs: []Attr{filterName, filterServerPool},
		Run: listedBy((*backend.Manager).AntiAffinityGroups, antiAffinityRow)},
	Show:       shownBy((*backend.Manager).AntiAffinityGroup, antiAffinityFields),
	ShowFields: fieldsOf(antiAffinityFields),
	ListFields: rowFieldsOf(antiAffinityRow),
	RenameHelp: "Rename an anti-affinity group or change its description.",
}

func antiAffinityRow(g backend.AntiAffinityGroup) Row {
	return Row{ID: g.ID, Name: g.Name, Fields: []Field{refCol("serverPool", "serverPool", g.Pool),
		intField("vms", "vmCount", int64(len(g.Members))), intField("sharing", "sharingServerCount", int64(len(g.Together)))}}
}

// antiAffinityFields print the members one line each in the text form (Vm
// 1, Vm 2 ...), as show ServerPool prints its servers, and as an array in
// the machine form; then where each runs, and the servers that members
// share (added while they shared it: the manager does not move them).
func antiAffinityFields(g backend.AntiAffinityGroup) []Field {
	fields := []Field{strField("Name", "name", g.Name), strField("Id", "id", g.ID), refField("Server Pool", "serverPool", g.Pool),
		strField("Description", "description", g.Description)}
	vms := make([]backend.NamedRef, len(g.Members))
	placement := make([]string, len(g.Members))
	for i, mb := range g.Members {
		vms[i] = mb.VM
		fields = append(fields, refField(fmt.Sprintf("Vm %d", i+1), "", mb.VM).textOnly())
		placement[i] = mb.VM.Name + " " + mb.Status
		if mb.Server.ID != "" {
			placement[i] += " on " + mb.Server.Name
		}
	}
	return append(fields, refsField("", "vms", vms).machineOnly(), intField("Vms", "vmCount", int64(len(g.Members))),
		stringsField("Placement", "placement", placement, ", "),
		stringsField("Sharing a Server", "sharingServers", g.Together, "; "))
}

func createAntiAffinitySpec() *Spec {
	return &Spec{
		Type: "AntiAffinityGroup",
		Help: "Create an anti-affinity group of a pool; its members (add Vm ... to AntiAffinityGroup ...) never run two on one server.",
		Attrs: []Attr{
			{Name: "name", Kind: AttrString, Required: true, Help: "the group's name"},
			{Name: "description", Kind: AttrString, Help: "free text"},
		},
		Clause: &Clause{Prep: "on", Types: []string{"ServerPool"}, Required: true},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			g, err := x.Backend.CreateAntiAffinityGroup(ctx, x.Str("name"), x.Str("description"), x.TargetRef())
			return rowOf(g.ID, g.Name, err)
		},
	}
}

func deleteAntiAffinitySpec() *Spec {
	return &Spec{
		Type: "AntiAffinityGroup", Instance: true, Help: "Delete an anti-affinity group that has no members (remove them first).",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			g, err := x.Backend.DeleteAntiAffinityGroup(ctx, x.Ref())
			return rowOf(g.ID, g.Name, err)
		},
	}
}

func addVMSpec() *Spec {
	return &Spec{
		Type: "Vm", Instance: true,
		Help: "Make a VM a member of an anti-affinity group of its pool. A running VM that shares a server with a member stays there " +
			"(a Warning event and show AntiAffinityGroup say so); placement keeps them apart from then on.",
		Clause: &Clause{Prep: "to", Types: []string{"AntiAffinityGroup"}, Required: true},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			g, err := x.Backend.AddVMToAntiAffinityGroup(ctx, x.Ref(), x.TargetRef())
			if err != nil {
				return nil, err
			}
			return &Result{Fields: antiAffinityFields(g)}, nil
		},
	}
}

func removeVMSpec() *Spec {
	return &Spec{
		Type: "Vm", Instance: true, Help: "Take a VM out of an anti-affinity group.",
		Clause: &Clause{Prep: "from", Types: []string{"AntiAffinityGroup"}, Required: true},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			g, err := x.Backend.RemoveVMFromAntiAffinityGroup(ctx, x.Ref(), x.TargetRef())
			if err != nil {
				return nil, err
			}
			return &Result{Fields: antiAffinityFields(g)}, nil
		},
	}
}
