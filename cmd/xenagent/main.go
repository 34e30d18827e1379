// Command xenagent is the agent that runs on each Xen server: it speaks the
// XML-RPC protocol of docs/agent-protocol.md over HTTPS and drives the
// host's hypervisor through libvirt (--hypervisor libvirt: Xen's libxl
// driver on a Xen server, QEMU elsewhere) or, by default, a simulated Xen
// host; repositories are real directories either way.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"xenmanager/backend/agent"
	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agent/libvirt"
	"xenmanager/cmd/internal/cli"
	"xenmanager/cmd/internal/monitor"
)

// passwordFileName is where a generated password is kept in the data
// directory.
const passwordFileName = "agent-password"

// shutdownGrace is how long calls in flight may finish after a signal.
const shutdownGrace = 10 * time.Second

func main() {
	cli.Exit("xenagent", run(os.Args[1:]))
}

// options are xenagent's flags.
type options struct {
	listen, dataDir, passwordFile, hostname string
	cpus                                    int
	memoryMiB                               int64
	simControl                              bool
	rebootSeconds                           float64
	debug                                   bool
	logging                                 cli.Logging
	hypervisor                              string
	libvirt                                 libvirt.Config
	allowHostPower                          bool
	version                                 bool
	// metricsListen is the address of /metrics and /healthz; "" serves
	// neither.
	metricsListen string
	// cpuProfile is where a CPU profile is written until shutdown; ""
	// writes none.
	cpuProfile string
}

// parseFlags reads xenagent's flags from args, the environment
// (XENAGENT_...) and the --config file, and checks them: a flag the chosen
// hypervisor would ignore is refused.
func parseFlags(args []string, environ []string) (options, error) {
	var o options
	flags := newFlagSet(&o)
	src := cli.Sources{EnvPrefix: "XENAGENT_", Environ: environ, CommandLineOnly: []string{"version"}}
	if err := cli.ParseConfigured(flags, args, src, os.Stdout, os.Stderr); err != nil {
		return o, err
	}
	if o.debug {
		o.logging.Level = slog.LevelDebug
	}
	if o.version {
		return o, nil
	}
	if flags.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", flags.Args())
	}
	var given []string
	flags.Visit(func(f *flag.Flag) { given = append(given, f.Name) })
	if err := checkHypervisorFlags(o.hypervisor, given); err != nil {
		return o, err
	}
	if o.rebootSeconds <= 0 || o.rebootSeconds > 3600 {
		return o, fmt.Errorf("--reboot-seconds %v is out of range (0 to 3600 seconds, not 0)", o.rebootSeconds)
	}
	return o, nil
}

// newFlagSet defines xenagent's flags, which set o.
func newFlagSet(o *options) *flag.FlagSet {
	flags := flag.NewFlagSet("xenagent", flag.ContinueOnError)
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), `usage: xenagent [flags]

The agent of a Xen server: serves the manager's XML-RPC calls over HTTPS
(docs/agent-protocol.md) and runs the domains through libvirt
(--hypervisor libvirt) or a simulated Xen host (the default).

`+cli.ConfigUsage("XENAGENT_")+`
flags:
`)
		flags.PrintDefaults()
	}
	flags.StringVar(&o.listen, "listen", fmt.Sprintf(":%d", 8899), "address to serve HTTPS on")
	flags.StringVar(&o.dataDir, "data", "./xenagent-data", "data directory: state, certificate, password, repository mount points")
	flags.StringVar(&o.passwordFile, "password-file", "", "file holding the agent password (default: generate one into DATA/"+passwordFileName+" on first start)")
	flags.StringVar(&o.hostname, "hostname", "", "host name to report (default: the system's)")
	flags.IntVar(&o.cpus, "cpus", 8, "CPUs (hardware threads) of the simulated host")
	flags.Int64Var(&o.memoryMiB, "memory-mib", 32768, "memory of the simulated host in MiB")
	flags.BoolVar(&o.simControl, "sim-control", false, "serve sim_set (fault injection); for tests only")
	flags.Float64Var(&o.rebootSeconds, "reboot-seconds", agent.DefaultRebootDelay.Seconds(), "how long the simulated host stays down after sys_reboot")
	flags.BoolVar(&o.debug, "debug", false, "log every call: the same as --log-level debug")
	o.logging.AddFlags(flags)
	flags.StringVar(&o.hypervisor, "hypervisor", "sim", "what runs the domains: sim (a simulated Xen host, no real guest) or libvirt (a real hypervisor)")
	flags.StringVar(&o.libvirt.URI, "libvirt-uri", libvirt.DefaultURI, "libvirt connection URI (--hypervisor libvirt): xen:///system on a Xen server, qemu:///system, or test:///default")
	flags.StringVar(&o.libvirt.Socket, "libvirt-socket", libvirt.DefaultSocket, "libvirtd's unix socket (--hypervisor libvirt)")
	flags.StringVar(&o.libvirt.MigrationURI, "libvirt-migration-uri", "", "URI another host's libvirtd reaches this host's libvirtd at for live migration, such as qemu+tls://this-host/system (default: <driver>+tcp://<address the manager called>/system)")
	flags.StringVar(&o.libvirt.MigrationHost, "migration-host", "", "address other hosts send live-migration streams to (default: the address the manager called)")
	flags.DurationVar(&o.libvirt.ShutdownTimeout, "shutdown-timeout", libvirt.DefaultShutdownTimeout, "how long a clean stop waits for the guest to power off before destroying it (--hypervisor libvirt)")
	flags.BoolVar(&o.allowHostPower, "allow-host-power", false, "let sys_reboot and sys_shutdown reboot or power off this real machine (--hypervisor libvirt)")
	flags.StringVar(&o.metricsListen, "metrics-listen", "", "serve Prometheus /metrics and /healthz over plain HTTP on `ADDRESS` (such as 127.0.0.1:9101); empty serves neither")
	flags.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile to `FILE` until shutdown")
	flags.BoolVar(&o.version, "version", false, "print the version, the commit and the Go toolchain of this binary, and exit")
	return flags
}

// run runs the agent with the command line args until a signal (or
// sys_shutdown on the simulated host) ends it; --version prints the build
// and returns.
func run(args []string) error {
	o, err := parseFlags(args, os.Environ())
	if err != nil {
		return err
	}
	if o.version {
		cli.PrintVersion(os.Stdout, "xenagent")
		return nil
	}
	logger := o.logging.Logger(os.Stderr)
	raiseProcs(os.Getenv)

	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	password, err := loadPassword(o.passwordFile, o.dataDir)
	if err != nil {
		return err
	}
	var driver hypervisor.NewDriver // nil: the simulated host
	var hostPower func(bool) error
	if o.hypervisor == "libvirt" {
		o.libvirt.Logger = logger
		driver = libvirt.NewDriver(o.libvirt)
		if o.allowHostPower {
			hostPower = powerMachine
		}
	} else {
		logger.Warn("THIS AGENT SIMULATES ITS HYPERVISOR: no real guest runs here; on a real server start it with --hypervisor libvirt")
	}
	var mx *agent.Metrics // nil: no metrics
	if o.metricsListen != "" {
		mx = agent.NewMetrics()
	}
	agent, err := agent.New(agent.Config{
		DataDir:     o.dataDir,
		Password:    password,
		Hostname:    o.hostname,
		CPUs:        o.cpus,
		MemoryMiB:   o.memoryMiB,
		SimControl:  o.simControl,
		RebootDelay: time.Duration(o.rebootSeconds * float64(time.Second)),
		Driver:      driver,
		HostPower:   hostPower,
		Logger:      logger,
		Metrics:     mx,
	})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if o.metricsListen != "" {
		ml, err := monitor.Listen(o.metricsListen)
		if err != nil {
			l.Close()
			return err
		}
		stopMonitor := monitor.Start(ml, mx.Gatherer(), agent.Health, logger)
		defer stopMonitor()
		fmt.Printf("metrics listening on %s\n", ml.Addr())
	}
	fmt.Printf("xenagent listening on %s\n", l.Addr())
	fmt.Printf("certificate SPKI SHA-256: %s\n", agent.SPKISHA256())
	if o.simControl {
		logger.Warn("simulation control is on: sim_set can inject faults")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if o.cpuProfile != "" {
		stopProfile, err := cli.StartCPUProfile(o.cpuProfile)
		if err != nil {
			l.Close()
			return err
		}
		defer stopProfile()
	}
	served := make(chan error, 1)
	go func() { served <- agent.Serve(l) }()
	select {
	case err := <-served:
		if err == nil && agent.PoweredOff() {
			// sys_shutdown: the simulated host is off until started again.
			logger.Info("powered off by sys_shutdown")
		}
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := agent.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}

// simOnlyFlags and libvirtOnlyFlags are the flags that mean something to
// one hypervisor only.
var (
	simOnlyFlags     = []string{"cpus", "memory-mib", "sim-control", "reboot-seconds"}
	libvirtOnlyFlags = []string{"libvirt-uri", "libvirt-socket", "libvirt-migration-uri", "migration-host", "shutdown-timeout", "allow-host-power"}
)

// checkHypervisorFlags refuses an unknown --hypervisor and a flag given
// (by name, without dashes) that the chosen hypervisor would ignore, so
// that nobody believes a setting took effect.
func checkHypervisorFlags(hv string, given []string) error {
	var ignored []string
	switch hv {
	case "sim":
		ignored = libvirtOnlyFlags
	case "libvirt":
		ignored = simOnlyFlags
	default:
		return fmt.Errorf("--hypervisor %q is not known (accepted: sim, libvirt)", hv)
	}
	var bad []string
	for _, name := range given {
		if slices.Contains(ignored, name) {
			bad = append(bad, "--"+name)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s: not used with --hypervisor %s", strings.Join(bad, ", "), hv)
	}
	return nil
}

// powerMachine reboots or powers off the machine (sys_reboot,
// sys_shutdown with --allow-host-power).
func powerMachine(reboot bool) error {
	mode := "-P"
	if reboot {
		mode = "-r"
	}
	out, err := exec.Command("shutdown", mode, "now").CombinedOutput()
	if err != nil {
		return fmt.Errorf("shutdown %s now: %w: %s", mode, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// loadPassword reads the password from file when given; otherwise from
// DATA/agent-password, which is created with a random password on first
// start (and its place printed once). There is never a built-in password.
func loadPassword(file, dataDir string) (string, error) {
	if file != "" {
		return readPassword(file)
	}
	path := filepath.Join(dataDir, passwordFileName)
	pw, err := readPassword(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return pw, err
	}
	var raw [18]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails
	pw = base64.RawURLEncoding.EncodeToString(raw[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("create password file: %w", err)
	}
	if _, err := fmt.Fprintln(f, pw); err != nil {
		f.Close()
		return "", fmt.Errorf("write password file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write password file: %w", err)
	}
	abs, _ := filepath.Abs(path)
	fmt.Fprintf(os.Stderr, "xenagent: generated the agent password (user %q) into %s; give it to the manager when adding this server\n", "oracle", abs)
	return pw, nil
}

func readPassword(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	pw := strings.TrimRight(string(data), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("password file %s is empty", path)
	}
	return pw, nil
}
