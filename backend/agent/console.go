package agent

import (
	"errors"
	"net"

	"xenmanager/backend/agentapi"
)

// consoleListener is the plain-TCP listener of serial consoles
// (open_console), started by the first open_console on the host the agent
// listens on, and the console connections it accepted; conns is guarded by
// Agent.mu.
type consoleListener struct {
	l     net.Listener
	conns map[net.Conn]struct{}
}

// openConsole answers open_console: a token from the host and the address
// of the console listener, as the caller reached this agent.
func (a *Agent) openConsole(c *call, repoID, vmID string) (agentapi.Console, error) {
	token, err := a.host.OpenConsole(repoID, vmID)
	if err != nil {
		return agentapi.Console{}, err
	}
	port, listenHost, err := a.consolePort()
	if err != nil {
		return agentapi.Console{}, err
	}
	host := c.localHost()
	if host == "" {
		host = listenHost
	}
	return agentapi.Console{Address: net.JoinHostPort(host, port), Token: token}, nil
}

// consolePort starts the console listener if it is not running and returns
// its port and the host it listens on.
func (a *Agent) consolePort() (port, host string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.console == nil {
		l, err := net.Listen("tcp", net.JoinHostPort(a.listenHost, "0"))
		if err != nil {
			return "", "", agentapi.Errorf(agentapi.FaultInternalError, "start the console listener on %s: %v", a.listenHost, err)
		}
		a.console = &consoleListener{l: l, conns: map[net.Conn]struct{}{}}
		go a.acceptConsoles(a.console)
	}
	_, port, _ = net.SplitHostPort(a.console.l.Addr().String())
	return port, a.listenHost, nil
}

// acceptConsoles serves console connections of cl until it is closed. On
// another accept error it retires cl, so that the next open_console starts
// a fresh listener.
func (a *Agent) acceptConsoles(cl *consoleListener) {
	for {
		conn, err := cl.l.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				a.log.Error("console listener failed", "err", err)
				a.mu.Lock()
				if a.console == cl {
					a.console = nil
				}
				a.mu.Unlock()
				cl.l.Close()
			}
			return
		}
		a.mu.Lock()
		if a.console != cl {
			a.mu.Unlock()
			conn.Close()
			return
		}
		cl.conns[conn] = struct{}{}
		a.mu.Unlock()
		go func() {
			a.host.ServeConsole(conn)
			a.mu.Lock()
			delete(cl.conns, conn)
			a.mu.Unlock()
		}()
	}
}

// closeConsole stops the console listener, if any, and cuts its
// connections.
func (a *Agent) closeConsole() {
	a.mu.Lock()
	cl := a.console
	a.console = nil
	var conns []net.Conn
	if cl != nil {
		for c := range cl.conns {
			conns = append(conns, c)
		}
	}
	a.mu.Unlock()
	if cl == nil {
		return
	}
	cl.l.Close()
	for _, c := range conns {
		c.Close()
	}
}
