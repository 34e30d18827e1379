package backend

import (
	"context"
	"net"
	"strconv"
	"time"

	"xenmanager/backend/agentclient"
)

// JobRun is what an operation run by RunJob gets: the check it makes
// between agent calls, a channel closed when the job is aborted, and its
// progress report.
type JobRun struct {
	Check    func() error
	Aborted  <-chan struct{}
	Progress func(pct int, msg string)
}

// RunJob runs op as a job on objects (Manager.job), as the actor of ctx,
// in no pool and as m's options say: the tests of package backend_test, which open the
// manager with managertest and so cannot be inside package backend, reach
// the job runner through it.
func (m *Manager) RunJob(ctx context.Context, summary string, objects []string, op func(ctx context.Context, j JobRun) (any, error)) (any, error) {
	return m.job(ctx, actorFrom(ctx), "", "test", summary, objects, func(ctx context.Context, j *jobRun) (any, error) {
		return op(ctx, JobRun{Check: j.check, Aborted: j.abort.Done(), Progress: j.progress})
	})
}

// ObjectKind is an entry of objectKinds as the tests of package
// backend_test see it: Lookup tells whether the type has a lookup.
type ObjectKind struct {
	Name   string
	Code   ObjectType
	Lookup bool
}

// ObjectKinds is objectKinds, for the tests that check every type of it.
func ObjectKinds() []ObjectKind {
	out := make([]ObjectKind, len(objectKinds))
	for i, k := range objectKinds {
		out[i] = ObjectKind{k.name, k.code, k.find != nil}
	}
	return out
}

// LookupObject resolves ref through the lookup of type typ in objectKinds,
// as the actor of ctx sees it: the object's id, name and pool.
func (m *Manager) LookupObject(ctx context.Context, typ string, ref Ref) (id, name, pool string, err error) {
	o, err := objectKindNamed(typ).find(ctx, m, ref)
	return o.id, o.name, o.pool, err
}

// PlaceAndRun runs placeAndRun for the VM ref names as a job, with run
// told the id of the server each candidate's client reaches: the tests of
// placement's fallback to the next candidate drive it through this.
func (m *Manager) PlaceAndRun(ctx context.Context, ref Ref, run func(serverID string) error) error {
	v, err := m.findVM(ctx, ref)
	if err != nil {
		return err
	}
	servers, err := m.st.Read().Servers(ctx)
	if err != nil {
		return err
	}
	_, err = m.job(ctx, actorFrom(ctx), v.PoolID, "test", "test start", []string{v.ID}, func(ctx context.Context, j *jobRun) (any, error) {
		return nil, m.placeAndRun(ctx, j, v, "start", func(c *agentclient.Client) error {
			for _, s := range servers {
				if net.JoinHostPort(s.Address, strconv.Itoa(s.Port)) == c.Address() {
					return run(s.ID)
				}
			}
			return nil
		})
	})
	return err
}

// ReservedMiB is the memory placement holds for starts in flight on the
// server.
func (m *Manager) ReservedMiB(serverID string) int64 { return m.place.reserved.get(serverID) }

// ImportOption is importOption, for the tests of package backend_test.
var ImportOption = importOption

// LimitAuditSpool sets how many records the audit spool may hold (10,000
// otherwise), so that a test fills it with a few.
func (m *Manager) LimitAuditSpool(n int) {
	m.audit.mu.Lock()
	m.audit.limit = n
	m.audit.mu.Unlock()
}

// WaitHA waits for the HA round the last Beat started (haKick runs it
// beside the beats), so that a test driving the beats by hand sees what it
// did.
func (m *Manager) WaitHA() { m.ha.wg.Wait() }

// AsLeaderOf returns ctx as the fleet-wide work of member in term: what
// the leader's loops run with, for the tests of the writes that check it.
func AsLeaderOf(ctx context.Context, member string, term int64) context.Context {
	return context.WithValue(ctx, leadershipKey{}, leadership{member: member, term: term})
}

// SetServerStatus records a server's status as the heartbeats do.
func (m *Manager) SetServerStatus(ctx context.Context, id, status string) error {
	return m.setServerStatus(ctx, id, status)
}

// DropSharedLocks leaves m with its process lock table alone, as on
// SQLite, whatever its store: the benchmark of what the shared locks cost.
func (m *Manager) DropSharedLocks() { m.locks.shared = nil }

// AdoptListed runs adopt as Reconcile would for a domain of VM vmID that a
// listing of server serverID showed live: the tests of a listing gone stale
// before the lock (a start that failed meanwhile) drive it through this.
func (m *Manager) AdoptListed(ctx context.Context, serverID, vmID string) (int, error) {
	s, err := m.st.Read().Server(ctx, serverID)
	if err != nil {
		return 0, err
	}
	c, err := m.clients.get(s)
	if err != nil {
		return 0, err
	}
	return m.adopt(ctx, s, c, vmID)
}

// PasswordBcrypts is how many bcrypt comparisons the manager's logins of
// known users have run (credentialCache.bcrypts).
func (m *Manager) PasswordBcrypts() int64 { return m.creds.bcrypts.Load() }

// AgeCapacities makes every server's cached capacity d older, as if read d
// earlier: the tests of placement's read behind reach it through it.
func (m *Manager) AgeCapacities(d time.Duration) {
	cp := &m.place.capacity
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for _, e := range cp.byServer {
		e.at = e.at.Add(-d)
	}
}

// CapacityTTL is how long a server's capacity is used without asking it again.
const CapacityTTL = capacityTTL

// FoundRows is readChunk, a multi-object action's read of its VMs' rows,
// with during run after the rows are read and before they are checked, as
// a write that lands while the read runs: the names of the rows it keeps,
// by id.
func (m *Manager) FoundRows(ctx context.Context, ids []string, during func()) (map[string]string, error) {
	before := m.vmReadsBefore(ids)
	rows, err := m.st.Read().VMsByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	during()
	kept := map[string]string{}
	for id, r := range m.keepCurrent(before, rows) {
		kept[id] = r.vm.Name
	}
	return kept, nil
}
