package libvirt

import (
	"errors"
	"regexp"

	golibvirt "github.com/digitalocean/go-libvirt"

	"xenmanager/backend/agentapi"
)

// qemuImageLockRx matches QEMU's refusal to open a disk image that another
// process holds (QEMU's own image locking, on by default since QEMU 2.10),
// as libvirt passes it on in an internal error: `Failed to get "write"
// lock`, `Failed to get shared "write" lock`.
var qemuImageLockRx = regexp.MustCompile(`Failed to get (shared )?"[a-z ]+" lock`)

// disksLocked reports whether err is libvirt refusing a domain because
// another holder has a lock on one of its disks: its lock manager's
// refusal (lockd or sanlock: resource busy), or QEMU's own image locking
// (which QEMU checks when it opens the disks, before libvirt's lock manager
// takes its locks, when the guest's CPUs first start).
func disksLocked(err error) bool {
	var lerr golibvirt.Error
	if !errors.As(err, &lerr) {
		return false
	}
	switch golibvirt.ErrorNumber(lerr.Code) {
	case golibvirt.ErrResourceBusy:
		return true
	case golibvirt.ErrInternalError:
		return qemuImageLockRx.MatchString(lerr.Message)
	}
	return false
}

// lockRefusal turns err, the failure of a call that boots a VM's domain
// (what: "start VM x"), into InvalidState when the VM's disks are locked
// by another holder, where the VM may be running: another server of the
// pool (whose agent may be frozen or gone while its guest runs on), or
// another guest here. libvirt's words, which name the file, go to the log.
// Any other error is returned as it is.
func (d *Driver) lockRefusal(what string, err error) error {
	if err == nil || !disksLocked(err) {
		return err
	}
	var lerr golibvirt.Error
	errors.As(err, &lerr)
	d.log.Warn("libvirt refused: a disk of the domain is locked by another holder", "op", what,
		"code", golibvirt.ErrorNumber(lerr.Code).String(), "message", lerr.Message)
	return agentapi.Errorf(agentapi.FaultInvalidState,
		"cannot %s: its disks are locked by another server (or by another guest of this server): the VM may be running there", what)
}
