package backend_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
)

// backup on PostgreSQL refuses, naming pg_dump, and writes nothing.
func TestBackupOnPostgresRefuses(t *testing.T) {
	c := managertest.Open(t, managertest.Options{Postgres: true})
	_, err := c.Manager.Backup(c.Admin())
	if backend.KindOf(err) != backend.KindInvalidState || !strings.Contains(backend.Message(err), "pg_dump") {
		t.Fatalf("backup on PostgreSQL = %v; want a refusal naming pg_dump", err)
	}
	if _, err := os.Stat(filepath.Join(c.Dir, "backups")); !os.IsNotExist(err) {
		t.Fatalf("backup on PostgreSQL made a backups directory: %v", err)
	}
}
