// Package agentclient is the manager's side of the agent protocol: XML-RPC
// over HTTPS with basic auth and a pinned certificate. It turns every way a
// call can fail into one of a few typed errors, so that the backend decides
// once what each means.
//
// Every method goes one way (call): HTTP/1.1 on keep-alive TLS connections
// of the client's own (conn: the request written and the answer read in
// the caller's goroutine, with net/http's reader of answers), bounded by the
// call's context and timeout, the answer's headers and body read up to
// fixed bounds (the body's xmlrpcwire.MaxResponseBytes), the same errors.
// Only the codec differs by method. github.com/kolo/xmlrpc, the project's XML-RPC library, encodes
// the calls and decodes the answers of the methods whose cost does not
// matter (xmlrpc.EncodeMethodCall, xmlrpc.Response), held to a
// methodResponse and a bounded nesting before it reads them; the methods
// the watcher makes of every server at every beat or reconciliation
// (get_events, list_vms: wireMethods) go through xmlrpcwire, the agent's
// own codec, at a fraction of kolo's CPU and allocations
// (docs/performance.md, figures 4 and 6). The calls that last as long as
// their work (import_virtual_disk, copy_file) take the same way on a
// transport of their own, without a timeout.
package agentclient

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"xenmanager/backend/agentapi"
)

// Errors a call can end in, besides an *agentapi.Fault from the agent.
var (
	// ErrUnreachable: the agent could not be reached or did not answer in time.
	ErrUnreachable = errors.New("agent unreachable")
	// ErrUnauthorized: the agent refused the password (HTTP 401).
	ErrUnauthorized = errors.New("agent refused the password")
	// ErrTooManyFailures: the agent refuses calls from this address for a
	// while after wrong passwords (HTTP 429); the password was not checked.
	ErrTooManyFailures = errors.New("agent refuses calls from this address for a while after wrong passwords")
	// ErrCertificateChanged: the agent's certificate is not the pinned one.
	ErrCertificateChanged = errors.New("agent certificate does not match the pinned one")
	// ErrProtocol: the agent answered something that is not the protocol.
	ErrProtocol = errors.New("agent protocol error")
	// ErrInvalidCall: the call does not fit its method's signature in
	// agentapi.Signatures (a bug of the caller); nothing was sent.
	ErrInvalidCall = errors.New("invalid agent call")
)

// Config says how to reach one agent.
type Config struct {
	Address  string // host or IP
	Port     int
	Password string
	// PinSHA256 is the hex SHA-256 of the agent certificate's
	// SubjectPublicKeyInfo. Empty trusts the first certificate seen (only
	// for discovery, which then records the pin); see Client.SeenPin.
	PinSHA256 string
	// Conns is the number of calls that may be in flight at once, each
	// on a connection of its own; 4 when zero.
	Conns int
	// Timeout bounds a call's round trip; 30 s when zero.
	Timeout time.Duration
	// Observe, when set, is called after each call with its method (one
	// of the protocol's, or "unknown"), its Outcome and how long it took
	// from Call to its return, the wait for a slot among Conns included:
	// the manager's metrics.
	Observe func(method, result string, d time.Duration)
}

// Client calls one agent. It is safe for concurrent use: up to Conns calls
// at once, each on its own keep-alive connection, and beside them one
// get_events the agent holds (GetEventsWait).
type Client struct {
	cfg Config
	sem chan struct{} // a slot per call in flight
	// heldSem is the slot of the one get_events the agent may hold
	// (GetEventsWait), beside sem's, so that it never takes one of the
	// Conns slots the other calls wait for.
	heldSem chan struct{}

	mu      sync.Mutex // guards seenPin
	seenPin string
	tlsConf *tls.Config
	head    string   // of every request, up to its length (requestHead)
	pool    connPool // the idle connections
}

// New returns a client for the agent cfg names. It dials nothing until the
// first call.
func New(cfg Config) (*Client, error) {
	if cfg.Conns <= 0 {
		cfg.Conns = 4
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Port <= 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("agent port %d out of range 1-65535", cfg.Port)
	}
	c := &Client{
		cfg:     cfg,
		sem:     make(chan struct{}, cfg.Conns),
		heldSem: make(chan struct{}, 1),
	}
	c.tlsConf = &tls.Config{
		// The agent's certificate is self-signed: trust comes from the pin
		// checked in VerifyConnection, not from a CA.
		InsecureSkipVerify: true,
		VerifyConnection:   c.verify,
		MinVersion:         tls.VersionTLS12,
		// A connection dropped (a cancelled call, an agent's restart of
		// its listener) comes back with a resumed session, not a full
		// handshake; verify still checks the pin on it.
		ClientSessionCache: tls.NewLRUClientSessionCache(cfg.Conns),
	}
	c.head = requestHead(cfg)
	return c, nil
}

// SPKISHA256 returns the hex SHA-256 of a certificate's SubjectPublicKeyInfo,
// the value pinned for an agent.
func SPKISHA256(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

func (c *Client) verify(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("agent presented no certificate")
	}
	got := SPKISHA256(cs.PeerCertificates[0])
	c.mu.Lock()
	c.seenPin = got
	c.mu.Unlock()
	if c.cfg.PinSHA256 != "" && !strings.EqualFold(got, c.cfg.PinSHA256) {
		return fmt.Errorf("%w: pinned %s, presented %s", ErrCertificateChanged, c.cfg.PinSHA256, got)
	}
	return nil
}

// SeenPin returns the SPKI hash of the certificate the agent presented on the
// last handshake, "" before the first one.
func (c *Client) SeenPin() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seenPin
}

// Address returns "host:port" of the agent.
func (c *Client) Address() string { return net.JoinHostPort(c.cfg.Address, strconv.Itoa(c.cfg.Port)) }

// Reaches reports whether the client talks to the agent cfg names with the
// same credentials and pin, that is, whether it can serve in cfg's place.
func (c *Client) Reaches(cfg Config) bool {
	return c.cfg.Address == cfg.Address && c.cfg.Port == cfg.Port && c.cfg.Password == cfg.Password &&
		strings.EqualFold(c.cfg.PinSHA256, cfg.PinSHA256)
}

// Close drops idle connections. Calls in flight finish and then close their
// connections instead of keeping them.
func (c *Client) Close() { c.pool.close() }

// CallError is the error of a failed call: which method, on which agent, and
// why (one of the package's errors or an *agentapi.Fault).
type CallError struct {
	Method string
	Addr   string
	Err    error
}

func (e *CallError) Error() string {
	return fmt.Sprintf("%s on %s: %v", e.Method, e.Addr, e.Err)
}

func (e *CallError) Unwrap() error { return e.Err }

// acquire checks a call's arguments and takes its slot in sem (among the
// Conns calls in flight, or the held one); the caller gives it back.
func (c *Client) acquire(ctx context.Context, sem chan struct{}, method string, args []any) error {
	if err := checkArgs(method, args); err != nil {
		return &CallError{method, c.Address(), err}
	}
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return &CallError{method, c.Address(), fmt.Errorf("%w: %w", ErrUnreachable, ctx.Err())}
	}
}

// checkArgs holds a call to its method's signature, declared once in
// agentapi.Signatures for both ends, before anything is sent.
func checkArgs(method string, args []any) error {
	sig, ok := agentapi.Signatures[method]
	if !ok {
		return fmt.Errorf("%w: %s is not a method of the protocol", ErrInvalidCall, method)
	}
	if _, err := sig.Check(args); err != nil {
		return fmt.Errorf("%w: %s %w", ErrInvalidCall, method, err)
	}
	return nil
}

// Call invokes method with args and decodes the result into result (a
// pointer, or nil to discard it). The error, when not nil, is a *CallError.
func (c *Client) Call(ctx context.Context, method string, result any, args ...any) error {
	return c.observe(method, func() error { return c.call(ctx, pooled, c.cfg.Timeout, method, result, args) })
}

// observe runs call, a call of method, and tells Observe how it went.
func (c *Client) observe(method string, call func() error) error {
	if c.cfg.Observe == nil {
		return call()
	}
	start := time.Now()
	err := call()
	if _, ok := agentapi.Signatures[method]; !ok {
		method = "unknown" // the label stays within the protocol's methods
	}
	c.cfg.Observe(method, Outcome(err), time.Since(start))
	return err
}

// Outcomes of a call besides ok and the agent's fault kinds (Outcome).
const (
	OutcomeOK                 = "ok"
	OutcomeUnreachable        = "unreachable"
	OutcomeUnauthorized       = "unauthorized"
	OutcomeTooManyFailures    = "too_many_failures"
	OutcomeCertificateChanged = "certificate_changed"
	OutcomeProtocol           = "protocol"
	OutcomeInvalidCall        = "invalid_call"
	// OutcomeUnknownFault is a fault whose code the protocol does not
	// define: an agent's code is not taken as a label value as it is.
	OutcomeUnknownFault = "UnknownFault"
)

// Outcome names how a call that returned err ended, in a word from a fixed
// set: OutcomeOK for nil, the kind of the agent's fault (NotFound, Busy
// ...), or one of the other Outcome constants for the package's errors.
func Outcome(err error) string {
	if err == nil {
		return OutcomeOK
	}
	if f, ok := agentapi.AsFault(err); ok {
		if !f.Code.Known() {
			return OutcomeUnknownFault
		}
		return f.Code.Kind()
	}
	switch {
	case errors.Is(err, ErrUnauthorized):
		return OutcomeUnauthorized
	case errors.Is(err, ErrTooManyFailures):
		return OutcomeTooManyFailures
	case errors.Is(err, ErrCertificateChanged):
		return OutcomeCertificateChanged
	case errors.Is(err, ErrInvalidCall):
		return OutcomeInvalidCall
	case errors.Is(err, ErrUnreachable):
		return OutcomeUnreachable
	}
	return OutcomeProtocol
}
