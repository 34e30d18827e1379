package store

import (
	"context"
	"errors"
	"time"
)

// ObjectLock is an object held by a job, as every manager of a shared
// database sees it: the row of object_locks, with the hostname of the
// manager that runs the job ("" when that manager is no longer recorded).
type ObjectLock struct {
	ObjectID  string
	JobID     string
	ManagerID string
	Hostname  string
	Summary   string
	Since     time.Time // the database's clock
}

func scanObjectLock(row scanner) (ObjectLock, error) {
	var l ObjectLock
	var since int64
	err := row.Scan(&l.ObjectID, &l.JobID, &l.ManagerID, &l.Hostname, &l.Summary, &since)
	l.Since = fromUnixMilli(since)
	return l, err
}

// ObjectLockHolder returns the lock on object held by a Running job of a
// manager other than self, or ErrNotFound when there is none. A row of a
// job that has ended (its manager died before it could delete it, and no
// leader has yet) holds nothing; a row of self's is its own business (its
// process lock says who holds the object).
func (q *Queries) ObjectLockHolder(ctx context.Context, self, object string) (ObjectLock, error) {
	return queryOne(ctx, q.db, scanObjectLock, `
		SELECT l.object_id, l.job_id, l.manager_id, COALESCE(m.hostname, ''), l.summary, l.since
		FROM object_locks l
		JOIN jobs j ON j.id = l.job_id AND j.status = 'Running'
		LEFT JOIN managers m ON m.id = l.manager_id
		WHERE l.object_id = $1 AND l.manager_id <> $2`, object, self)
}

// LockObjects records that job jobID of manager managerID (doing summary)
// holds objects from now (the database's clock, as Now reads it), unless
// another manager's Running job holds one of them: then it records nothing
// and returns that lock. The check
// and the inserts are one step only inside one Write (writes serialise on
// both engines). A stale row (an ended job's, or one of managerID's, whose
// process lock the caller holds) is taken over.
func (q *Queries) LockObjects(ctx context.Context, jobID, managerID, summary string, objects []string) (*ObjectLock, error) {
	if q.engine == PostgreSQL {
		return q.lockObjectsPostgres(ctx, jobID, managerID, summary, objects)
	}
	since, err := q.Now(ctx)
	if err != nil {
		return nil, err
	}
	for _, o := range objects {
		l, err := q.ObjectLockHolder(ctx, managerID, o)
		if err == nil {
			return &l, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	for _, o := range objects {
		err := q.exec(ctx, `
			INSERT INTO object_locks (object_id, job_id, manager_id, summary, since) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (object_id) DO UPDATE SET job_id = excluded.job_id, manager_id = excluded.manager_id,
				summary = excluded.summary, since = excluded.since`,
			o, jobID, managerID, summary, since.UnixMilli())
		if err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// lockObjectsPostgres is LockObjects in one statement, a round trip to the
// server rather than one per object and two more (every job of every
// manager takes its locks on the one writer connection, where round trips
// add up): the holder is looked for and, when there is none, the rows are
// written, in one snapshot, since the database's clock at the statement
// (clock_timestamp, as Queries.Now reads it).
func (q *Queries) lockObjectsPostgres(ctx context.Context, jobID, managerID, summary string, objects []string) (*ObjectLock, error) {
	l, err := queryOne(ctx, q.db, scanObjectLock, `
		WITH held AS (
			SELECT l.object_id, l.job_id, l.manager_id, COALESCE(m.hostname, '') AS hostname, l.summary, l.since
			FROM object_locks l
			JOIN jobs j ON j.id = l.job_id AND j.status = 'Running'
			LEFT JOIN managers m ON m.id = l.manager_id
			WHERE l.object_id = ANY($1) AND l.manager_id <> $2
			ORDER BY l.object_id LIMIT 1
		), taken AS (
			INSERT INTO object_locks (object_id, job_id, manager_id, summary, since)
			SELECT o, $3, $2, $4, CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)
			FROM unnest(CAST($1 AS TEXT[])) AS o
			WHERE NOT EXISTS (SELECT 1 FROM held)
			ON CONFLICT (object_id) DO UPDATE SET job_id = excluded.job_id, manager_id = excluded.manager_id,
				summary = excluded.summary, since = excluded.since
		)
		SELECT object_id, job_id, manager_id, hostname, summary, since FROM held`,
		objects, managerID, jobID, summary)
	if errors.Is(err, ErrNotFound) {
		return nil, nil // none held: taken
	}
	if err != nil {
		return nil, err
	}
	return &l, nil
}

// EndJobAndUnlock is EndJob and UnlockJobObjects of job id, on PostgreSQL
// in one statement (one round trip on the shared writer connection); the
// locks go even when the job had ended (ErrNotFound: the leader ended it
// and freed them).
func (q *Queries) EndJobAndUnlock(ctx context.Context, id, status, result, errText string, ended time.Time) error {
	if q.engine != PostgreSQL {
		err := q.EndJob(ctx, id, status, result, errText, ended)
		if uerr := q.UnlockJobObjects(ctx, id); uerr != nil {
			return uerr
		}
		return err
	}
	return q.execOne(ctx, `
		WITH freed AS (DELETE FROM object_locks WHERE job_id = $5)
		UPDATE jobs SET status = $1, result = $2, error = $3, ended_at = $4,
			progress = CASE WHEN $1 = 'Success' THEN 100 ELSE progress END
		WHERE id = $5 AND status = 'Running'`, status, result, errText, ended.UnixMilli(), id)
}

// UnlockJobObjects deletes the object locks of job jobID.
func (q *Queries) UnlockJobObjects(ctx context.Context, jobID string) error {
	return q.exec(ctx, `DELETE FROM object_locks WHERE job_id = $1`, jobID)
}

// ObjectLocks returns every object lock recorded, by object.
func (q *Queries) ObjectLocks(ctx context.Context) ([]ObjectLock, error) {
	return queryAll(ctx, q.db, scanObjectLock, `
		SELECT l.object_id, l.job_id, l.manager_id, COALESCE(m.hostname, ''), l.summary, l.since
		FROM object_locks l LEFT JOIN managers m ON m.id = l.manager_id ORDER BY l.object_id`)
}
