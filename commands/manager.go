package commands

import (
	"context"

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
	Show: func(ctx context.Context, x *Exec) ([]Field, error) {
		mi, err := x.Backend.Info(ctx)
		if err != nil {
			return nil, err
		}
		return managerFields(mi), nil
	},
	ShowFields: fieldsOf(managerFields),
}

func managerFields(mi backend.ManagerInfo) []Field {
	return []Field{strField("Name", "name", mi.Name), strField("Id", "id", mi.ID), strField("Version", "version", Version),
		strField("Agent API Version", "agentApiVersion", backend.AgentAPIVersion), timeField("Started", "started", mi.Started),
		intField("Server Pools", "serverPoolCount", int64(mi.Pools)), intField("Servers", "serverCount", int64(mi.Servers)),
		intField("Vms", "vmCount", int64(mi.VMs)), intField("Running Jobs", "runningJobCount", int64(mi.RunningJobs))}
}

// backupFields are what backup prints: where the copy is, its size and time.
func backupFields(b backend.BackupInfo) []Field {
	return []Field{strField("Path", "path", b.Path), intField("Size (bytes)", "sizeBytes", b.Bytes), timeField("Time", "time", b.At)}
}

func verbBackup() *VerbInfo {
	return &VerbInfo{Name: "backup", Help: "Copy the manager's database while it runs (Administrators).", Specs: []*Spec{{
		Help: "Write a consistent copy of the database into the backups directory beside it; the manager can be started on the copy as it is.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			b, err := x.Backend.Backup(ctx)
			if err != nil {
				return nil, err
			}
			return &Result{Fields: backupFields(b)}, nil
		},
	}}}
}
