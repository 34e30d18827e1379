package shell

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"xenmanager/store"
)

// backup copies the database while the manager runs; the copy opens and
// holds what the manager recorded. Only administrators may take one.
func TestBackupOverSSH(t *testing.T) {
	e := newEnv(t, 1, 8192)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	e.mustRun("create Vm name=kept repository=repo1 memory=256")
	out := e.mustRun("backup")
	path := prop(out, "Path")
	if path == "" || filepath.Base(filepath.Dir(path)) != "backups" || prop(out, "Size (bytes)") == "0" {
		t.Fatalf("backup:\n%s", out)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file %s: %v", path, err)
	}
	ctx := context.Background()
	b, err := store.Open(ctx, path)
	if err != nil {
		t.Fatalf("open the backup: %v", err)
	}
	defer b.Close()
	if vms, err := b.Read().VMsByName(ctx, "kept"); err != nil || len(vms) != 1 {
		t.Fatalf("the backup lacks Vm kept: %v, %v", vms, err)
	}
	e.mustRun(`create User name=op password=op-secret-1 role=Operator`)
	if out, st := e.runAs("op", "op-secret-1", "backup"); st != 3 {
		t.Fatalf("an Operator's backup: exit %d\n%s", st, out)
	}
	e.failCode("backup extra=1", "XM_0004E")
}
