// Package shell is the SSH front of the manager: authentication, sessions,
// and the line editing of interactive sessions. It hands every command line
// to the commands package and knows nothing of how commands are carried out.
package shell

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"xenmanager/backend"
	"xenmanager/backend/metrics"
	"xenmanager/commands"
)

// Config is what the SSH server needs.
type Config struct {
	// HostKey is the key the server presents (the manager's, kept in the
	// database: backend.Manager.HostKey), so that clients' known_hosts
	// hold across restarts and for every manager of one database.
	HostKey gossh.Signer
	// Core authenticates users and keeps their settings and history.
	Core Core
	// NewSession makes the command session that runs each SSH session's
	// command lines (commands.NewSession on the manager).
	NewSession NewSessionFunc
	// Registry is the commands sessions run and completion offers.
	Registry *commands.Registry
	Logger   *slog.Logger
	// IdleTimeout closes a connection with no traffic for this long; 30 min
	// when zero.
	IdleTimeout time.Duration
	// Limits bound connections and sessions; each zero field takes its
	// value from DefaultLimits.
	Limits Limits
	// LoginTimeout closes a connection that has not logged in in time
	// (OpenSSH's LoginGraceTime); DefaultLoginGraceTime when zero.
	LoginTimeout time.Duration
	// PromptCommand starts the front-end of interactive sessions (the
	// manager's own binary with its hidden "prompt" subcommand). Empty: the
	// plain line editor serves every interactive session.
	PromptCommand []string
	// Metrics counts the sessions, by kind; nil counts nothing.
	Metrics *metrics.Manager
}

// Server is the manager's SSH server.
type Server struct {
	cfg      Config
	srv      *ssh.Server
	log      *slog.Logger
	startups *startups     // unauthenticated connections
	slots    *sessionSlots // sessions of users who logged in
	setups   setupSlots    // key checks and interactive setups in progress
	failures *loginFailures
	// wait waits d before a password is checked (the back-off), or until
	// ctx ends (false); a test replaces it to see the delays asked for.
	wait     func(ctx context.Context, d time.Duration) bool
	children children
	hostKey  gossh.PublicKey // what clients see and check against known_hosts
}

type ctxKey string

const actorKey ctxKey = "xenmanager.actor"

// New builds the server.
func New(cfg Config) (*Server, error) {
	if cfg.HostKey == nil || cfg.Core == nil || cfg.NewSession == nil || cfg.Registry == nil {
		return nil, errors.New("shell: a host key, a core, a session maker and a registry are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Minute
	}
	cfg.Limits = cfg.Limits.withDefaults()
	if err := cfg.Limits.Check(); err != nil {
		return nil, fmt.Errorf("shell: %w", err)
	}
	if cfg.LoginTimeout <= 0 {
		cfg.LoginTimeout = DefaultLoginGraceTime
	}
	s := &Server{cfg: cfg, log: cfg.Logger, startups: newStartups(cfg.Limits.Startups, cfg.Limits.StartupsPerAddress),
		slots: newSessionSlots(cfg.Limits.Sessions, cfg.Limits.SessionsPerUser), setups: newSetupSlots(cfg.Limits.SessionSetups),
		failures: newLoginFailures(), wait: waitFor, hostKey: cfg.HostKey.PublicKey()}
	s.srv = &ssh.Server{
		Handler:                s.handle,
		PasswordHandler:        s.checkPassword,
		PublicKeyHandler:       s.checkKey,
		IdleTimeout:            cfg.IdleTimeout,
		ConnCallback:           s.onConnect,
		ServerConfigCallback:   s.serverConfig,
		ChannelHandlers:        map[string]ssh.ChannelHandler{"session": s.openSession},
		SessionRequestCallback: s.startSession,
	}
	s.srv.AddHostKey(cfg.HostKey)
	return s, nil
}

// HostKey is the server's public host key, whose fingerprint an operator
// compares with what ssh shows on the first connection.
func (s *Server) HostKey() gossh.PublicKey { return s.hostKey }

// waitFor waits d, or until ctx ends (false).
func waitFor(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// checkPassword authenticates through the backend and keeps the actor in the
// connection's context for the session handler. Recent failures from the
// address or on the user delay the check (loginFailures). The check takes
// a setup slot (Limits.SessionSetups) after its delay: the password's hash
// (in the backend's own slots) and the other logins' setups then take at
// most that many processors between them, and a storm of logins queues
// rather than crowds the jobs in flight.
func (s *Server) checkPassword(ctx ssh.Context, password string) bool {
	ip, user := sourceOf(ctx.RemoteAddr()), ctx.User()
	if d := s.failures.delay(user, ip); d > 0 && !s.wait(ctx, d) {
		return false
	}
	var actor backend.Actor
	var err error
	if !s.setups.do(ctx, func() { actor, err = s.cfg.Core.Authenticate(ctx, user, password) }) {
		return false // the connection ended while it waited: not a failure
	}
	if err != nil {
		s.failures.fail(user, ip)
		s.log.Warn("login refused", "user", user, "remote", ctx.RemoteAddr().String())
		return false
	}
	s.failures.succeed(user, ip)
	actor.Remote = ctx.RemoteAddr().String()
	ctx.SetValue(actorKey, actor)
	ctx.SetValue(authMethodKey, "password")
	return true
}

// checkKey authenticates with a public key registered for the user
// (create SshKey). Password failures never delay it. The check takes a
// setup slot (Limits.SessionSetups), so that a storm of key logins queues
// here rather than beside the jobs in flight.
func (s *Server) checkKey(ctx ssh.Context, key ssh.PublicKey) bool {
	var actor backend.Actor
	var err error
	if !s.setups.do(ctx, func() { actor, err = s.cfg.Core.AuthenticateKey(ctx, ctx.User(), key) }) || err != nil {
		return false
	}
	actor.Remote = ctx.RemoteAddr().String()
	ctx.SetValue(actorKey, actor)
	ctx.SetValue(authMethodKey, "publickey")
	return true
}

// authMethodKey records how the connection authenticated, so that the
// session can check a key login again.
const authMethodKey ctxKey = "xenmanager.authmethod"

// connKey holds the connection's *clientConn.
const connKey ctxKey = "xenmanager.conn"

// serverConfig adds to gliderlabs/ssh's configuration of a connection the
// one place that knows a login succeeded: the public-key handler also
// answers clients that only ask whether a key would do, without proving
// they hold it.
func (s *Server) serverConfig(ctx ssh.Context) *gossh.ServerConfig {
	return &gossh.ServerConfig{AuthLogCallback: func(cm gossh.ConnMetadata, _ string, err error) {
		if c, ok := ctx.Value(connKey).(*clientConn); ok && err == nil {
			c.loggedIn(cm.User())
		}
	}}
}

// onConnect admits a connection to the unauthenticated pool (Limits) and
// closes it if it has not logged in within LoginTimeout, so that silent
// connections cannot hold the pool (gliderlabs/ssh has no handshake
// timeout of its own).
func (s *Server) onConnect(ctx ssh.Context, conn net.Conn) net.Conn {
	ip := sourceOf(conn.RemoteAddr())
	c := &clientConn{s: s, authed: make(chan struct{})}
	slot, ok := s.startups.admit(ip, func() {
		s.log.Warn("unauthenticated connection closed for a newcomer from a less busy address", "remote", conn.RemoteAddr().String())
		conn.Close()
	})
	if !ok {
		s.log.Warn("connection refused: too many unauthenticated connections", "remote", conn.RemoteAddr().String())
		return nil // gliderlabs/ssh closes it
	}
	c.startup = slot
	ctx.SetValue(connKey, c)
	lc := &limitConn{Conn: conn, release: c.close, quickAck: quickAcker(conn)}
	if lc.quickAck != nil {
		lc.quickAck()
	}
	go func() {
		timer := time.NewTimer(s.cfg.LoginTimeout)
		defer timer.Stop()
		select {
		case <-c.authed:
		case <-ctx.Done():
		case <-timer.C:
			s.log.Warn("connection closed: no login in time", "remote", conn.RemoteAddr().String())
			lc.Close()
		}
	}()
	return lc
}

// Serve accepts connections on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	err := s.srv.Serve(l)
	if errors.Is(err, ssh.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, ends the interactive front-ends (a session at a
// prompt would otherwise never end) and waits for sessions to end, or ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.children.killAll()
	return s.srv.Shutdown(ctx)
}

// Close closes the listener and every connection at once, and ends every
// front-end process.
func (s *Server) Close() error {
	err := s.srv.Close()
	s.children.killAll()
	return err
}

type limitConn struct {
	net.Conn
	once     sync.Once
	release  func()
	quickAck func() // nil where the platform has no quick acknowledgement
}

// Read reads, then asks again for quick acknowledgement (see quickAcker).
func (c *limitConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.quickAck != nil {
		c.quickAck()
	}
	return n, err
}

// Close frees the connection's slots before closing, so that a client that
// sees the connection end can connect again at once.
func (c *limitConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
