package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Member is one manager process on the database: a row of managers, with
// a new id at every start (a restarted manager is a new member, its old
// row a dead one). Times are the database's clock (Queries.Now).
type Member struct {
	ID       string
	Hostname string
	Address  string // the SSH address it listens on
	PID      int
	Version  string
	Started  time.Time
	LastSeen time.Time
	// Ended is set when the member is known to have stopped: it left
	// (a clean shutdown), or a manager that holds the database alone
	// (SQLite's lock) found it there at its start.
	Ended bool
}

// Alive reports whether the member counts as running at now: it has not
// ended and renewed last_seen within timeout.
func (m Member) Alive(now time.Time, timeout time.Duration) bool {
	return !m.Ended && !m.LastSeen.Before(now.Add(-timeout))
}

// Lease is the leader lease, the one row of leader: which member leads
// the fleet-wide work, in which term, until when (the database's clock).
// ManagerID is "" before anyone took it.
type Lease struct {
	ManagerID string
	Term      int64
	Expires   time.Time
}

// HeldBy reports whether member id holds the lease at now.
func (l Lease) HeldBy(id string, now time.Time) bool {
	return id != "" && l.ManagerID == id && l.Expires.After(now)
}

// ErrLeaseLost is the refusal of a write made as a leader whose lease is
// gone: another member took it (a newer term), or it lapsed.
var ErrLeaseLost = errors.New("this manager no longer holds the leader lease")

// Now is the database's clock, against which every lease and last_seen is
// set and read, so that managers whose own clocks differ agree on who is
// alive and who leads: on PostgreSQL the server's (clock_timestamp, which
// moves on within a transaction, unlike now()); on SQLite the database is a
// file of the one manager that holds its lock, and its clock is that
// manager's.
func (q *Queries) Now(ctx context.Context) (time.Time, error) {
	if q.engine != PostgreSQL {
		return time.UnixMilli(time.Now().UnixMilli()).UTC(), nil
	}
	var ms int64
	err := q.db.QueryRowContext(ctx, `SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)`).Scan(&ms)
	if err != nil {
		return time.Time{}, fmt.Errorf("read the database's clock: %w", translate(err))
	}
	return fromUnixMilli(ms), nil
}

const memberColumns = `id, hostname, address, pid, version, started_at, last_seen, ended`

func scanMember(row scanner) (Member, error) {
	var m Member
	var started, seen, ended int64
	err := row.Scan(&m.ID, &m.Hostname, &m.Address, &m.PID, &m.Version, &started, &seen, &ended)
	m.Started, m.LastSeen, m.Ended = fromUnixMilli(started), fromUnixMilli(seen), ended != 0
	return m, err
}

// RenewMember records that member m is alive at now: its row is written
// whole the first time (m.Started is when it joined) and its last_seen
// moved on after, so that a member whose row was pruned while it could
// not renew is back at once.
func (q *Queries) RenewMember(ctx context.Context, m Member, now time.Time) error {
	return q.exec(ctx, `
		INSERT INTO managers (id, hostname, address, pid, version, started_at, last_seen, ended)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 0)
		ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, ended = 0`,
		m.ID, m.Hostname, m.Address, m.PID, m.Version, m.Started.UnixMilli(), now.UnixMilli())
}

// LeaveMember records that member id stopped at now.
func (q *Queries) LeaveMember(ctx context.Context, id string, now time.Time) error {
	return q.exec(ctx, `UPDATE managers SET ended = 1, last_seen = $1 WHERE id = $2`, now.UnixMilli(), id)
}

// EndOtherMembers records every member but id as stopped, and frees a lease
// one of them holds: for a manager that holds the database alone (SQLite's
// lock), whatever else is recorded is a previous run, dead however it died.
func (q *Queries) EndOtherMembers(ctx context.Context, id string) error {
	if err := q.exec(ctx, `UPDATE managers SET ended = 1 WHERE id <> $1 AND ended = 0`, id); err != nil {
		return err
	}
	return q.exec(ctx, `UPDATE leader SET expires_at = 0 WHERE id = 1 AND manager_id <> $1`, id)
}

// Members returns every member recorded, the earliest started first.
func (q *Queries) Members(ctx context.Context) ([]Member, error) {
	return queryAll(ctx, q.db, scanMember, `SELECT `+memberColumns+` FROM managers ORDER BY started_at, id`)
}

// PruneMembers deletes the members not seen since before, but the one that
// holds the lease, and returns how many it deleted.
func (q *Queries) PruneMembers(ctx context.Context, before time.Time) (int64, error) {
	res, err := q.db.ExecContext(ctx, `
		DELETE FROM managers WHERE last_seen < $1
			AND id NOT IN (SELECT manager_id FROM leader WHERE id = 1)`, before.UnixMilli())
	if err != nil {
		return 0, translate(err)
	}
	return res.RowsAffected()
}

func scanLease(row scanner) (Lease, error) {
	var l Lease
	var expires int64
	err := row.Scan(&l.ManagerID, &l.Term, &expires)
	l.Expires = fromUnixMilli(expires)
	return l, err
}

// Lease returns the leader lease as it is.
func (q *Queries) Lease(ctx context.Context) (Lease, error) {
	return queryOne(ctx, q.db, scanLease, `SELECT manager_id, term, expires_at FROM leader WHERE id = 1`)
}

// TakeLease makes member id the leader in a new term until now+length,
// when the lease is free or has lapsed at now, or id holds it already (a
// member that stopped leading on its own clock starts again in a new
// term). It returns the lease as it is after, and whether id took it.
func (q *Queries) TakeLease(ctx context.Context, id string, now time.Time, length time.Duration) (Lease, bool, error) {
	l, err := queryOne(ctx, q.db, scanLease, `
		UPDATE leader SET manager_id = $1, term = term + 1, expires_at = $2
		WHERE id = 1 AND (expires_at <= $3 OR manager_id = $1)
		RETURNING manager_id, term, expires_at`, id, now.Add(length).UnixMilli(), now.UnixMilli())
	if errors.Is(err, ErrNotFound) {
		l, err = q.Lease(ctx)
		return l, false, err
	}
	return l, err == nil, err
}

// RenewLease moves the end of the lease member id holds in term to
// now+length. A lease another member took, or that lapsed at now, is not
// renewed: ErrLeaseLost.
func (q *Queries) RenewLease(ctx context.Context, id string, term int64, now time.Time, length time.Duration) (Lease, error) {
	l, err := queryOne(ctx, q.db, scanLease, `
		UPDATE leader SET expires_at = $1
		WHERE id = 1 AND manager_id = $2 AND term = $3 AND expires_at > $4
		RETURNING manager_id, term, expires_at`, now.Add(length).UnixMilli(), id, term, now.UnixMilli())
	if errors.Is(err, ErrNotFound) {
		return Lease{}, ErrLeaseLost
	}
	return l, err
}

// ReleaseLease ends the lease member id holds in term at once, so that
// another member may lead without waiting for it to lapse; a lease it no
// longer holds is left alone.
func (q *Queries) ReleaseLease(ctx context.Context, id string, term int64) error {
	return q.exec(ctx, `UPDATE leader SET expires_at = 0 WHERE id = 1 AND manager_id = $1 AND term = $2`, id, term)
}

// CheckLease fails with ErrLeaseLost unless member id holds the lease in
// term at now: the guard of the fleet-wide writes an old leader must not
// make.
func (q *Queries) CheckLease(ctx context.Context, id string, term int64, now time.Time) error {
	l, err := q.Lease(ctx)
	if err != nil {
		return err
	}
	if l.Term != term || !l.HeldBy(id, now) {
		return ErrLeaseLost
	}
	return nil
}

// OrphanedJobs returns the Running jobs of members dead at now (not
// alive: ended, or not seen within timeout, or no longer recorded), and
// those of before jobs recorded their manager; never member self's. Each
// job's ManagerID names its member.
func (q *Queries) OrphanedJobs(ctx context.Context, self string, now time.Time, timeout time.Duration) ([]Job, error) {
	return queryAll(ctx, q.db, scanJob, `
		SELECT `+jobColumns+` FROM jobs
		WHERE status = 'Running' AND manager_id <> $1 AND NOT EXISTS (
			SELECT 1 FROM managers m WHERE m.id = jobs.manager_id AND m.ended = 0 AND m.last_seen >= $2)
		ORDER BY created_at, id`, self, now.Add(-timeout).UnixMilli())
}
