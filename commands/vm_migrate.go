package commands

import (
	"context"
	"strconv"
	"sync"

	"xenmanager/backend"
)

func verbMigrate() *VerbInfo {
	return &VerbInfo{Name: "migrate", Help: "Move an object to another server.", Specs: []*Spec{{
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
				props := vmProps(v)
				if last.Live {
					props = append(props, migrationProps(last)...)
				}
				return &Result{Props: props}
			})
		},
	}}}
}

func migrationProps(m backend.Migration) []Prop {
	return []Prop{{"Migrated From", ref(m.From)}, {"Migrated To", ref(m.To)}, {"Rounds", strconv.FormatInt(m.Rounds, 10)},
		{"Bytes Sent", strconv.FormatInt(m.BytesSent, 10)}, {"Downtime (ms)", strconv.FormatInt(m.DowntimeMS, 10)},
		{"Converged", yesNo(m.Converged)}}
}
