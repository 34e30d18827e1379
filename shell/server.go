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

	"xenmanager/backend"
	"xenmanager/commands"
)

// Config is what the SSH server needs.
type Config struct {
	HostKeyPath string
	Backend     *backend.Manager
	Registry    *commands.Registry
	Logger      *slog.Logger
	// IdleTimeout closes a connection with no traffic for this long; 30 min
	// when zero.
	IdleTimeout time.Duration
	// MaxConns bounds concurrent connections; 256 when zero.
	MaxConns int
}

// Server is the manager's SSH server.
type Server struct {
	cfg Config
	srv *ssh.Server
	log *slog.Logger
}

type ctxKey string

const actorKey ctxKey = "xenmanager.actor"

// New builds the server and loads (or creates) its host key.
func New(cfg Config) (*Server, error) {
	if cfg.Backend == nil || cfg.Registry == nil {
		return nil, errors.New("shell: a backend and a registry are required")
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
	signer, err := LoadOrCreateHostKey(cfg.HostKeyPath)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	s.srv = &ssh.Server{
		Handler:         s.handle,
		PasswordHandler: s.checkPassword,
		IdleTimeout:     cfg.IdleTimeout,
	}
	s.srv.AddHostKey(signer)
	return s, nil
}

// checkPassword authenticates through the backend and keeps the actor in the
// connection's context for the session handler.
func (s *Server) checkPassword(ctx ssh.Context, password string) bool {
	actor, err := s.cfg.Backend.Authenticate(ctx, ctx.User(), password)
	if err != nil {
		s.log.Warn("login refused", "user", ctx.User(), "remote", ctx.RemoteAddr().String())
		return false
	}
	actor.Remote = ctx.RemoteAddr().String()
	ctx.SetValue(actorKey, actor)
	return true
}

// Serve accepts connections on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	err := s.srv.Serve(&limitListener{Listener: l, slots: make(chan struct{}, s.cfg.MaxConns)})
	if errors.Is(err, ssh.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting and waits for sessions to end, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// Close closes the listener and every connection at once.
func (s *Server) Close() error { return s.srv.Close() }

// limitListener holds Accept while MaxConns connections are open, so that a
// flood of clients cannot exhaust the manager.
type limitListener struct {
	net.Listener
	slots chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.slots <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
