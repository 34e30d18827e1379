package backend

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"xenmanager/store"
)

// BackupInfo is a backup of the manager's database.
type BackupInfo struct {
	Path  string
	Bytes int64
	At    time.Time
}

// Backup writes an online copy of the manager's database into the backups
// directory beside it (administrators), named by the time it was taken:
// a complete database the manager can be started on. A database on
// PostgreSQL is not copied: pg_dump does that (docs/postgresql.md).
func (m *Manager) Backup(ctx context.Context) (BackupInfo, error) {
	if err := m.authorize(ctx, PermManage); err != nil {
		return BackupInfo{}, err
	}
	if m.st.Engine() == store.PostgreSQL {
		return BackupInfo{}, errorf(KindInvalidState,
			"the manager's database is on PostgreSQL, which backup does not copy: back it up with pg_dump (docs/postgresql.md)")
	}
	return jobValue[BackupInfo](m.job(ctx, actorFrom(ctx), "", "backup", "backup", []string{"backup"}, func(ctx context.Context, j *jobRun) (any, error) {
		dir := filepath.Join(filepath.Dir(m.st.Path()), "backups")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "create the backups directory", Cause: err}
		}
		at := time.Now().UTC()
		path := filepath.Join(dir, "manager-"+at.Format("20060102T150405.000Z")+".db")
		n, err := m.st.Backup(ctx, path)
		if err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "back up the database", Cause: err}
		}
		m.log.Info("database backed up", "path", path, "bytes", n)
		return BackupInfo{Path: path, Bytes: n, At: at}, nil
	}))
}
