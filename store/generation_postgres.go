package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgListener keeps the inventory's generation of a store on PostgreSQL in
// step with the other managers' writes: the trigger of migration 0001
// notifies channel xenmanager_servers at the commit of every transaction
// that changed a servers, server_pools, repositories, users,
// anti_affinity_groups or anti_affinity_members row (migrations 0001, 0023
// and 0024), and the listener, on a
// connection of its own, bumps the generation at each notification; the
// triggers of migration 0025 notify channel xenmanager_vms of the rows
// show Vm reads, and the listener bumps the VMs' generations they name
// (vmgeneration.go), with the same staleness.
//
// Staleness: a server list another manager changed is cached until the
// notification of that commit arrives, which PostgreSQL delivers as soon
// as the commit is done (a round trip's time). While the listener has no
// connection (lost, or not yet re-made) nothing is cached at all
// (InventoryGeneration gives a new value at each call), and the generation
// is bumped when the connection is lost and again once LISTEN runs on the
// new one, for the changes made in between. A connection that dies
// without a word (a cut network) is found by a ping after listenIdle
// without a notification, within listenPingTimeout: that is the bound on
// the staleness in the worst case, listenIdle + listenPingTimeout.
type pgListener struct {
	cfg       *pgx.ConnConfig
	s         *Store
	listening atomic.Bool // a LISTEN is in place: the generation may be cached
	stopOnce  sync.Once
	cancel    context.CancelFunc
	done      chan struct{}

	mu  sync.Mutex // guards pid
	pid uint32     // the listening session's backend pid; 0 while none listens
}

// listenChannel is the channel of the inventory trigger's notifications;
// vmChannel that of the VMs' (migration 0025), whose payload is a VM's id
// or empty (every VM's generation, vmHeard).
const (
	listenChannel = "xenmanager_servers"
	vmChannel     = "xenmanager_vms"
)

// The listener's liveness checks (see pgListener) and how long it waits
// between two attempts to connect again.
const (
	listenIdle        = time.Second
	listenPingTimeout = 2 * time.Second
	listenRetry       = 500 * time.Millisecond
)

// listenServers connects the listener of s and starts it; the first LISTEN
// must succeed, so that a store that opens hears of the other managers'
// changes from the start.
func listenServers(ctx context.Context, cfg *pgx.ConnConfig, s *Store) (*pgListener, error) {
	l := &pgListener{cfg: cfg, s: s, done: make(chan struct{})}
	conn, err := l.connect(ctx)
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go l.run(lctx, conn)
	return l, nil
}

// connect opens a connection and listens on it.
func (l *pgListener) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, l.cfg)
	if err != nil {
		return nil, fmt.Errorf("listen for changes to the servers: %w", err)
	}
	if _, err := conn.Exec(ctx, `LISTEN `+listenChannel+`; LISTEN `+vmChannel); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("listen for changes to the servers: %w", err)
	}
	l.mu.Lock()
	l.pid = conn.PgConn().PID()
	l.mu.Unlock()
	// What changed while no one listened.
	l.s.inventoryGen.Add(1)
	l.s.vmHeard("")
	l.listening.Store(true)
	return conn, nil
}

// run waits for notifications on conn until ctx ends; when the connection
// fails it makes another, trying again every listenRetry.
func (l *pgListener) run(ctx context.Context, conn *pgx.Conn) {
	defer close(l.done)
	for {
		l.wait(ctx, conn)
		l.listening.Store(false)
		l.mu.Lock()
		l.pid = 0
		l.mu.Unlock()
		l.s.inventoryGen.Add(1)
		l.s.vmHeard("")
		conn.Close(context.Background())
		for conn = nil; conn == nil; {
			if ctx.Err() != nil {
				return
			}
			var err error
			if conn, err = l.connect(ctx); err != nil {
				select {
				case <-ctx.Done():
					return
				case <-time.After(listenRetry):
				}
			}
		}
	}
}

// wait bumps the generation at each notification on conn, and pings the
// connection after listenIdle without one; it returns when the
// connection fails or ctx ends.
func (l *pgListener) wait(ctx context.Context, conn *pgx.Conn) {
	for {
		wctx, cancel := context.WithTimeout(ctx, listenIdle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			// The store's own writes bump the generation themselves, while
			// they run and after their commit (runGroup); only those of
			// other sessions do here.
			if n.PID == l.s.writerPID.Load() {
				continue
			}
			if n.Channel == vmChannel {
				l.s.vmHeard(n.Payload)
			} else {
				l.s.inventoryGen.Add(1)
			}
			continue
		case ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded):
			return
		}
		pctx, cancel := context.WithTimeout(ctx, listenPingTimeout)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return
		}
	}
}

// listenerPID is the listening session's backend pid, 0 while none
// listens.
func (l *pgListener) listenerPID() uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pid
}

// stop ends the listener and waits for it.
func (l *pgListener) stop() {
	l.stopOnce.Do(l.cancel)
	<-l.done
}
