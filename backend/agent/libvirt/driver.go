// Package libvirt is the agent's driver of a real hypervisor through
// libvirt: Xen through libvirt's libxl driver (xen:///system) on a Xen
// server, QEMU (qemu:///system) where there is no Xen, and libvirt's test
// driver (test:///default) for fast tests of every call. It speaks
// libvirt's RPC over the daemon's unix socket (go-libvirt, no cgo) and
// builds domain XML with libvirtxml.
//
// vm.cfg in the repository stays the only record of a VM: the libvirt
// domain is transient, defined when the VM starts, is restored or
// migrates here, and gone when it stops, so that no VM is tied to a host
// that may die. A domain carries the VM it runs in its <metadata>, which
// lets an agent restarted (or the destination of a migration) know it
// again from libvirt alone. Domains without that metadata are reported in
// the log and never touched.
package libvirt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agentapi"
)

// Defaults used when Config leaves a field zero.
const (
	DefaultSocket          = "/run/libvirt/libvirt-sock"
	DefaultURI             = "xen:///system"
	DefaultCallTimeout     = 30 * time.Second
	DefaultShutdownTimeout = 20 * time.Second
	// dialTimeout bounds connecting to the daemon's socket.
	dialTimeout = 5 * time.Second
	// reconnectMin and reconnectMax bound the wait between attempts to
	// reach a daemon that is down.
	reconnectMin = 250 * time.Millisecond
	reconnectMax = 5 * time.Second
	// pollInterval is how often a wait for a domain's state looks again.
	pollInterval = 100 * time.Millisecond
)

// Config describes how the driver reaches libvirt.
type Config struct {
	// URI is the libvirt connection URI: xen:///system on a Xen host,
	// qemu:///system, or test:///default. DefaultURI when "".
	URI string
	// Socket is the path of libvirtd's unix socket; DefaultSocket when "".
	Socket string
	// CallTimeout bounds each call to libvirt but migrations and the wait
	// of a clean shutdown; DefaultCallTimeout when 0.
	CallTimeout time.Duration
	// ShutdownTimeout is how long a clean stop waits for the guest to
	// power off after the ACPI request before the domain is destroyed;
	// DefaultShutdownTimeout when 0. Keep it under the manager's call
	// timeout (30 s).
	ShutdownTimeout time.Duration
	// MigrationURI is the URI another host's libvirtd reaches this host's
	// libvirtd at for a peer-to-peer migration here, such as
	// qemu+tls://xen2.example.com/system; "" makes it from this URI's
	// driver, the tcp transport and the address the setup call came in on.
	MigrationURI string
	// MigrationHost is the address the migration data stream connects to
	// (libvirt's migrate_uri tcp://HOST); the address the setup call came
	// in on when "".
	MigrationHost string
	// Logger receives what libvirt said when a call failed (faults carry
	// the agent's own words) and the daemon's comings and goings.
	Logger *slog.Logger
}

// Driver runs the domains of one host through libvirt. Its methods are
// safe for concurrent use.
type Driver struct {
	cfg  Config
	kind string // hypervisor.TypeXen, TypeQEMU or TypeTest, from the URI
	env  hypervisor.Env
	log  *slog.Logger

	conn     *connection
	consoles hypervisor.ConsoleTickets // has its own mutex

	// mu guards known, ends, targets and foreign.
	mu sync.Mutex
	// known maps libvirt domain names to the VM each runs, learnt from
	// the domain's metadata.
	known map[string]vmMeta
	// ends are the stops this driver caused (stop, kill, save, migration
	// away) whose lifecycle events have not arrived yet, so that they are
	// not reported as the guest's own doing.
	ends endLedger
	// targets are the incoming migrations set up here, by domain name,
	// with when they lapse.
	targets map[string]time.Time
	// foreign are the domains without this driver's metadata already
	// logged, so that each is reported once.
	foreign map[string]bool

	// stats is the previous sample of CPU times, for get_statistics'
	// percentages; guarded by statsMu.
	statsMu sync.Mutex
	stats   cpuSample

	cancel context.CancelFunc // ends the connection's loop
	done   chan struct{}      // closed when it has ended
}

// Driver returns a hypervisor.NewDriver that connects to libvirt as cfg
// says. The first connection must succeed: an agent that cannot reach its
// hypervisor at start says so instead of serving.
func NewDriver(cfg Config) hypervisor.NewDriver {
	return func(env hypervisor.Env) (hypervisor.Driver, error) { return New(cfg, env) }
}

// New connects to libvirt and starts following its lifecycle events.
func New(cfg Config, env hypervisor.Env) (*Driver, error) {
	cfg.URI = cmp.Or(cfg.URI, DefaultURI)
	cfg.Socket = cmp.Or(cfg.Socket, DefaultSocket)
	cfg.CallTimeout = cmp.Or(cfg.CallTimeout, DefaultCallTimeout)
	cfg.ShutdownTimeout = cmp.Or(cfg.ShutdownTimeout, DefaultShutdownTimeout)
	kind, err := kindOf(cfg.URI)
	if err != nil {
		return nil, err
	}
	if env.Now == nil || env.Events == nil || env.Progress == nil || env.Pool == nil || env.ResolvePath == nil {
		return nil, errors.New("libvirt: the environment needs a clock, an event sink, a progress registry, a pool and a path resolver")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	d := &Driver{
		cfg: cfg, kind: kind, env: env, log: log.With("libvirt", cfg.URI),
		known: map[string]vmMeta{}, ends: endLedger{}, targets: map[string]time.Time{}, foreign: map[string]bool{},
		done: make(chan struct{}),
	}
	d.conn = &connection{uri: cfg.URI, socket: cfg.Socket, log: d.log, onConnect: d.followEvents}
	first, err := d.conn.dial()
	if err != nil {
		return nil, fmt.Errorf("libvirt: connect to %s through %s: %w", cfg.URI, cfg.Socket, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	lctx, lcancel := context.WithCancel(ctx)
	d.conn.use(lctx, first)
	go func() {
		defer close(d.done)
		d.conn.run(ctx, first, lcancel)
	}()
	return d, nil
}

// kindOf is the hypervisor type of a libvirt URI's driver
// (xen:///system, qemu+tls://host/system, test:///default).
func kindOf(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" {
		return "", fmt.Errorf("libvirt: URI %q is not a libvirt URI such as xen:///system, qemu:///system or test:///default", uri)
	}
	driver, _, _ := strings.Cut(u.Scheme, "+")
	switch driver {
	case "xen", "libxl":
		return hypervisor.TypeXen, nil
	case "qemu":
		return hypervisor.TypeQEMU, nil
	case "test":
		return hypervisor.TypeTest, nil
	}
	return "", fmt.Errorf("libvirt: URI %q names driver %q; this agent drives xen, qemu and test", uri, driver)
}

// Hypervisor names the hypervisor type of the URI and libvirt's version
// of its driver (major.minor.release), "" while the daemon is unreachable.
func (d *Driver) Hypervisor() (kind, version string) {
	var v uint64
	err := d.do("read the hypervisor version", func(l *golibvirt.Libvirt) (err error) {
		v, err = l.ConnectGetVersion()
		return err
	})
	if err != nil || v == 0 {
		return d.kind, ""
	}
	return d.kind, fmt.Sprintf("%d.%d.%d", v/1_000_000, v/1_000%1_000, v%1_000)
}

// Close stops following events and disconnects from libvirt. Domains keep
// running: they are the host's, not the agent's.
func (d *Driver) Close() {
	d.cancel()
	<-d.done
}

// Reset is the host going down (sys_reboot, sys_shutdown): the domains go
// with it, which libvirt reports itself; the driver forgets its console
// tickets and incoming migrations.
func (d *Driver) Reset() {
	d.consoles.Clear()
	d.mu.Lock()
	clear(d.targets)
	d.mu.Unlock()
}

// do runs fn on the current connection, within the call timeout, and
// translates its error into a fault that says what could not be done
// (what: "start VM x").
func (d *Driver) do(what string, fn func(*golibvirt.Libvirt) error) error {
	return d.doWithin(d.cfg.CallTimeout, what, fn)
}

// doWithin is do with another timeout (0: none).
func (d *Driver) doWithin(timeout time.Duration, what string, fn func(*golibvirt.Libvirt) error) error {
	l, err := d.conn.current()
	if err != nil {
		return agentapi.Errorf(agentapi.FaultInternalError, "cannot %s: %v", what, err)
	}
	call := func() error {
		err := fn(l)
		var lerr golibvirt.Error
		if err != nil && !errors.As(err, &lerr) && !l.IsConnected() {
			return agentapi.Errorf(agentapi.FaultInternalError,
				"cannot %s: the connection to the libvirt daemon (%s) was lost; the agent reconnects by itself", what, d.cfg.Socket)
		}
		return err
	}
	if timeout <= 0 {
		return d.translate(what, call())
	}
	done := make(chan error, 1)
	go func() { done <- call() }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err = <-done:
		return d.translate(what, err)
	case <-t.C:
		d.log.Error("libvirt call timed out", "op", what, "after", timeout)
		return agentapi.Errorf(agentapi.FaultInternalError, "cannot %s: libvirt did not answer within %v", what, timeout)
	}
}

// translate turns an error of go-libvirt into a fault in the agent's own
// words (libvirt's message goes to the log, not to the manager): a domain
// that is not there is NotFound, an operation libvirt finds invalid in the
// domain's state InvalidState, the rest InternalError with libvirt's
// error code name.
func (d *Driver) translate(what string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := agentapi.AsFault(err); ok {
		return err
	}
	var lerr golibvirt.Error
	if !errors.As(err, &lerr) {
		if errors.Is(err, golibvirt.ErrInterrupted) {
			return agentapi.Errorf(agentapi.FaultInternalError, "cannot %s: the connection to libvirt was lost during the call; the agent reconnects", what)
		}
		d.log.Warn("libvirt call failed", "op", what, "err", err)
		return agentapi.Errorf(agentapi.FaultInternalError, "cannot %s: the call to libvirt failed (see the agent's log)", what)
	}
	code := golibvirt.ErrorNumber(lerr.Code)
	d.log.Warn("libvirt refused", "op", what, "code", code.String(), "message", lerr.Message)
	switch code {
	case golibvirt.ErrNoDomain:
		return agentapi.Errorf(agentapi.FaultNotFound, "cannot %s: the domain is not on this server", what)
	case golibvirt.ErrOperationInvalid:
		return agentapi.Errorf(agentapi.FaultInvalidState, "cannot %s: libvirt refuses it in the domain's present state", what)
	case golibvirt.ErrOperationTimeout:
		return agentapi.Errorf(agentapi.FaultBusy, "cannot %s: the domain is busy with another job; try again", what)
	}
	return agentapi.Errorf(agentapi.FaultInternalError, "cannot %s: libvirt failed with %s (see the agent's log for its words)",
		what, strings.TrimPrefix(code.String(), "Err"))
}

// isNoDomain reports whether err says the domain does not exist.
func isNoDomain(err error) bool {
	var lerr golibvirt.Error
	if errors.As(err, &lerr) && golibvirt.ErrorNumber(lerr.Code) == golibvirt.ErrNoDomain {
		return true
	}
	f, ok := agentapi.AsFault(err)
	return ok && f.Code == agentapi.FaultNotFound
}

// connection is the driver's connection to libvirtd, replaced when the
// daemon goes away and comes back.
type connection struct {
	uri, socket string
	log         *slog.Logger
	// onConnect runs on each new connection before it is used (the
	// driver subscribes to lifecycle events there).
	onConnect func(context.Context, *golibvirt.Libvirt)

	mu        sync.Mutex // guards l, downSince
	l         *golibvirt.Libvirt
	downSince time.Time
}

// dial opens a new connection to the daemon.
func (c *connection) dial() (*golibvirt.Libvirt, error) {
	l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(c.socket), dialers.WithLocalTimeout(dialTimeout)))
	if err := l.ConnectToURI(golibvirt.ConnectURI(c.uri)); err != nil {
		return nil, err
	}
	return l, nil
}

// current is the connection in use, or an error that says since when the
// daemon is unreachable.
func (c *connection) current() (*golibvirt.Libvirt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.l == nil {
		return nil, fmt.Errorf("the libvirt daemon (%s) has been unreachable since %s; the agent reconnects by itself",
			c.socket, c.downSince.UTC().Format(time.RFC3339))
	}
	return c.l, nil
}

// use makes l the connection in use, after onConnect.
func (c *connection) use(ctx context.Context, l *golibvirt.Libvirt) {
	c.onConnect(ctx, l)
	c.mu.Lock()
	c.l = l
	c.mu.Unlock()
}

// run keeps a connection until ctx ends: it serves l, already in use
// (cancel ends its event subscription), and when the daemon goes away it
// marks the connection down and dials again.
func (c *connection) run(ctx context.Context, l *golibvirt.Libvirt, cancel context.CancelFunc) {
	for {
		select {
		case <-l.Disconnected():
			cancel()
			c.mu.Lock()
			c.l, c.downSince = nil, time.Now()
			c.mu.Unlock()
			c.log.Error("lost the connection to libvirt; reconnecting")
		case <-ctx.Done():
			c.mu.Lock()
			c.l = nil
			c.mu.Unlock()
			// Disconnect before the event subscription ends: its
			// deregistration racing the connection's close crashed
			// Debian 12's libvirtd once; a closing client's callbacks
			// are the daemon's to drop.
			_ = l.Disconnect()
			cancel()
			return
		}
		if l = c.redial(ctx); l == nil {
			return
		}
		c.log.Info("reconnected to libvirt")
		var lctx context.Context
		lctx, cancel = context.WithCancel(ctx)
		c.use(lctx, l)
	}
}

// redial dials the daemon until it answers, with growing pauses; nil when
// ctx ends first.
func (c *connection) redial(ctx context.Context) *golibvirt.Libvirt {
	wait := reconnectMin
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		l, err := c.dial()
		if err == nil {
			return l
		}
		c.log.Debug("libvirt still unreachable", "err", err)
		wait = min(wait*2, reconnectMax)
	}
}
