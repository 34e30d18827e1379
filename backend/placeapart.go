package backend

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"xenmanager/store"
)

// This file is anti-affinity as placement enforces it: the members of a
// VM's anti-affinity groups that are on a server, placed there or on their
// way (claimed), keep the VM off it. It is read under placer.mu, the lock
// every decision is made under, so that two decisions made at once see
// each other.

// peersByServer returns, by server id, the members of v's anti-affinity
// groups (v left out) that are placed on each server or claimed for it.
// grouped, when not nil, is the set of VMs in a group as of the store's
// current inventory generation: a VM outside it has no peers, and nothing
// is read (on PostgreSQL a round trip under p.mu, which every placement
// decision of the manager waits for). p.mu must be held.
func (p *placer) peersByServer(ctx context.Context, vmID string, grouped map[string]bool) (map[string][]apartPeer, error) {
	if grouped != nil && !grouped[vmID] {
		return nil, nil
	}
	peers, err := p.st.Read().AntiAffinityPeers(ctx, vmID)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read anti-affinity groups", Cause: err}
	}
	if len(peers) == 0 {
		return nil, nil
	}
	out := map[string][]apartPeer{}
	for _, pe := range peers {
		at := map[string]bool{}
		if pe.ServerID != "" {
			at[pe.ServerID] = true
		}
		for s := range p.claims[pe.VMID] {
			at[s] = true
		}
		for s := range at {
			out[s] = append(out[s], apartPeer{VM: pe.VMName, Group: pe.GroupName})
		}
	}
	return out, nil
}

// apartFrom fails when server s has a member of v's anti-affinity groups,
// naming them; what is "destServer" or "server", as the caller names s.
// p.mu must be held.
func (p *placer) apartFrom(ctx context.Context, v store.VM, s store.Server, what string) error {
	peers, err := p.peersByServer(ctx, v.ID, nil)
	if err != nil {
		return err
	}
	if there := peers[s.ID]; len(there) > 0 {
		return errorf(KindInvalidState, "Vm %s may not run on %s %s: it has %s%s", v.Name, what, s.Name, apartText(there), apartRule)
	}
	return nil
}

// claimLocked counts v as on its way to the server until the release; p.mu
// must be held, and is taken by the release.
func (p *placer) claimLocked(vmID, serverID string) (release func()) {
	if p.claims == nil {
		p.claims = map[string]map[string]int{}
	}
	if p.claims[vmID] == nil {
		p.claims[vmID] = map[string]int{}
	}
	p.claims[vmID][serverID]++
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.claims[vmID][serverID]--; p.claims[vmID][serverID] <= 0 {
				delete(p.claims[vmID], serverID)
			}
			if len(p.claims[vmID]) == 0 {
				delete(p.claims, vmID)
			}
		})
	}
}

// admit checks that v may go to the server the operator named (migrate's
// destServer) as far as the other VMs decide (anti-affinity), and claims
// the server for v until the release. The checks of the server alone
// (status, role, pinning) are the caller's, made before.
func (p *placer) admit(ctx context.Context, v store.VM, s store.Server) (release func(), err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.apartFrom(ctx, v, s, "destServer"); err != nil {
		return nil, err
	}
	return p.claimLocked(v.ID, s.ID), nil
}

// sharing is a server where members of one group are together, by name.
type sharing struct {
	Server string
	VMs    []string
}

// String is "ovs1 runs web1, web2".
func (s sharing) String() string { return fmt.Sprintf("%s runs %s", s.Server, joinComma(s.VMs)) }

// join runs add, the write that makes vmID a member of group groupID,
// under the lock placement decides under, so that every decision sees the
// membership either before or after it, and returns, read under the same
// lock, the servers where the VM is (placed or on its way) together with
// other members of the group, by server name, the VM first in each.
func (p *placer) join(ctx context.Context, vmID, groupID string, add func() error) ([]sharing, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := add(); err != nil {
		return nil, err
	}
	members, err := p.st.Read().AntiAffinityMembers(ctx, groupID)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read anti-affinity group", Cause: err}
	}
	at := func(m store.AntiAffinityMember) map[string]bool {
		servers := map[string]bool{}
		if m.ServerID != "" {
			servers[m.ServerID] = true
		}
		for s := range p.claims[m.VMID] {
			servers[s] = true
		}
		return servers
	}
	var mine map[string]bool
	var vmName string
	for _, m := range members {
		if m.VMID == vmID {
			mine, vmName = at(m), m.VMName
		}
	}
	together := map[string][]string{}
	for _, m := range members {
		if m.VMID == vmID {
			continue
		}
		for s := range at(m) {
			if mine[s] {
				together[s] = append(together[s], m.VMName)
			}
		}
	}
	var out []sharing
	for s, names := range together {
		name := s
		if srv, err := p.st.Read().Server(ctx, s); err == nil {
			name = srv.Name
		}
		sort.Strings(names)
		out = append(out, sharing{Server: name, VMs: append([]string{vmName}, names...)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Server < out[j].Server })
	return out, nil
}
