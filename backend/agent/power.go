package agent

import (
	"context"
	"net"
	"time"

	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agentapi"
)

// powerState is the simulated host's power state, as sys_reboot and
// sys_shutdown change it.
type powerState int

const (
	powerOn        powerState = iota
	powerRebooting            // down for Config.RebootDelay, then on again
	powerOff                  // down until the process is started again
)

// gateListener drops every connection while the simulated host is down, as
// a host that is rebooting or off answers nothing. Dropping (rather than
// closing the listener) keeps the port, so that the host comes back where
// it was.
type gateListener struct {
	net.Listener
	a *Agent
}

// Accept returns the next connection made while the host is up.
func (g gateListener) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !g.a.isDown() {
			return c, nil
		}
		c.Close()
	}
}

// isDown reports whether the simulated host is rebooting or off.
func (a *Agent) isDown() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.power != powerOn
}

// PoweredOff reports whether sys_shutdown powered the simulated host off.
func (a *Agent) PoweredOff() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.power == powerOff
}

// bootContext ends when the simulated host goes down, which abandons the
// calls in flight.
func (a *Agent) bootContext() context.Context {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.boot
}

// goDown takes the simulated host down, for sys_reboot (reboot) or
// sys_shutdown: from now on no connection is accepted and no call answered
// but the caller's, and every domain is lost. It returns what the caller
// must run once its own answer is sent: cut every connection, then come
// back after RebootDelay, or, for a shutdown, close the listener so that
// Serve returns (the daemon then exits).
func (a *Agent) goDown(reboot bool) func() {
	a.mu.Lock()
	a.power = powerOff
	if reboot {
		a.power = powerRebooting
	}
	a.bootEnd()
	a.mu.Unlock()
	a.host.Reset()
	if reboot {
		a.log.Warn("simulated host rebooting: not answering meanwhile", "delay", a.cfg.RebootDelay)
	} else {
		a.log.Warn("simulated host powered off: not answering until the agent is started again")
	}
	return func() {
		a.closeConns()
		a.closeConsole()
		if reboot {
			go a.comeBack()
			return
		}
		a.closeServer() // Serve returns; calls in flight are cut
	}
}

// powerCall answers sys_reboot (reboot) and sys_shutdown. The simulated
// host goes down as goDown says. A host whose driver runs real guests
// reboots or powers off the real machine, only when the agent was started
// to allow it (Config.HostPower), after the answer is sent; otherwise the
// call is refused, saying how to allow it.
func (a *Agent) powerCall(c *call, reboot bool) (any, error) {
	verb, method := "power off", agentapi.MethodSysShutdown
	if reboot {
		verb, method = "reboot", agentapi.MethodSysReboot
	}
	if kind, _ := a.host.Driver().Hypervisor(); kind == hypervisor.TypeSimulated {
		c.after = a.goDown(reboot)
		return true, nil
	}
	if a.cfg.HostPower == nil {
		return nil, agentapi.Errorf(agentapi.FaultInvalidState,
			"%s would %s this real machine and every guest on it; this agent refuses it unless started with --allow-host-power", method, verb)
	}
	a.log.Warn("the machine is going down at the manager's request", "call", method)
	c.after = func() {
		if err := a.cfg.HostPower(reboot); err != nil {
			a.log.Error("could not "+verb+" the machine", "err", err)
		}
	}
	return true, nil
}

// comeBack ends a reboot after RebootDelay (and, in tests, once rebootHold
// is closed): the host starts again with no domains, its certificate and
// state as they were. It gives up when the agent shuts down.
func (a *Agent) comeBack() {
	t := time.NewTimer(a.cfg.RebootDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-a.base.Done():
		return
	}
	a.mu.Lock()
	hold := a.rebootHold
	a.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-a.base.Done():
			return
		}
	}
	a.host.Reset() // a call that raced the reboot may have started a domain
	a.mu.Lock()
	a.boot, a.bootEnd = context.WithCancel(a.base)
	a.power = powerOn
	a.mu.Unlock()
	a.log.Info("simulated host is up again after a reboot")
}
