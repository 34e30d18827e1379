package backend

import (
	"strings"

	"xenmanager/backend/agentapi"
)

// What the hypervisor does with a VM's domain when its guest crashes
// (restartActionOnCrash), as Oracle VM names it.
const (
	OnCrashRestart         = "Restart"
	OnCrashDestroy         = "Destroy"
	OnCrashPreserve        = "Preserve"
	OnCrashCoredumpRestart = "CoredumpRestart"
	OnCrashCoredumpDestroy = "CoredumpDestroy"
)

// RestartActionsOnCrash are the values of restartActionOnCrash, the
// default first; the command language declares its enumeration from them.
var RestartActionsOnCrash = []string{OnCrashRestart, OnCrashDestroy, OnCrashPreserve, OnCrashCoredumpRestart, OnCrashCoredumpDestroy}

// crashActionWire is vm.cfg's on_crash for each restartActionOnCrash.
var crashActionWire = map[string]string{
	OnCrashRestart:         agentapi.CrashRestart,
	OnCrashDestroy:         agentapi.CrashDestroy,
	OnCrashPreserve:        agentapi.CrashPreserve,
	OnCrashCoredumpRestart: agentapi.CrashCoredumpRestart,
	OnCrashCoredumpDestroy: agentapi.CrashCoredumpDestroy,
}

// onCrashWire checks a restartActionOnCrash and returns its vm.cfg
// on_crash.
func onCrashWire(action string) (string, error) {
	if w, ok := crashActionWire[action]; ok {
		return w, nil
	}
	return "", errorf(KindInvalidArgument, "restartActionOnCrash %q is not one of %s", action, strings.Join(RestartActionsOnCrash, ", "))
}

// restartsOnCrash reports whether a crash of a VM with restartActionOnCrash
// action boots a new domain on its server at once.
func restartsOnCrash(action string) bool {
	return action == OnCrashRestart || action == OnCrashCoredumpRestart
}
