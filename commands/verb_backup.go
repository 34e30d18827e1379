package commands

import "context"

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
