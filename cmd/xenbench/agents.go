package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"xenmanager/backend/agent"
	"xenmanager/backend/agentapi"
)

// fleet is simulated Xen servers served from the harness's own process
// (agent.Start on 127.0.0.1:0, real HTTPS); their CPU is the
// harness's, never the manager's.
type fleet struct {
	agents    []*agent.Agent
	ports     []int
	passwords []string
	hostnames []string
	received  atomic.Int64 // bytes the agents read from their connections
	// metrics are the agents' own call counters (agent.Metrics), one per
	// agent, when the fleet was started with them; nil otherwise.
	metrics []*agent.Metrics
}

// startAgent is agent.Start on 127.0.0.1:0 with a listener that counts
// the bytes the agent receives (evidence that the manager calls it).
func startAgent(cfg agent.Config, received *atomic.Int64) (*agent.Agent, net.Addr, error) {
	a, err := agent.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	go a.Serve(countingListener{l, received})
	return a, l.Addr(), nil
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.n}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// startFleet starts n agents named prefix01.. with data under dir.
func startFleet(ctx context.Context, dir, prefix string, n int, sim bool, memMiB int64, cpus int) (*fleet, error) {
	return startFleetCounted(ctx, dir, prefix, n, sim, memMiB, cpus, false)
}

// startFleetCounted is startFleet; with counted, each agent records the
// calls it serves by method (agent.Metrics), which callsByMethod reads.
func startFleetCounted(ctx context.Context, dir, prefix string, n int, sim bool, memMiB int64, cpus int, counted bool) (*fleet, error) {
	f := &fleet{}
	var metrics []*agent.Metrics
	if counted {
		metrics = make([]*agent.Metrics, n)
		for i := range metrics {
			metrics[i] = agent.NewMetrics()
		}
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	type started struct {
		a        *agent.Agent
		port     int
		pw, host string
		metrics  *agent.Metrics
	}
	out := make([]started, n)
	slots := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			raw := make([]byte, 12)
			rand.Read(raw)
			pw := hex.EncodeToString(raw)
			host := fmt.Sprintf("%s%02d", prefix, i+1)
			cfg := agent.Config{DataDir: filepath.Join(dir, host), Password: pw,
				Hostname: host, CPUs: cpus, MemoryMiB: memMiB, SimControl: sim, Logger: quiet}
			if metrics != nil {
				cfg.Metrics = metrics[i]
			}
			a, addr, err := startAgent(cfg, &f.received)
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return
			}
			out[i] = started{a, addr.(*net.TCPAddr).Port, pw, host, cfg.Metrics}
		}()
	}
	wg.Wait()
	for _, s := range out {
		if s.a != nil {
			f.agents = append(f.agents, s.a)
			f.ports = append(f.ports, s.port)
			f.passwords = append(f.passwords, s.pw)
			f.hostnames = append(f.hostnames, s.host)
			if counted {
				f.metrics = append(f.metrics, s.metrics)
			}
		}
	}
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		f.stop()
		return nil, fmt.Errorf("start agents: %w", firstErr)
	}
	return f, nil
}

// discoverScript is the batch that makes the manager own every agent.
func (f *fleet) discoverScript() string {
	var b strings.Builder
	for i := range f.agents {
		fmt.Fprintf(&b, "discoverServer ipAddress=127.0.0.1 port=%d password=%s\n", f.ports[i], f.passwords[i])
	}
	return b.String()
}

// setLatency injects d on every method of every agent (0 clears it).
func (f *fleet) setLatency(d time.Duration) error {
	lat := map[string]any{}
	for m := range agentapi.Signatures { // every method of the protocol
		lat[m] = int64(d / time.Millisecond)
	}
	for _, a := range f.agents {
		if err := a.Sim().SimSet(map[string]any{"latency_ms": lat}); err != nil {
			return fmt.Errorf("sim_set latency_ms: %w", err)
		}
	}
	return nil
}

// runningDomains counts the live guest domains (not Domain-0) of the agents.
func (f *fleet) runningDomains() int {
	n := 0
	for _, a := range f.agents {
		doms, _ := a.Host().ListVMs() // the simulated host always answers
		for _, d := range doms {
			if d.DomID != 0 {
				n++
			}
		}
	}
	return n
}

func (f *fleet) stop() {
	if f == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, a := range f.agents {
		wg.Add(1)
		go func() { defer wg.Done(); a.Shutdown(ctx) }()
	}
	wg.Wait()
}

// callsByMethod sums the calls the fleet's agents served, by protocol
// method, from their own metrics (startFleetCounted); nil without them.
func (f *fleet) callsByMethod() (map[string]uint64, error) {
	if f.metrics == nil {
		return nil, nil
	}
	out := map[string]uint64{}
	for _, m := range f.metrics {
		families, err := m.Gatherer().Gather()
		if err != nil {
			return nil, fmt.Errorf("read an agent's metrics: %w", err)
		}
		for _, fam := range families {
			if fam.GetName() != "xenagent_call_duration_seconds" {
				continue
			}
			for _, s := range fam.GetMetric() {
				for _, l := range s.GetLabel() {
					if l.GetName() == "method" {
						out[l.GetValue()] += s.GetHistogram().GetSampleCount()
					}
				}
			}
		}
	}
	return out, nil
}
