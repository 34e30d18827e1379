// Package shell is the SSH front of the manager: authentication, sessions,
// and the line editing of interactive sessions. It hands every command line
// to the commands package and knows nothing of how commands are carried out.
package shell

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"xenmanager/backend/metrics"
	"xenmanager/commands"
)

// Config is what the SSH server needs.
type Config struct {
	HostKeyPath string
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
	// MaxConns bounds concurrent connections; 256 when zero. Connections
	// past it are closed at once rather than queued.
	MaxConns int
	// MaxConnsPerIP bounds concurrent connections from one address; 32 when
	// zero.
	MaxConnsPerIP int
	// LoginTimeout closes a connection that has not authenticated in time;
	// 20 s when zero.
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
	limits   *connLimits
	failures *loginFailures
	children children
	hostKey  gossh.PublicKey // what clients see and check against known_hosts
}

type ctxKey string

const actorKey ctxKey = "xenmanager.actor"

// New builds the server and loads (or creates) its host key.
func New(cfg Config) (*Server, error) {
	if cfg.Core == nil || cfg.NewSession == nil || cfg.Registry == nil {
		return nil, errors.New("shell: a core, a session maker and a registry are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Minute
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 256
	}
	if cfg.MaxConnsPerIP <= 0 {
		cfg.MaxConnsPerIP = 32
	}
	if cfg.LoginTimeout <= 0 {
		cfg.LoginTimeout = 20 * time.Second
	}
	signer, err := LoadOrCreateHostKey(cfg.HostKeyPath)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, limits: newConnLimits(cfg.MaxConns, cfg.MaxConnsPerIP),
		failures: newLoginFailures(), hostKey: signer.PublicKey()}
	s.srv = &ssh.Server{
		Handler:          s.handle,
		PasswordHandler:  s.checkPassword,
		PublicKeyHandler: s.checkKey,
		IdleTimeout:      cfg.IdleTimeout,
		ConnCallback:     s.onConnect,
	}
	s.srv.AddHostKey(signer)
	return s, nil
}

// HostKey is the server's public host key, whose fingerprint an operator
// compares with what ssh shows on the first connection.
func (s *Server) HostKey() gossh.PublicKey { return s.hostKey }

// checkPassword authenticates through the backend and keeps the actor in the
// connection's context for the session handler.
func (s *Server) checkPassword(ctx ssh.Context, password string) bool {
	ip := hostOf(ctx.RemoteAddr())
	// Back off per source address: each recent failure delays the answer.
	if d := s.failures.delay(ip); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return false
		}
	}
	actor, err := s.cfg.Core.Authenticate(ctx, ctx.User(), password)
	if err != nil {
		s.failures.fail(ip)
		s.log.Warn("login refused", "user", ctx.User(), "remote", ctx.RemoteAddr().String())
		return false
	}
	s.failures.succeed(ip)
	actor.Remote = ctx.RemoteAddr().String()
	ctx.SetValue(actorKey, actor)
	ctx.SetValue(authMethodKey, "password")
	if done, ok := ctx.Value(authDoneKey).(func()); ok {
		done()
	}
	return true
}

// checkKey authenticates with a public key registered for the user
// (create SshKey).
func (s *Server) checkKey(ctx ssh.Context, key ssh.PublicKey) bool {
	actor, err := s.cfg.Core.AuthenticateKey(ctx, ctx.User(), key)
	if err != nil {
		return false
	}
	actor.Remote = ctx.RemoteAddr().String()
	ctx.SetValue(actorKey, actor)
	ctx.SetValue(authMethodKey, "publickey")
	if done, ok := ctx.Value(authDoneKey).(func()); ok {
		done()
	}
	return true
}

// authMethodKey records how the connection authenticated, so that the
// session can check a key login again.
const authMethodKey ctxKey = "xenmanager.authmethod"

const authDoneKey ctxKey = "xenmanager.authdone"

// onConnect admits a connection within the global and per-address limits
// and closes it if it has not authenticated within LoginTimeout, so that
// silent connections cannot hold every slot (gliderlabs/ssh has no handshake
// timeout of its own).
func (s *Server) onConnect(ctx ssh.Context, conn net.Conn) net.Conn {
	ip := hostOf(conn.RemoteAddr())
	release, ok := s.limits.acquire(ip)
	if !ok {
		s.log.Warn("connection refused: too many connections", "remote", conn.RemoteAddr().String())
		return nil // gliderlabs/ssh closes it
	}
	lc := &limitConn{Conn: conn, release: release, quickAck: quickAcker(conn)}
	if lc.quickAck != nil {
		lc.quickAck()
	}
	authed := make(chan struct{})
	var once sync.Once
	ctx.SetValue(authDoneKey, func() { once.Do(func() { close(authed) }) })
	go func() {
		timer := time.NewTimer(s.cfg.LoginTimeout)
		defer timer.Stop()
		select {
		case <-authed:
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

// Close frees the slot before closing, so that a client that sees the
// connection end can connect again at once.
func (c *limitConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
