// Package cli is what the command lines of the two programs, xenmanager and
// xenagent, have in common: --version, told from what the Go toolchain
// records in the binary; flag parsing in which help asked for is an
// answer on stdout with exit status 0 rather than an error; every flag
// settable from the environment and a TOML file too (ParseConfigured);
// and the log flags (Logging). It imports nothing of the module, so that
// the agent still shares nothing with the manager but the wire contract
// (docs/architecture.md, Import rules).
package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// ErrUsage is ParseFlags's answer to a command line it refused, having
// said why, with the usage, on stderr: the program exits with status 2.
var ErrUsage = errors.New("command line refused")

// ParseFlags parses args with fs, which must be flag.ContinueOnError. The
// flag package writes help and errors to one writer and leaves the exit
// status to the caller; ParseFlags sends help asked for (-h, -help,
// --help) to stdout and returns flag.ErrHelp, and a flag it cannot parse,
// explained with the usage, to stderr and returns ErrUsage. Exit turns
// both into the right status.
func ParseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	var said bytes.Buffer
	fs.SetOutput(&said)
	err := fs.Parse(args)
	fs.SetOutput(stderr)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		stdout.Write(said.Bytes())
		return flag.ErrHelp
	}
	stderr.Write(said.Bytes())
	return ErrUsage
}

// ExitStatus is the status a program ends with after err: 0 for nil and
// for help given (flag.ErrHelp), 2 for a command line refused (ErrUsage),
// 1 for any other failure.
func ExitStatus(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, ErrUsage):
		return 2
	}
	return 1
}

// Exit ends the program with ExitStatus(err), first printing a failure
// that was not explained yet as "program: err" on stderr.
func Exit(program string, err error) {
	status := ExitStatus(err)
	if status == 1 {
		fmt.Fprintf(os.Stderr, "%s: %v\n", program, err)
	}
	os.Exit(status)
}
