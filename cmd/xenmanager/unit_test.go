package main

import (
	"testing"

	"xenmanager/cmd/internal/unitcheck"
)

// unit is the manager's systemd unit, beside this code, and the
// configuration file it reads.
var unit = unitcheck.Unit{File: "xenmanager.service", Command: "/usr/local/bin/xenmanager serve",
	Installed: "/etc/xenmanager/xenmanager.toml", Example: "../../docs/examples/xenmanager.toml"}

// The unit's command line is one serve accepts, with the example
// configuration file of docs/examples in the place the unit reads it from
// (the file the guide has the operator install there).
func TestSystemdUnitFlags(t *testing.T) {
	args := unitcheck.Args(t, unit)
	if _, err := parseServeFlags(args, nil); err != nil {
		t.Errorf("%s: serve %v: %v", unit.File, args, err)
	}
}

// systemd-analyze finds nothing to say about the unit, and its sandbox's
// exposure stays at most 2.0 (systemd-analyze security; 1.5 when written).
func TestSystemdUnitVerifies(t *testing.T) {
	unitcheck.Verify(t, unit, 20)
}
