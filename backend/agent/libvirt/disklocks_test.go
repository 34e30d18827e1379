package libvirt

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"

	"xenmanager/backend/agentapi"
)

// What counts as a start refused for locked disks: libvirt's lock
// manager's resource-busy error, and QEMU's image-locking refusal as
// libvirt passes it on; not other internal errors, nor errors that are not
// libvirt's.
func TestDisksLocked(t *testing.T) {
	lv := func(code golibvirt.ErrorNumber, msg string) error {
		return fmt.Errorf("call: %w", golibvirt.Error{Code: uint32(code), Message: msg})
	}
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"lockd", lv(golibvirt.ErrResourceBusy, "resource busy: Lockspace resource '/repo/VirtualDisks/d1.img' is locked"), true},
		{"qemu write lock", lv(golibvirt.ErrInternalError, "internal error: qemu unexpectedly closed the monitor: ...: Failed to get \"write\" lock\nIs another process using the image [/repo/VirtualDisks/d1.img]?"), true},
		{"qemu shared lock", lv(golibvirt.ErrInternalError, "internal error: process exited while connecting to monitor: ...: Failed to get shared \"write\" lock"), true},
		{"qemu consistent read", lv(golibvirt.ErrInternalError, "internal error: ...: Failed to get \"consistent read\" lock"), true},
		{"other internal error", lv(golibvirt.ErrInternalError, "internal error: qemu unexpectedly closed the monitor: Could not open kernel"), false},
		{"lock words under another code", lv(golibvirt.ErrOperationFailed, "Failed to get \"write\" lock"), false},
		{"no domain", lv(golibvirt.ErrNoDomain, "Domain not found"), false},
		{"not libvirt's", errors.New(`Failed to get "write" lock`), false},
		{"nil", nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := disksLocked(c.err); got != c.want {
				t.Errorf("disksLocked = %v, want %v", got, c.want)
			}
		})
	}
}

// A refusal for locked disks is InvalidState in the agent's words: it
// names the call, not the file or what libvirt and QEMU said; any other
// error passes unchanged.
func TestLockRefusalSpeaksForTheAgent(t *testing.T) {
	var log strings.Builder
	d := &Driver{log: slog.New(slog.NewTextHandler(&log, nil))}
	libvirtWords := "resource busy: Lockspace resource '/repo/VirtualDisks/d1.img' is locked"
	err := d.lockRefusal("start VM v1", golibvirt.Error{Code: uint32(golibvirt.ErrResourceBusy), Message: libvirtWords})
	wantFault(t, err, agentapi.FaultInvalidState, "cannot start VM v1: its disks are locked by another server")
	if strings.Contains(err.Error(), "d1.img") || strings.Contains(err.Error(), "Lockspace") {
		t.Errorf("the fault echoes libvirt: %v", err)
	}
	if !strings.Contains(log.String(), "Lockspace resource") {
		t.Errorf("libvirt's words are not in the log:\n%s", log.String())
	}
	other := golibvirt.Error{Code: uint32(golibvirt.ErrNoDomain), Message: "Domain not found"}
	if got := d.lockRefusal("start VM v1", other); !errors.Is(got, other) {
		t.Errorf("another error became %v", got)
	}
}
