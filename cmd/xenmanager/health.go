package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"xenmanager/cmd/internal/monitor"
	"xenmanager/store"
)

// States of the SSH server, as /healthz tells them.
const (
	sshStarting int32 = iota // start-up (recovery, demo fleet, reconciliation) is not done
	sshServing               // the SSH server accepts sessions
	sshStopping              // shutting down, or the server stopped on an error
)

// managerHealth answers the manager's /healthz: healthy when the SSH
// server serves and the store answers a read.
type managerHealth struct {
	st  *store.Store
	ssh atomic.Int32 // sshStarting, sshServing or sshStopping
}

// check is the manager's monitor.Check.
func (h *managerHealth) check(ctx context.Context) error {
	switch h.ssh.Load() {
	case sshStarting:
		return monitor.Unhealthy("starting up", nil)
	case sshStopping:
		return monitor.Unhealthy("shutting down", nil)
	}
	if _, err := h.st.SchemaVersion(ctx); err != nil {
		return monitor.Unhealthy("store not answering", err)
	}
	return nil
}

// serveMonitor serves /metrics and /healthz on ml until the function it
// returns is called, and says where.
func serveMonitor(ml net.Listener, g prometheus.Gatherer, check monitor.Check, log *slog.Logger) (stop func()) {
	stop = monitor.Start(ml, g, check, log)
	fmt.Printf("metrics listening on %s\n", ml.Addr())
	return stop
}
