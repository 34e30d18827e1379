package commands

import (
	"context"

	"xenmanager/backend"
)

// This file holds the VM lifecycle verbs: start, stop, kill, restart,
// suspend, resume, pause, unpause (stop and restart also act on servers).

// vmOp is a VM action of the backend, as a method expression
// ((*backend.Manager).StartVM).
type vmOp func(*backend.Manager, context.Context, backend.Ref) (backend.VM, error)

// vmActionVerb declares an action on VMs (kill, restart, pause ...), one
// verb per action, all with multiple=Yes and list's filters (selecting).
func vmActionVerb(name, verbHelp, specHelp string, op vmOp) *VerbInfo {
	return &VerbInfo{Name: name, Help: verbHelp, Specs: []*Spec{selecting(&Spec{
		Type: "Vm", Instance: true, Attrs: []Attr{attrMultiple}, Help: specHelp,
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			return vmAction(ctx, x, op, showVM)
		},
	})}}
}

func verbStart() *VerbInfo {
	return vmActionVerb("start", "Start an object.", "Start a stopped VM on the pool's server with the most free memory that fits it.",
		(*backend.Manager).StartVM)
}

func verbStop() *VerbInfo {
	v := vmActionVerb("stop", "Stop an object cleanly.",
		"Shut a running VM down cleanly. force=Yes stops a running or paused VM at once (as kill); on a server that does not answer (Unreachable, Stopped) it records the VM Stopped without reaching the server, on your word that the server is off.",
		(*backend.Manager).StopVM)
	stopVM := v.Specs[0]
	stopVM.Attrs = append(stopVM.Attrs, Attr{Name: "force", Kind: AttrYesNo, Default: "No",
		Help: "Yes: stop at once (kill); on a server that does not answer, state that it is off and record the VM Stopped without reaching it (an event names you)"})
	stopVM.Run = func(ctx context.Context, x *Exec) (*Result, error) {
		op := vmOp((*backend.Manager).StopVM)
		if x.Str("force") == "Yes" {
			op = (*backend.Manager).ForceStopVM
		}
		return vmAction(ctx, x, op, showVM)
	}
	v.Specs = append(v.Specs, stopServerSpec())
	return v
}

func verbKill() *VerbInfo {
	return vmActionVerb("kill", "Stop an object at once (forced).", "Destroy a running or paused VM's domain at once, as pulling the power cord does.",
		(*backend.Manager).KillVM)
}

func verbRestart() *VerbInfo {
	v := vmActionVerb("restart", "Restart an object.", "Reboot a running VM on the server it runs on.",
		(*backend.Manager).RestartVM)
	v.Specs = append(v.Specs, restartServerSpec())
	return v
}

func verbSuspend() *VerbInfo {
	return vmActionVerb("suspend", "Suspend an object to storage.", "Save a running VM's memory to its repository and free the server's memory; resume brings it back.",
		(*backend.Manager).SuspendVM)
}

func verbResume() *VerbInfo {
	return vmActionVerb("resume", "Resume a suspended object.", "Restore a suspended VM from its saved memory, on the server placement picks.",
		(*backend.Manager).ResumeVM)
}

func verbPause() *VerbInfo {
	return vmActionVerb("pause", "Pause an object in memory.", "Freeze a running VM; it keeps its memory on the server.",
		(*backend.Manager).PauseVM)
}

func verbUnpause() *VerbInfo {
	return vmActionVerb("unpause", "Let a paused object run.", "Let a paused VM run again.",
		(*backend.Manager).UnpauseVM)
}
