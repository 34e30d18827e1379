package commands

import (
	"context"
	"strconv"

	"xenmanager/backend"
)

// managerType is the Manager: this manager, the only one, so show takes no
// instance. backup copies its database.
var managerType = &objectType{
	Name: "Manager", Single: true,
	List: &Spec{Help: "List the manager.", Run: func(ctx context.Context, x *Exec) (*Result, error) {
		mi, err := x.Backend.Info(ctx)
		return rowOf(mi.ID, mi.Name, err)
	}},
	Show: func(ctx context.Context, x *Exec) ([]Prop, error) {
		mi, err := x.Backend.Info(ctx)
		if err != nil {
			return nil, err
		}
		return managerProps(mi), nil
	},
}

func managerProps(mi backend.ManagerInfo) []Prop {
	return []Prop{{"Name", mi.Name}, {"Id", mi.ID}, {"Version", Version}, {"Agent API Version", backend.AgentAPIVersion},
		{"Started", mi.Started.Format(timeLayout)}, {"Server Pools", strconv.Itoa(mi.Pools)}, {"Servers", strconv.Itoa(mi.Servers)},
		{"Vms", strconv.Itoa(mi.VMs)}, {"Running Jobs", strconv.Itoa(mi.RunningJobs)}}
}

func verbBackup() *VerbInfo {
	return &VerbInfo{Name: "backup", Help: "Copy the manager's database while it runs (Administrators).", Specs: []*Spec{{
		Help: "Write a consistent copy of the database into the backups directory beside it; the manager can be started on the copy as it is.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			b, err := x.Backend.Backup(ctx)
			if err != nil {
				return nil, err
			}
			return &Result{Props: []Prop{{"Path", b.Path}, {"Size (bytes)", itoa(b.Bytes)}, {"Time", b.At.Format(timeLayout)}}}, nil
		},
	}}}
}
