package commands

import (
	"context"
	"fmt"

	"xenmanager/backend"
	"xenmanager/backend/agentapi/importnet"
)

// managerType is the Manager: the manager answering, so show takes no
// instance (its settings are every manager's of the database); list shows
// every manager process serving the database, which are alive and which
// leads. backup copies its database.
var managerType = &objectType{
	Name: "Manager", Single: true,
	List: &Spec{Help: "List the manager processes that serve the database or did: which are alive, which one leads the fleet-wide work.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			members, err := x.Backend.Members(ctx)
			if err != nil {
				return nil, err
			}
			return rowsOf(members, memberRow), nil
		}},
	ListFields: rowFieldsOf(memberRow),
	Show: func(ctx context.Context, x *Exec) ([]Field, error) {
		mi, err := x.Backend.Info(ctx)
		if err != nil {
			return nil, err
		}
		return managerFields(mi), nil
	},
	ShowFields: fieldsOf(managerFields),
}

// memberRow is a manager process in list Manager: its row's id is the
// member id, its name the host it runs on.
func memberRow(mm backend.ManagerMember) Row {
	return Row{ID: mm.ID, Name: mm.Hostname, Fields: []Field{strField("address", "address", mm.Address),
		intField("pid", "pid", int64(mm.PID)), strField("version", "version", mm.Version),
		timeField("started", "started", mm.Started), timeField("last seen", "lastSeen", mm.LastSeen),
		boolField("alive", "alive", mm.Alive), boolField("leader", "leader", mm.Leader), intField("term", "term", mm.Term),
		boolField("this", "thisManager", mm.This)}}
}

func managerFields(mi backend.ManagerInfo) []Field {
	return []Field{strField("Name", "name", mi.Name), strField("Id", "id", mi.ID), strField("Version", "version", Version),
		strField("Agent API Version", "agentApiVersion", backend.AgentAPIVersion), timeField("Started", "started", mi.Started),
		strField("Member Id", "memberId", mi.Member.ID), strField("Hostname", "hostname", mi.Member.Hostname),
		strField("Address", "address", mi.Member.Address), boolField("Leader", "leader", mi.Member.Leader),
		strField("Leader Member Id", "leaderMemberId", mi.LeaderID),
		intField("Server Pools", "serverPoolCount", int64(mi.Pools)), intField("Servers", "serverCount", int64(mi.Servers)),
		intField("Vms", "vmCount", int64(mi.VMs)), intField("Running Jobs", "runningJobCount", int64(mi.RunningJobs)),
		intField("Waiting Audit Records", "waitingAuditRecordCount", int64(mi.Audit.Waiting)),
		intField("Lost Audit Records", "lostAuditRecordCount", mi.Audit.Lost),
		stringsField("Import Allowed Networks", "importAllowedNetworks", importnet.Strings(mi.Settings.ImportAllowedNetworks), ","),
		intField("Evacuation Parallelism", "evacuationParallelism", int64(mi.Settings.EvacuationParallelism)),
		intField("Clone Parallelism per Server", "cloneParallelismPerServer", int64(mi.Settings.CloneParallelismPerServer)),
		intField("Clone Parallelism per Repository", "cloneParallelismPerRepository", int64(mi.Settings.CloneParallelismPerRepository)),
		intField("Password Cache Seconds", "passwordCacheSeconds", int64(mi.Settings.PasswordCacheSeconds))}
}

// backupFields are what backup prints: where the copy is, its size and time.
func backupFields(b backend.BackupInfo) []Field {
	return []Field{strField("Path", "path", b.Path), intField("Size (bytes)", "sizeBytes", b.Bytes), timeField("Time", "time", b.At)}
}

// editManagerSpec declares edit Manager: the manager's policy settings,
// with no instance since there is one manager.
func editManagerSpec() *Spec {
	return &Spec{
		Type: "Manager", Help: "Change the manager's settings (Administrators).",
		Attrs: []Attr{
			{Name: "importAllowedNetworks", Kind: AttrString,
				Help: "networks in CIDR form, comma-separated, where imports may reach loopback, link-local, private and shared addresses and the servers' and the manager's own; \"\" for none (the default)"},
			{Name: "evacuationParallelism", Kind: AttrInt, Min: backend.MinEvacuationParallelism, Max: backend.MaxEvacuationParallelism,
				Help: "how many VMs edit Server maintenanceMode=Yes migrates off the server at once (4 by default)"},
			{Name: "cloneParallelismPerServer", Kind: AttrInt, Min: backend.MinEvacuationParallelism, Max: backend.MaxEvacuationParallelism,
				Help: "how many copies of clones run at once on one server, whatever commands they belong to (4 by default)"},
			{Name: "cloneParallelismPerRepository", Kind: AttrInt, Min: backend.MinEvacuationParallelism, Max: backend.MaxEvacuationParallelism,
				Help: "how many copies of clones run at once into or out of one repository (8 by default)"},
			{Name: "passwordCacheSeconds", Kind: AttrInt, Min: 0, Max: backend.MaxPasswordCacheSeconds,
				Help: fmt.Sprintf("how long a password that passed its check is remembered (as a keyed hash, in memory only), so that the same user's "+
					"logins with it within that time skip bcrypt; 0 remembers none (%d by default)", backend.DefaultPasswordCacheSeconds)},
		},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			if err := needSomething(x); err != nil {
				return nil, err
			}
			mi, err := x.Backend.EditManager(ctx, backend.EditManagerRequest{ImportAllowedNetworks: optStr(x, "importAllowedNetworks"),
				EvacuationParallelism: optInt(x, "evacuationParallelism"), CloneParallelismPerServer: optInt(x, "cloneParallelismPerServer"),
				CloneParallelismPerRepository: optInt(x, "cloneParallelismPerRepository"), PasswordCacheSeconds: optInt(x, "passwordCacheSeconds")})
			if err != nil {
				return nil, err
			}
			return &Result{Fields: managerFields(mi)}, nil
		},
	}
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
