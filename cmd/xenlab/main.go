// Command xenlab brings up a local lab of real guests for make run-libvirt,
// and keeps it until Ctrl-C: the manager, one xenagent with the libvirt
// driver on this machine's libvirtd, and (as root, where namespaces work) a
// second one on a private libvirtd in a network namespace
// (backend/agent/libvirt/libvirthost); a pool of the two, a repository that
// holds the test guest image (backend/agent/libvirt/guestimage) and a
// stopped VM guest1 that boots it under QEMU. It sets the fleet up through
// the manager's SSH command shell, as an operator would, prints how to
// connect, and on Ctrl-C or SIGTERM kills the guests still running, stops
// the manager, the agents and the private libvirtd, and leaves only its
// data directory, which the next run reuses.
//
//	xenlab [--bin bin] [--data xenlab-data] [--listen 127.0.0.1:10001] [--second auto|yes|no]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// The names the lab gives.
const (
	poolName   = "lab-pool"
	repoName   = "lab-repo"
	guestName  = "guest1"
	firstHost  = "qemu1" // on this machine's libvirtd
	secondHost = "qemu2" // on a private libvirtd in a network namespace
)

// options are the command line's.
type options struct {
	bin    string // where xenmanager and xenagent are
	data   string // the lab's data directory
	listen string // the manager's SSH address
	second string // auto, yes or no: the second libvirt host
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run brings the lab up, waits for a signal (or for one of its processes
// to die) and takes it down; it returns the exit status: 0 after a stop
// asked for, 1 when something failed, 2 for a bad command line.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("xenlab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.bin, "bin", "bin", "directory of the xenmanager and xenagent binaries (make build)")
	fs.StringVar(&o.data, "data", "xenlab-data", "the lab's data directory: the manager's and the agents' data, the repository, logs, known_hosts (reused by the next run)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:10001", "address of the manager's SSH command shell")
	fs.StringVar(&o.second, "second", "auto", "a second libvirt host in a network namespace, for migration: auto (when root and namespaces work), yes or no")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: xenlab [flags]   (make run-libvirt)\n\nBrings up a manager and one or two local libvirt hosts that boot real QEMU guests, until Ctrl-C.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "xenlab: unexpected arguments %q\n", fs.Args())
		return 2
	}
	switch o.second {
	case "auto", "yes", "no":
	default:
		fmt.Fprintf(stderr, "xenlab: --second %q: use auto, yes or no\n", o.second)
		return 2
	}

	// The first SIGINT or SIGTERM stops the lab; later ones only say that
	// it is stopping (the processes the lab started are in process groups
	// of their own, so a Ctrl-C at the terminal reaches only xenlab, which
	// stops them in order).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigc)
	go func() {
		n := 0
		for range sigc {
			if n == 0 {
				cancel()
			} else {
				fmt.Fprintln(stdout, "xenlab: still stopping the lab (a few seconds; at most about three minutes)")
			}
			n++
		}
	}()

	l := &lab{o: o, out: stdout}
	err := l.up(ctx)
	if err != nil && ctx.Err() != nil {
		err = errors.New("interrupted before the lab was up; what had started is stopped")
	}
	if err == nil {
		l.printHowTo()
		err = l.wait(ctx)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stdout, "\nxenlab: stopping the lab")
	}
	l.down()
	if err != nil {
		fmt.Fprintln(stderr, "xenlab:", err)
		return 1
	}
	return 0
}
