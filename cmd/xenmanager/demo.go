package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/agent"
)

const (
	demoPool = "demo-pool"
	demoRepo = "demo-repo"
)

// demoFleet is the simulated servers of --demo: real agents (HTTPS
// listeners with their own data directories) that happen to run in the
// manager's process.
type demoFleet struct {
	agents []*agent.Agent
}

func (f *demoFleet) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, a := range f.agents {
		a.Shutdown(ctx)
	}
}

// startDemo starts n agents on free loopback ports under <data>/demo,
// discovers them (again, on a later start: their ports change, their
// identities and certificates do not), and makes sure pool demo-pool holds
// them and a shared repository.
func startDemo(ctx context.Context, mgr *backend.Manager, data string, n int, log *slog.Logger) (*demoFleet, error) {
	ctx = backend.AsSystem(ctx) // the manager sets its own demo up
	root := filepath.Join(data, "demo")
	fleet := &demoFleet{}
	var servers []backend.Server
	for i := 1; i <= n; i++ {
		dir := filepath.Join(root, fmt.Sprintf("agent%d", i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			fleet.stop()
			return nil, err
		}
		password, err := demoPassword(filepath.Join(dir, "agent-password"))
		if err != nil {
			fleet.stop()
			return nil, err
		}
		a, addr, err := agent.Start(agent.Config{
			DataDir: dir, Password: password, Hostname: fmt.Sprintf("ovs%d", i),
			CPUs: 8, MemoryMiB: 16384, Logger: log.With("agent", i),
		}, "127.0.0.1:0")
		if err != nil {
			fleet.stop()
			return nil, err
		}
		fleet.agents = append(fleet.agents, a)
		tcp := addr.(*net.TCPAddr)
		s, err := mgr.DiscoverServer(ctx, backend.DiscoverRequest{Address: tcp.IP.String(), Port: tcp.Port, Password: password})
		if err != nil {
			fleet.stop()
			return nil, fmt.Errorf("discover demo agent %d: %s", i, backend.Message(err))
		}
		servers = append(servers, s)
	}
	if err := demoPoolSetup(ctx, mgr, root, servers); err != nil {
		fleet.stop()
		return nil, err
	}
	return fleet, nil
}

func demoPoolSetup(ctx context.Context, mgr *backend.Manager, root string, servers []backend.Server) error {
	pool, err := mgr.ServerPool(ctx, backend.Ref{Name: demoPool})
	if backend.KindOf(err) == backend.KindNotFound {
		pool, err = mgr.CreateServerPool(ctx, demoPool, "simulated servers of --demo")
	}
	if err != nil {
		return fmt.Errorf("pool %s: %s", demoPool, backend.Message(err))
	}
	for _, s := range servers {
		if s.Pool.ID != "" {
			continue
		}
		if _, err := mgr.AddServerToPool(ctx, backend.Ref{ID: s.ID}, backend.Ref{ID: pool.ID}); err != nil {
			return fmt.Errorf("add %s to %s: %s", s.Name, demoPool, backend.Message(err))
		}
	}
	if len(pool.Repositories) == 0 {
		if _, err := mgr.CreateRepository(ctx, backend.CreateRepositoryRequest{
			Name: demoRepo, FSLocation: filepath.Join(root, "repository"), Pool: backend.Ref{ID: pool.ID}}); err != nil {
			return fmt.Errorf("repository %s: %s", demoRepo, backend.Message(err))
		}
	}
	return nil
}

// demoPassword reads a demo agent's password, creating a random one first.
func demoPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	p := hex.EncodeToString(raw)
	return p, os.WriteFile(path, []byte(p+"\n"), 0o600)
}
