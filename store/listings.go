package store

import (
	"context"
	"iter"
)

// This file holds the queries listings stream: each yields its rows one
// at a time (queryEach), in the order of the query that returns them all
// at once (VirtualDisks, Jobs ...), so that a listing read inside a
// Snapshot holds one row whatever the number of rows.

// EachVirtualDisk yields every disk, by name then id (VirtualDisks).
func (q *Queries) EachVirtualDisk(ctx context.Context) iter.Seq2[VirtualDisk, error] {
	return queryEach(ctx, q.db, scanDisk, `SELECT `+diskColumns+` FROM virtual_disks ORDER BY name, id`)
}

// EachVirtualCdrom yields every ISO, by name then id (VirtualCdroms).
func (q *Queries) EachVirtualCdrom(ctx context.Context) iter.Seq2[VirtualCdrom, error] {
	return queryEach(ctx, q.db, scanCdrom, `SELECT `+cdromColumns+` FROM virtual_cdroms ORDER BY name, id`)
}

// EachVMTemplate yields every template, by name then id (VMTemplates).
func (q *Queries) EachVMTemplate(ctx context.Context) iter.Seq2[VMTemplate, error] {
	return queryEach(ctx, q.db, scanTemplate, `SELECT `+templateColumns+` FROM vm_templates ORDER BY name, id`)
}

// EachTag yields every tag, by name then id (Tags).
func (q *Queries) EachTag(ctx context.Context) iter.Seq2[Tag, error] {
	return queryEach(ctx, q.db, scanTag, `SELECT `+tagColumns+` FROM tags ORDER BY name, id`)
}

// EachUser yields every user, by name (Users).
func (q *Queries) EachUser(ctx context.Context) iter.Seq2[User, error] {
	return queryEach(ctx, q.db, scanUser, `SELECT `+userColumns+` FROM users ORDER BY name`)
}

// EachSSHKey yields every key, by its user's name then its name (SSHKeys).
func (q *Queries) EachSSHKey(ctx context.Context) iter.Seq2[SSHKey, error] {
	return queryEach(ctx, q.db, scanKey, `SELECT `+keyColumns+` FROM ssh_keys k JOIN users u ON u.id = k.user_id ORDER BY u.name, k.name`)
}

// EachVnic yields every VNIC, by name then id (Vnics).
func (q *Queries) EachVnic(ctx context.Context) iter.Seq2[Vnic, error] {
	return queryEach(ctx, q.db, scanVnic, `SELECT `+vnicColumns+` FROM vnics ORDER BY name, id`)
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
