package backend

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"xenmanager/store"
)

// serverRoom is one server of a pool as placement weighs it: its state, and
// what it had free when its agent was asked.
type serverRoom struct {
	ID, Name    string
	Status      string
	Maintenance bool
	// Roles are its roles as recorded ("xen,utility"); only a server with
	// the VM server role (xen) gets VMs.
	Roles string
	// FreeMiB is its free memory less what starts in flight have reserved
	// there; Threads its hardware threads; Placed the VMs the manager has
	// placed there.
	FreeMiB int64
	Threads int64
	Placed  int
	// Silent says why its agent did not tell what it has free; "" when it
	// did.
	Silent string
	// Apart are the members of the VM's anti-affinity groups that run on
	// the server or are on their way there: the VM may not go there.
	Apart []apartPeer
}

// apartPeer is a member of one of a VM's anti-affinity groups, by name.
type apartPeer struct{ VM, Group string }

// apartText says which members of the VM's anti-affinity groups a server
// has: "Vm web1 of AntiAffinityGroup web, Vm db1 of AntiAffinityGroup db".
func apartText(peers []apartPeer) string {
	parts := make([]string, len(peers))
	for i, p := range peers {
		parts[i] = "Vm " + p.VM + " of AntiAffinityGroup " + p.Group
	}
	return strings.Join(parts, ", ")
}

// apartRule is what an error of anti-affinity ends with, so that an
// operator who sees a server left out knows the rule behind it.
const apartRule = " (an AntiAffinityGroup keeps its members on different servers)"

// vmNeeds is what placement must satisfy for one VM.
type vmNeeds struct {
	VM, Pool  string // names, for the messages
	MemoryMiB int64
	CPUCount  int64
	// Pinning is the VM's cpuPinning and PinnedCPUs how many CPUs a
	// server needs to have the highest CPU it names (0 for none).
	Pinning    string
	PinnedCPUs int64
	// Policy is the VM's start policy with USE_POOL_POLICY resolved to the
	// pool's.
	Policy       string
	LastServerID string
	Preferred    map[string]bool // the VM's preferred servers; none: any
	Except       string          // a server it must not go to (a migration's source)
}

// needsOf returns what placing v in pool, never on except, must satisfy.
func needsOf(v store.VM, pool store.ServerPool, except string) vmNeeds {
	n := vmNeeds{VM: v.Name, Pool: pool.Name, MemoryMiB: v.MemoryMiB, CPUCount: v.CPUCount, Policy: v.StartPolicy,
		LastServerID: v.LastServerID, Except: except, Pinning: v.CPUPinning}
	if highest, err := highestPinnedCPU(v.CPUPinning); err == nil {
		n.PinnedCPUs = highest + 1 // a value that does not parse was refused when it was set
	}
	if n.Policy == "" || n.Policy == PolicyUsePool {
		n.Policy = pool.StartPolicy
	}
	if v.PreferredServers != "" {
		n.Preferred = map[string]bool{}
		for _, id := range strings.Fields(v.PreferredServers) {
			n.Preferred[id] = true
		}
	}
	return n
}

// placementEligible returns the indexes of the servers the VM may go to
// before anyone asks what they have free: running, not in maintenance, with
// the VM server role, not the excluded one, the one it ran on last under
// CURRENT_SERVER, among its preferred servers when it has some, and with
// no member of its anti-affinity groups (Apart). When there is none, the
// error says why, naming the members that keep it off each server. It is
// split from placementOrder so that placement asks only these servers'
// agents (rank fills Apart in only after asking them, under its lock).
func placementEligible(servers []serverRoom, n vmNeeds) ([]int, error) {
	eligible := make([]int, 0, len(servers))
	var skipped []string
	apart := false
	for i := range servers {
		s := &servers[i]
		switch why, excluded := exclusion(s, n); {
		case !excluded && len(s.Apart) > 0:
			skipped, apart = append(skipped, s.Name+" has "+apartText(s.Apart)), true
		case !excluded:
			eligible = append(eligible, i)
		case why != "":
			skipped = append(skipped, why)
		}
	}
	if len(eligible) > 0 {
		return eligible, nil
	}
	why := ""
	if len(skipped) > 0 {
		why = ": " + strings.Join(skipped, "; ")
	}
	if apart {
		why += apartRule
	}
	switch {
	case n.Policy == PolicyCurrentServer && n.LastServerID != "":
		return nil, errorf(KindInvalidState, "Vm %s has startPolicy CURRENT_SERVER and its server cannot take it%s", n.VM, why)
	case len(n.Preferred) > 0:
		return nil, errorf(KindInvalidState, "none of the preferred servers of Vm %s can take it%s", n.VM, why)
	}
	return nil, errorf(KindInvalidState, "ServerPool %s has no server that can take Vm %s%s", n.Pool, n.VM, why)
}

// exclusion says whether placement leaves the server out for the VM for
// any reason but anti-affinity, and why when the reason is worth telling
// ("" for servers that are not candidates at all: the excluded one, those
// a start policy or the preferred servers leave out).
func exclusion(s *serverRoom, n vmNeeds) (why string, excluded bool) {
	switch {
	case s.ID == n.Except:
		return "", true
	case s.Status != ServerRunning:
		return s.Name + " is " + s.Status, true
	case s.Maintenance:
		return s.Name + " is in maintenance mode", true
	case !hasRole(s.Roles, RoleXen):
		return s.Name + " has not the VM server role (roles: " + s.Roles + ")", true
	case n.Policy == PolicyCurrentServer && n.LastServerID != "" && s.ID != n.LastServerID:
		return "", true
	case len(n.Preferred) > 0 && !n.Preferred[s.ID]:
		return "", true
	}
	return "", false
}

// keptApart names, for an error of placement, the servers left out for
// anti-affinity alone and who is there, so that an operator who sees room
// on one knows why it was not used; "" when there is none.
func keptApart(servers []serverRoom, n vmNeeds) string {
	var parts []string
	for i := range servers {
		s := &servers[i]
		if _, excluded := exclusion(s, n); !excluded && len(s.Apart) > 0 {
			parts = append(parts, s.Name+" has "+apartText(s.Apart))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "; left out by anti-affinity: " + strings.Join(parts, "; ") + apartRule
}

// placementOrder is the placement decision, with no agent or store behind
// it: it returns, best first, the indexes of the servers the VM may start
// on now (placementEligible, that answered, with the memory and threads it
// needs), or an error that says why none may. Best is the most free memory,
// then the fewest VMs placed, then the name.
func placementOrder(servers []serverRoom, n vmNeeds) ([]int, error) {
	eligible, err := placementEligible(servers, n)
	if err != nil {
		return nil, err
	}
	var silent []string
	answered := eligible[:0]
	for _, i := range eligible {
		if servers[i].Silent != "" {
			silent = append(silent, servers[i].Silent)
		} else {
			answered = append(answered, i)
		}
	}
	if len(answered) == 0 {
		return nil, errorf(KindAgentUnreachable, "no server of ServerPool %s answered: %s", n.Pool, strings.Join(silent, "; "))
	}
	slices.SortFunc(answered, func(i, j int) int {
		a, b := &servers[i], &servers[j]
		if a.FreeMiB != b.FreeMiB {
			return cmp.Compare(b.FreeMiB, a.FreeMiB)
		}
		if a.Placed != b.Placed {
			return cmp.Compare(a.Placed, b.Placed)
		}
		return strings.Compare(a.Name, b.Name)
	})
	var fits []int
	for _, i := range answered {
		if servers[i].FreeMiB >= n.MemoryMiB && servers[i].Threads >= n.CPUCount && servers[i].Threads >= n.PinnedCPUs {
			fits = append(fits, i)
		}
	}
	if len(fits) > 0 {
		return fits, nil
	}
	if err := pinningUnplaceable(servers, answered, silent, n); err != nil {
		return nil, err
	}
	best := servers[answered[0]]
	msg := fmt.Sprintf("no server of ServerPool %s can run Vm %s (%d MiB, %d vCPUs): the most free memory is %d MiB on %s",
		n.Pool, n.VM, n.MemoryMiB, n.CPUCount, max(best.FreeMiB, 0), best.Name)
	if best.FreeMiB >= n.MemoryMiB {
		msg = fmt.Sprintf("no server of ServerPool %s can run Vm %s (%d MiB, %d vCPUs): servers with enough memory have too few CPUs",
			n.Pool, n.VM, n.MemoryMiB, n.CPUCount)
	}
	if len(silent) > 0 {
		msg += "; not answering: " + strings.Join(silent, "; ")
	}
	msg += withoutVMRole(servers) + keptApart(servers, n)
	return nil, errorf(KindInsufficientResources, "%s", msg)
}

// withoutVMRole names, for an error of placement, the running servers left
// out for lacking the VM server role, so that an operator who sees room on
// one knows why it was not used; "" when there is none.
func withoutVMRole(servers []serverRoom) string {
	var names []string
	for _, s := range servers {
		if s.Status == ServerRunning && !hasRole(s.Roles, RoleXen) {
			names = append(names, s.Name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return "; without the VM server role (xen): " + strings.Join(names, ", ")
}

// pinningUnplaceable returns the error of a placement that fails because
// none of the servers that answered has the CPUs the VM's cpuPinning
// names, saying what each has; nil when one has them (placement failed
// for another reason).
func pinningUnplaceable(servers []serverRoom, answered []int, silent []string, n vmNeeds) error {
	var have []string
	for _, i := range answered {
		if servers[i].Threads >= n.PinnedCPUs {
			return nil
		}
		have = append(have, fmt.Sprintf("server %s has CPUs %s", servers[i].Name, cpuRange(servers[i].Threads)))
	}
	msg := fmt.Sprintf("Vm %s cannot start on any server of ServerPool %s: its cpuPinning %s names CPUs they lack (%s)",
		n.VM, n.Pool, n.Pinning, strings.Join(have, "; "))
	if len(silent) > 0 {
		msg += "; not answering: " + strings.Join(silent, "; ")
	}
	msg += withoutVMRole(servers) + keptApart(servers, n)
	return errorf(KindInsufficientResources, "%s", msg)
}
