package backend

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/store"
)

// The defaults of a pool's HA lease timing: an agent renews its leases every
// 2 s and fences itself after 20 s without a renewal; the manager restarts
// a dead server's HA VMs 10 s after that (clock skew, slow storage), so that
// they run again about 40 s after the server died, inside the 60 s promised
// in docs/guide.md.
const (
	DefaultHARenew  = 2 * time.Second
	DefaultHAFence  = 20 * time.Second
	DefaultHAMargin = 10 * time.Second
)

// The bounds of the HA lease timing (haBounds checks them).
const (
	minHARenew  = 100 * time.Millisecond
	maxHARenew  = time.Minute
	maxHAFence  = 10 * time.Minute
	maxHAMargin = 10 * time.Minute
	// haRenewsPerFence is how many renewals at least fit in a fence
	// timeout, so that one slow write does not fence a healthy server.
	haRenewsPerFence = 3
)

// HAChange is what edit ServerPool changes of a pool's high availability;
// nil fields stay as they are. The durations are the operator's text
// ("20s", "500ms", or a number of seconds).
type HAChange struct {
	Enabled                             *bool
	Repository                          *Ref
	RenewInterval, FenceTimeout, Margin *string
}

func (c HAChange) empty() bool {
	return c.Enabled == nil && c.Repository == nil && c.RenewInterval == nil && c.FenceTimeout == nil && c.Margin == nil
}

// parseHADuration reads a duration setting: Go's form ("1m30s", "500ms",
// "2.5s") or a plain number of seconds.
func parseHADuration(attr, text string) (time.Duration, error) {
	text = strings.TrimSpace(text)
	if n, err := strconv.ParseFloat(text, 64); err == nil && !strings.ContainsAny(text, "eEnN") {
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(text)
	if err != nil {
		return 0, errorf(KindInvalidArgument, "%s %q is not a duration: give seconds (20) or a duration such as 20s, 500ms or 1m", attr, text)
	}
	return d, nil
}

// haBounds checks a pool's lease timing as a whole.
func haBounds(ha store.PoolHA) error {
	switch {
	case ha.Renew < minHARenew || ha.Renew > maxHARenew:
		return errorf(KindInvalidArgument, "haRenewInterval %s is out of range: it must be between %s and %s", ha.Renew, minHARenew, maxHARenew)
	case ha.Fence < haRenewsPerFence*ha.Renew:
		return errorf(KindInvalidArgument, "haFenceTimeout %s is too short for haRenewInterval %s: it must be at least %d renewals (%s), so that one slow write does not fence a healthy server",
			ha.Fence, ha.Renew, haRenewsPerFence, haRenewsPerFence*ha.Renew)
	case ha.Fence > maxHAFence:
		return errorf(KindInvalidArgument, "haFenceTimeout %s is too long: at most %s", ha.Fence, maxHAFence)
	case ha.Margin < 0 || ha.Margin > maxHAMargin:
		return errorf(KindInvalidArgument, "haRestartMargin %s is out of range: it must be between 0s and %s", ha.Margin, maxHAMargin)
	}
	return nil
}

// haSettings applies change to the pool's HA settings, checked, without
// recording them; the repository must be one of the pool's.
func (m *Manager) haSettings(ctx context.Context, p store.ServerPool, change HAChange) (store.PoolHA, error) {
	ha := p.HA
	if change.Enabled != nil {
		ha.Enabled = *change.Enabled
	}
	if change.Repository != nil {
		r, err := m.findRepository(ctx, *change.Repository)
		if err != nil {
			return ha, err
		}
		if r.PoolID != p.ID {
			return ha, errorf(KindInvalidArgument, "Repository %s is not a repository of ServerPool %s: the HA repository must be shared by the pool's servers", r.Name, p.Name)
		}
		ha.RepositoryID = r.ID
	}
	for _, d := range []struct {
		attr string
		text *string
		to   *time.Duration
	}{{"haRenewInterval", change.RenewInterval, &ha.Renew}, {"haFenceTimeout", change.FenceTimeout, &ha.Fence}, {"haRestartMargin", change.Margin, &ha.Margin}} {
		if d.text == nil {
			continue
		}
		v, err := parseHADuration(d.attr, *d.text)
		if err != nil {
			return ha, err
		}
		*d.to = v
	}
	if err := haBounds(ha); err != nil {
		return ha, err
	}
	if ha.Enabled && ha.RepositoryID == "" {
		return ha, errorf(KindInvalidArgument, "ServerPool %s has no HA repository: name one with haRepository=, a repository of the pool that its servers share, where they keep their leases", p.Name)
	}
	return ha, nil
}

// applyPoolHA tells every server of pool p what ha asks: ha_configure with
// the lease timing when it is on, ha_disable when it goes off. Turning it on
// (or changing it) is all or nothing: a server that cannot (unreachable, an
// agent without the ha_leases extension, a repository it cannot write) fails
// the change, and the servers told already are told to stop again. Turning
// it off tells whom it can and logs the rest (a reconcile tells them later).
func (m *Manager) applyPoolHA(ctx context.Context, p store.ServerPool, ha store.PoolHA) error {
	servers, err := m.st.Read().ServersInPool(ctx, p.ID)
	if err != nil {
		return &Error{Kind: KindInternal, Msg: "read servers", Cause: err}
	}
	if !ha.Enabled {
		if p.HA.Enabled {
			for _, s := range servers {
				m.haDisable(ctx, s)
			}
		}
		return nil
	}
	var done []store.Server
	for _, s := range servers {
		if err := m.haConfigure(ctx, p.ID, ha, s); err != nil {
			if !p.HA.Enabled {
				for _, d := range done {
					m.haDisable(ctx, d)
				}
			}
			return err
		}
		done = append(done, s)
	}
	return nil
}

// haConfigure gives server s the pool's lease settings, after checking that
// its agent knows leases at all.
func (m *Manager) haConfigure(ctx context.Context, poolID string, ha store.PoolHA, s store.Server) error {
	if s.Status != ServerRunning {
		return errorf(KindInvalidState, "Server %s is %s: every server of an HA pool must take its lease, so HA can only be set while all of them run", s.Name, s.Status)
	}
	c, err := m.clients.get(s)
	if err != nil {
		return err
	}
	ver, err := c.GetAPIVersion(ctx)
	if err != nil {
		return agentError("ask Server "+s.Name+" what it supports", s.Name, err)
	}
	if !ver.Has(agentapi.ExtHALeases) {
		return errorf(KindInvalidState, "the agent of Server %s does not keep HA leases (it does not list the %s extension): HA needs agents that fence themselves; remove the server from the pool or upgrade its agent", s.Name, agentapi.ExtHALeases)
	}
	err = c.HAConfigure(ctx, poolID, ha.RepositoryID, s.ID, agentapi.HAParams{
		RenewIntervalMS: ha.Renew.Milliseconds(), FenceTimeoutMS: ha.Fence.Milliseconds()})
	if err != nil {
		return agentError("configure HA leases on Server "+s.Name, s.Name, err)
	}
	return nil
}

// haDisable tells server s to stop leasing; a failure is logged, since the
// server is leaving HA either way.
func (m *Manager) haDisable(ctx context.Context, s store.Server) {
	c, err := m.clients.get(s)
	if err == nil {
		err = c.HADisable(ctx)
	}
	if err != nil {
		m.log.Warn("could not tell a server to stop its HA leases", "server", s.Name, "err", err)
	}
}

// haJoin gives a server joining pool p the pool's leases; the caller undoes
// the join when it fails.
func (m *Manager) haJoin(ctx context.Context, p store.ServerPool, s store.Server) error {
	if !p.HA.Enabled {
		return nil
	}
	if err := m.haConfigure(ctx, p.ID, p.HA, s); err != nil {
		return fmt.Errorf("ServerPool %s has high availability on: %w", p.Name, err)
	}
	return nil
}

// haPush tells every running server of the HA pools their lease settings
// again: an agent that lost them (its state file was removed) or missed a
// change picks them up. The periodic reconcile calls it.
func (m *Manager) haPush(ctx context.Context) {
	m.haPools(ctx, func(p store.ServerPool, servers []store.Server) {
		for _, s := range servers {
			if s.Status != ServerRunning {
				continue
			}
			if err := m.haConfigure(ctx, p.ID, p.HA, s); err != nil {
				m.log.Warn("HA: could not renew a server's lease settings", "server", s.Name, "err", err)
			}
		}
	})
}
