// Package agent is the agent program's HTTPS front: it serves the XML-RPC
// protocol of docs/agent-protocol.md over TLS with basic auth, and dispatches each
// call to the host (package host), which runs the domains with a
// hypervisor driver: the simulated Xen host (package xensim) unless
// Config.Driver names another.
package agent

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"xenmanager/backend/agent/host"
	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agent/xensim"
	"xenmanager/backend/agentapi"
)

// Config configures an agent.
type Config struct {
	DataDir    string // state, certificate and repository mount points; created if missing
	Password   string // the basic-auth password of user "oracle"; required
	Hostname   string // os.Hostname when empty
	CPUs       int    // xensim.DefaultCPUs when 0; only for the default Driver
	MemoryMiB  int64  // xensim.DefaultMemoryMiB when 0; only for the default Driver
	SimControl bool   // serve sim_set (fault injection), for tests only; the driver must offer hypervisor.SimControl
	// WithoutEventsWait, for tests only, neither lists nor serves
	// agentapi.ExtEventsWait, as an agent from before it: get_events
	// refuses a wait as that agent would.
	WithoutEventsWait bool
	// Driver makes the hypervisor driver that runs the domains; the
	// simulated host (xensim) of CPUs and MemoryMiB when nil.
	Driver hypervisor.NewDriver
	// RebootDelay is how long the simulated host stays down after
	// sys_reboot; DefaultRebootDelay when 0.
	RebootDelay time.Duration
	// HostPower reboots (reboot true) or powers off the real machine, for
	// sys_reboot and sys_shutdown on a host whose driver runs real guests;
	// nil refuses them there (the simulated host only pretends, always).
	// It runs after the call's answer is sent.
	HostPower func(reboot bool) error
	Logger    *slog.Logger
	// Metrics, when set, records the calls served and shows the domains
	// by state (NewMetrics); one Metrics serves one agent.
	Metrics *Metrics
}

// DefaultRebootDelay is how long a simulated reboot takes by default.
const DefaultRebootDelay = 5 * time.Second

// Bounds of the HTTPS server (server.go), as net/http's server had them.
// Calls themselves may take long (an injected latency or hang), so there
// is no write timeout; a stalled client is cut by the read timeouts:
// readHeaderTimeout for the TLS handshake and a request's header from its
// first byte, readTimeout for the whole request, idleTimeout between
// requests.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 2 * time.Minute
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

// Agent is one running agent: a simulated host behind an HTTPS server.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	host    *host.Host
	sim     hypervisor.SimControl // the driver's simulation control when SimControl; nil otherwise
	cert    tls.Certificate
	spki    string
	methods map[string]method
	bounds  serverBounds // the HTTPS server's; tests shorten them before Serve
	metrics *Metrics     // nil: no metrics
	probe   *domainProbe // asks the hypervisor for its domains for Health and the metrics
	// userSum and passwordSum are the SHA-256 of the credentials a call
	// must bring, headerSum that of the Authorization header Go's and
	// Python's clients write for them (see authorized).
	userSum, passwordSum, headerSum [sha256.Size]byte
	// authFailures slows password guessing down (authBackoff).
	authFailures *authBackoff
	// base is the context of every request; stop cancels it, so that calls
	// blocked in an injected hang or latency end when the agent shuts down.
	base context.Context
	stop context.CancelFunc

	// shutting is set once Shutdown or sys_shutdown stops the server
	// (server.go); it is stored under mu, and read without it.
	shutting atomic.Bool

	// mu guards the fields below: the simulated host's power state, the
	// listener and open connections that going down closes, and the
	// console listener.
	mu         sync.Mutex
	power      powerState
	boot       context.Context    // ends when the simulated host goes down
	bootEnd    context.CancelFunc // ends boot
	listener   net.Listener       // the one Serve accepts on; nil before
	conns      map[*agentConn]struct{}
	drained    chan struct{}    // closed when the last connection ends after Shutdown
	console    *consoleListener // nil until the first open_console
	listenHost string           // the host part of the address Serve listens on
	rebootHold chan struct{}    // tests: a reboot comes back only once it is closed
}

// New prepares an agent: it loads or creates the simulated host's state and
// the certificate in cfg.DataDir. It does not listen; see Serve and Start.
func New(cfg Config) (*Agent, error) {
	if cfg.Password == "" {
		return nil, errors.New("agent: a password is required (there is no default password)")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("agent: a data directory is required")
	}
	if cfg.Hostname == "" {
		name, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("agent: hostname: %w", err)
		}
		cfg.Hostname = name
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	newDriver := cfg.Driver
	if newDriver == nil {
		newDriver = xensim.Driver(xensim.Config{CPUs: cfg.CPUs, MemoryMiB: cfg.MemoryMiB})
	}
	h, err := host.New(host.Config{DataDir: cfg.DataDir, Hostname: cfg.Hostname, Driver: newDriver, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	var sim hypervisor.SimControl
	if cfg.SimControl {
		var ok bool
		if sim, ok = h.Driver().(hypervisor.SimControl); !ok {
			return nil, fmt.Errorf("agent: simulation control asked for, but the %T driver has none", h.Driver())
		}
	}
	cert, err := loadOrCreateCert(h.DataDir(), cfg.Hostname)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	spki, err := spkiSHA256(cert)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if cfg.RebootDelay <= 0 {
		cfg.RebootDelay = DefaultRebootDelay
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, host: h, sim: sim, cert: cert, spki: spki,
		userSum: sha256.Sum256([]byte(agentapi.AgentUser)), passwordSum: sha256.Sum256([]byte(cfg.Password)),
		headerSum:    sha256.Sum256([]byte(basicAuthHeader(agentapi.AgentUser, cfg.Password))),
		authFailures: newAuthBackoff(),
		conns:        map[*agentConn]struct{}{}, listenHost: "127.0.0.1"}
	a.methods = a.methodTable()
	a.bounds = serverBounds{headerTimeout: readHeaderTimeout, readTimeout: readTimeout, idleTimeout: idleTimeout, maxHeaderBytes: maxHeaderBytes}
	a.probe = &domainProbe{list: h.Driver().Domains}
	if cfg.Metrics != nil {
		if err := cfg.Metrics.reg.Register(newDomainCollector(a)); err != nil {
			h.Close()
			return nil, fmt.Errorf("agent: metrics: %w (one Metrics serves one agent)", err)
		}
		a.metrics = cfg.Metrics
	}
	base, stop := context.WithCancel(context.Background())
	a.base, a.stop = base, stop
	a.boot, a.bootEnd = context.WithCancel(base)
	return a, nil
}

// Host is the host behind the agent.
func (a *Agent) Host() *host.Host { return a.host }

// Sim is the simulated hypervisor behind the agent; nil when the agent
// runs another driver. Tests use it to inject faults and look inside.
func (a *Agent) Sim() *xensim.Sim {
	s, _ := a.host.Driver().(*xensim.Sim)
	return s
}

// SPKISHA256 is the hex SHA-256 of the certificate's SubjectPublicKeyInfo,
// the value the manager pins.
func (a *Agent) SPKISHA256() string { return a.spki }

// Shutdown stops accepting calls, abandons calls blocked by injected faults
// and outgoing migrations, cuts incoming ones, and waits for the other
// calls to finish or ctx to end.
func (a *Agent) Shutdown(ctx context.Context) error {
	a.stop()
	a.closeConsole()
	a.host.Close()
	return a.shutdownServer(ctx)
}

// Start creates an agent, listens on addr ("127.0.0.1:0" in tests) and
// serves in a goroutine. It returns the address actually bound.
func Start(cfg Config, addr string) (*Agent, net.Addr, error) {
	a, err := New(cfg)
	if err != nil {
		return nil, nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("agent: listen on %s: %w", addr, err)
	}
	go func() {
		if err := a.Serve(l); err != nil {
			a.log.Error("agent stopped serving", "address", l.Addr().String(), "err", err)
		}
	}()
	return a, l.Addr(), nil
}

// heldConn is a TCP connection under TLS whose writes can be held and then
// sent in one. crypto/tls writes an answer larger than a TLS record (16
// kB) as one record per write on the connection: sends that would each
// wake the client.
type heldConn struct {
	net.Conn
	mu      sync.Mutex
	holding bool
	held    []byte
}

// maxKeptHeld bounds the buffer a connection keeps between answers.
const maxKeptHeld = 64 << 10

func (c *heldConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holding {
		c.held = append(c.held, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// hold keeps what is written from now on until release.
func (c *heldConn) hold() {
	c.mu.Lock()
	c.holding = true
	c.mu.Unlock()
}

// release sends what was held, in one write, and stops holding.
func (c *heldConn) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holding = false
	if len(c.held) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.held)
	c.held = c.held[:0]
	if cap(c.held) > maxKeptHeld {
		c.held = nil
	}
	return err
}
