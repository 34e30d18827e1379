package backend

import (
	"sync"
	"time"

	"xenmanager/backend/agentclient"
	"xenmanager/store"
)

// clientCache holds one pinned agent client per server, built on first use
// and kept while the server's row (address, password, pin) stays the same:
// a client keeps its connections, and building one unseals the agent
// password.
type clientCache struct {
	sealer  *Sealer
	timeout time.Duration // of one agent call
	// observe is each client's Config.Observe: the metrics of agent
	// calls, nil when they are off.
	observe func(method, result string, d time.Duration)

	mu       sync.Mutex // guards byServer
	byServer map[string]*agentclient.Client
}

func newClientCache(sealer *Sealer, timeout time.Duration, observe func(method, result string, d time.Duration)) *clientCache {
	return &clientCache{sealer: sealer, timeout: timeout, observe: observe, byServer: map[string]*agentclient.Client{}}
}

// get returns the cached pinned client for s, building it on first use.
func (cc *clientCache) get(s store.Server) (*agentclient.Client, error) {
	password, err := cc.sealer.Open(s.AgentPassword)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "cannot read the agent password of server " + s.Name, Cause: err}
	}
	cfg := agentclient.Config{Address: s.Address, Port: s.Port, Password: password,
		PinSHA256: s.CertSPKISHA256, Timeout: cc.timeout, Observe: cc.observe}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	// A cached client built from an older row (another address, password or
	// pin) is replaced, whoever read which row first.
	if c, ok := cc.byServer[s.ID]; ok {
		if c.Reaches(cfg) {
			return c, nil
		}
		c.Close()
	}
	c, err := agentclient.New(cfg)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "cannot build a client for server " + s.Name, Cause: err}
	}
	cc.byServer[s.ID] = c
	return c, nil
}

// current reports whether c is the client the cache holds for server id:
// one kept elsewhere (placement's lists) is still good to use.
func (cc *clientCache) current(id string, c *agentclient.Client) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.byServer[id] == c
}

// forget drops the cached client of server id (its address, password or
// pin changed).
func (cc *clientCache) forget(id string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if c, ok := cc.byServer[id]; ok {
		c.Close()
		delete(cc.byServer, id)
	}
}

// closeAll drops every client and its connections.
func (cc *clientCache) closeAll() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for id, c := range cc.byServer {
		c.Close()
		delete(cc.byServer, id)
	}
}
