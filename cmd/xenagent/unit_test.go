package main

import (
	"testing"

	"xenmanager/cmd/internal/unitcheck"
)

// unit is the agent's systemd unit, beside this code, and the
// configuration file it reads.
var unit = unitcheck.Unit{File: "xenagent.service", Command: "/usr/local/bin/xenagent",
	Installed: "/etc/xenagent/xenagent.toml", Example: "../../docs/examples/xenagent.toml"}

// The unit's command line is one xenagent accepts, with the example
// configuration file of docs/examples in the place the unit reads it from
// (the file the guide has the operator install there).
func TestSystemdUnitFlags(t *testing.T) {
	args := unitcheck.Args(t, unit)
	if _, err := parseFlags(args, nil); err != nil {
		t.Errorf("%s: xenagent %v: %v", unit.File, args, err)
	}
}

// systemd-analyze finds nothing to say about the unit, and its sandbox's
// exposure stays at most 2.5 (systemd-analyze security; 2.1 when written:
// the agent runs as root).
func TestSystemdUnitVerifies(t *testing.T) {
	unitcheck.Verify(t, unit, 25)
}
