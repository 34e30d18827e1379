package store

import (
	"context"
	"fmt"
	"iter"
	"sync/atomic"
)

// This file holds the queries listings stream: each yields its rows one
// at a time, in the order of the query that returns them all at once
// (VirtualDisks, Jobs ...), so that a listing read inside a Snapshot holds
// one row (or one batch: eachListed) whatever the number of rows. Those
// whose listing reads more for each row go through eachListed, the others
// through queryEach.

// listBatch is how many rows a listing's cursor fetches at a time on
// PostgreSQL (eachListed): what the manager holds of such a listing.
const listBatch = 500

// cursorSeq numbers the cursors of eachListed, so that no two share a
// name.
var cursorSeq atomic.Uint64

// eachListed yields the rows of query as queryEach does, for a listing
// whose view reads more of the snapshot for each row (a disk's VMs, a
// tag's count of objects). SQLite runs those reads on the snapshot's
// connection while the query's statement is open; a PostgreSQL connection
// runs one statement at a time (its driver refuses another while rows are
// being read: "conn busy"), so there the query runs through a cursor of
// the snapshot's transaction, fetched listBatch rows at a time, each batch
// yielded once it has been read. Outside a Snapshot (no transaction to
// hold a cursor) the rows are read whole first.
func eachListed[T any](ctx context.Context, q *Queries, scan func(scanner) (T, error), query string) iter.Seq2[T, error] {
	if q.engine != PostgreSQL {
		return queryEach(ctx, q.db, scan, query)
	}
	return func(yield func(T, error) bool) {
		var zero T
		if _, inSnapshot := q.db.(*snapshotDB); !inSnapshot {
			rows, err := queryAll(ctx, q.db, scan, query)
			if err != nil {
				yield(zero, err)
				return
			}
			for _, v := range rows {
				if !yield(v, nil) {
					return
				}
			}
			return
		}
		name := fmt.Sprintf("xm_listing_%d", cursorSeq.Add(1))
		if _, err := q.db.ExecContext(ctx, `DECLARE `+name+` NO SCROLL CURSOR FOR `+query); err != nil {
			yield(zero, translate(err))
			return
		}
		// The transaction's end closes the cursor too; closing it now
		// frees it for a listing that stopped early.
		defer q.db.ExecContext(context.WithoutCancel(ctx), `CLOSE `+name)
		batch := make([]T, 0, listBatch)
		fetch := fmt.Sprintf(`FETCH %d FROM %s`, listBatch, name)
		for {
			batch = batch[:0]
			var err error
			batch, err = fetchInto(ctx, q.db, scan, fetch, batch)
			if err != nil {
				yield(zero, err)
				return
			}
			for _, v := range batch {
				if !yield(v, nil) {
					return
				}
			}
			if len(batch) < listBatch {
				return
			}
		}
	}
}

// fetchInto appends the rows of query (a FETCH) to batch, reading them
// all before it returns, so that the connection is free again.
func fetchInto[T any](ctx context.Context, db dbtx, scan func(scanner) (T, error), query string, batch []T) ([]T, error) {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return batch, translate(err)
	}
	defer rows.Close()
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return batch, translate(err)
		}
		batch = append(batch, v)
	}
	return batch, translate(rows.Err())
}

// EachVirtualDisk yields every disk, by name then id (VirtualDisks).
func (q *Queries) EachVirtualDisk(ctx context.Context) iter.Seq2[VirtualDisk, error] {
	return eachListed(ctx, q, scanDisk, `SELECT `+diskColumns+` FROM virtual_disks ORDER BY name, id`)
}

// EachVirtualCdrom yields every ISO, by name then id (VirtualCdroms).
func (q *Queries) EachVirtualCdrom(ctx context.Context) iter.Seq2[VirtualCdrom, error] {
	return queryEach(ctx, q.db, scanCdrom, `SELECT `+cdromColumns+` FROM virtual_cdroms ORDER BY name, id`)
}

// EachVMTemplate yields every template, by name then id (VMTemplates).
func (q *Queries) EachVMTemplate(ctx context.Context) iter.Seq2[VMTemplate, error] {
	return eachListed(ctx, q, scanTemplate, `SELECT `+templateColumns+` FROM vm_templates ORDER BY name, id`)
}

// EachTag yields every tag, by name then id (Tags).
func (q *Queries) EachTag(ctx context.Context) iter.Seq2[Tag, error] {
	return eachListed(ctx, q, scanTag, `SELECT `+tagColumns+` FROM tags ORDER BY name, id`)
}

// EachUser yields every user, by name (Users).
func (q *Queries) EachUser(ctx context.Context) iter.Seq2[User, error] {
	return eachListed(ctx, q, scanUser, `SELECT `+userColumns+` FROM users ORDER BY name`)
}

// EachSSHKey yields every key, by its user's name then its name (SSHKeys).
func (q *Queries) EachSSHKey(ctx context.Context) iter.Seq2[SSHKey, error] {
	return queryEach(ctx, q.db, scanKey, `SELECT `+keyColumns+` FROM ssh_keys k JOIN users u ON u.id = k.user_id ORDER BY u.name, k.name`)
}

// EachVnic yields every VNIC, by name then id (Vnics).
func (q *Queries) EachVnic(ctx context.Context) iter.Seq2[Vnic, error] {
	return eachListed(ctx, q, scanVnic, `SELECT `+vnicColumns+` FROM vnics ORDER BY name, id`)
}

// EachJob yields the newest limit jobs, newest first (Jobs).
func (q *Queries) EachJob(ctx context.Context, limit int) iter.Seq2[Job, error] {
	return queryEach(ctx, q.db, scanJob, `SELECT `+jobColumns+` FROM jobs ORDER BY created_at DESC, id LIMIT $1`, limit)
}

// EachEvent yields the newest limit events, newest first, unacknowledged
// ones only when unackedOnly (Events).
func (q *Queries) EachEvent(ctx context.Context, unackedOnly bool, limit int) iter.Seq2[Event, error] {
	where := ""
	if unackedOnly {
		where = "WHERE acknowledged = 0 "
	}
	return queryEach(ctx, q.db, scanEvent, `SELECT `+eventColumns+` FROM events `+where+`ORDER BY created_at DESC, id LIMIT $1`, limit)
}

// EachAuditRecord yields the newest audit records first, at most limit
// (AuditRecords).
func (q *Queries) EachAuditRecord(ctx context.Context, limit int) iter.Seq2[AuditRecord, error] {
	return queryEach(ctx, q.db, scanAudit, `SELECT `+auditColumns+` FROM audit_records ORDER BY seq DESC LIMIT $1`, limit)
}
