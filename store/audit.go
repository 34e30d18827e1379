package store

import (
	"context"
	"time"
)

// AuditRecord is one command a user ran.
type AuditRecord struct {
	Seq       int64
	User      string
	Remote    string
	Command   string
	Result    string
	CreatedAt time.Time
}

const auditColumns = `seq, user_name, remote, command, result, created_at`

func scanAudit(row scanner) (AuditRecord, error) {
	var a AuditRecord
	var created int64
	err := row.Scan(&a.Seq, &a.User, &a.Remote, &a.Command, &a.Result, &created)
	a.CreatedAt = fromUnixMilli(created)
	return a, err
}

// InsertAudit appends a record to the audit log.
func (q *Queries) InsertAudit(ctx context.Context, a AuditRecord) error {
	return q.exec(ctx, `INSERT INTO audit_records (user_name, remote, command, result, created_at) VALUES ($1, $2, $3, $4, $5)`,
		a.User, a.Remote, a.Command, a.Result, a.CreatedAt.UnixMilli())
}

// AuditRecords returns the newest records first, at most limit.
func (q *Queries) AuditRecords(ctx context.Context, limit int) ([]AuditRecord, error) {
	return queryAll(ctx, q.db, scanAudit, `SELECT `+auditColumns+` FROM audit_records ORDER BY seq DESC LIMIT $1`, limit)
}
