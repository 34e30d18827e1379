package commands

import (
	"context"

	"xenmanager/backend"
)

// vmActionVerb declares an action on VMs (kill, restart, pause ...), one
// verb per action, all with multiple=Yes.
func vmActionVerb(name, verbHelp, specHelp string, op func(b *backend.Manager) func(context.Context, backend.Ref) (backend.VM, error)) *VerbInfo {
	return &VerbInfo{Name: name, Help: verbHelp, Specs: []*Spec{{
		Type: "Vm", Instance: true, Attrs: []Attr{attrMultiple}, Help: specHelp,
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			return vmAction(ctx, x, op(x.Backend), showVM)
		},
	}}}
}

func verbKill() *VerbInfo {
	return vmActionVerb("kill", "Stop an object at once (forced).", "Destroy a running or paused VM's domain at once, as pulling the power cord does.",
		func(b *backend.Manager) func(context.Context, backend.Ref) (backend.VM, error) { return b.KillVM })
}

func verbRestart() *VerbInfo {
	v := vmActionVerb("restart", "Restart an object.", "Reboot a running VM on the server it runs on.",
		func(b *backend.Manager) func(context.Context, backend.Ref) (backend.VM, error) { return b.RestartVM })
	v.Specs = append(v.Specs, &Spec{
		Type: "Server", Instance: true,
		Help: "Reboot a server through its agent (sys_reboot), refused while VMs run there; waits until it is back and rediscovered.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			s, err := x.Backend.RestartServer(ctx, x.Ref())
			if err != nil {
				return nil, err
			}
			return &Result{Props: serverProps(s)}, nil
		},
	})
	return v
}

func verbSuspend() *VerbInfo {
	return vmActionVerb("suspend", "Suspend an object to storage.", "Save a running VM's memory to its repository and free the server's memory; resume brings it back.",
		func(b *backend.Manager) func(context.Context, backend.Ref) (backend.VM, error) { return b.SuspendVM })
}

func verbResume() *VerbInfo {
	return vmActionVerb("resume", "Resume a suspended object.", "Restore a suspended VM from its saved memory, on the server placement picks.",
		func(b *backend.Manager) func(context.Context, backend.Ref) (backend.VM, error) { return b.ResumeVM })
}

func verbPause() *VerbInfo {
	return vmActionVerb("pause", "Pause an object in memory.", "Freeze a running VM; it keeps its memory on the server.",
		func(b *backend.Manager) func(context.Context, backend.Ref) (backend.VM, error) { return b.PauseVM })
}

func verbUnpause() *VerbInfo {
	return vmActionVerb("unpause", "Let a paused object run.", "Let a paused VM run again.",
		func(b *backend.Manager) func(context.Context, backend.Ref) (backend.VM, error) { return b.UnpauseVM })
}
