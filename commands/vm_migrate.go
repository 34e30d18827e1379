package commands

import (
	"context"
	"sync"

	"xenmanager/backend"
)

func verbMigrate() *VerbInfo {
	return &VerbInfo{Name: "migrate", Help: "Move an object to another server.", Specs: []*Spec{selecting(&Spec{
		Type: "Vm", Instance: true,
		Attrs: []Attr{
			{Name: "destServer", Kind: AttrObject, Object: "Server", Help: "the server to move to (default: placement picks one other than the current)"},
			attrMultiple,
		},
		Help: "Live-migrate a running VM to another server of its pool (it runs there only once its memory is verified, and stays on the source on any failure); for a stopped VM, record the server it should start on.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			dest := objectRef(x.Str("destServer"))
			var mu sync.Mutex // guards last: multi-object actions migrate in parallel
			var last backend.Migration
			return vmAction(ctx, x, func(b *backend.Manager, ctx context.Context, ref backend.Ref) (backend.VM, error) {
				v, mig, err := b.MigrateVM(ctx, ref, dest)
				mu.Lock()
				last = mig
				mu.Unlock()
				return v, err
			}, func(v backend.VM) *Result {
				mu.Lock()
				defer mu.Unlock()
				fields := vmFields(v)
				if last.Live {
					fields = append(fields, migrationFields(last)...)
				}
				return &Result{Fields: fields}
			})
		},
	})}}
}

// migrationFields follow a live migration's VM: how the move went.
func migrationFields(m backend.Migration) []Field {
	return []Field{refField("Migrated From", "migratedFrom", m.From), refField("Migrated To", "migratedTo", m.To),
		intField("Rounds", "rounds", m.Rounds), intField("Bytes Sent", "bytesSent", m.BytesSent),
		intField("Downtime (ms)", "downtimeMs", m.DowntimeMS), boolField("Converged", "converged", m.Converged)}
}
