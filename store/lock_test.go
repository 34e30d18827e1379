package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A second hold on a database is refused at once, naming the holder's pid
// (flock locks belong to an open file, so one process stands in for two).
func TestLockRefusesASecondHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "manager.db")
	first, err := LockDatabase(path)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Release()

	_, err = LockDatabase(path)
	var locked *LockedError
	if !errors.As(err, &locked) || locked.PID != os.Getpid() || locked.Path != path {
		t.Fatalf("second LockDatabase = %v; want a *LockedError naming pid %d and %s", err, os.Getpid(), path)
	}
	if _, err := Open(context.Background(), path); !errors.As(err, &locked) {
		t.Fatalf("Open of a locked database = %v; want a *LockedError", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused Open touched the database: %v", err)
	}

	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	if err := first.Release(); err != nil {
		t.Fatalf("a second Release: %v", err)
	}
	again, err := LockDatabase(path)
	if err != nil {
		t.Fatalf("LockDatabase after Release: %v", err)
	}
	again.Release()
}

// A store holds its database's lock until it is closed.
func TestStoreHoldsItsLockUntilClose(t *testing.T) {
	s, path := openSQLite(t)
	var locked *LockedError
	if _, err := LockDatabase(path); !errors.As(err, &locked) {
		t.Fatalf("LockDatabase of an open store's database = %v; want a *LockedError", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := LockDatabase(path)
	if err != nil {
		t.Fatalf("LockDatabase after Close: %v", err)
	}
	l.Release()
}

// OpenLocked opens under the caller's lock and leaves it held after Close;
// a released lock opens nothing.
func TestOpenLockedKeepsTheCallersLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "manager.db")
	l, err := LockDatabase(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	s, err := OpenLocked(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	var locked *LockedError
	if _, err := LockDatabase(path); !errors.As(err, &locked) {
		t.Fatalf("LockDatabase after the store closed = %v; want the caller's lock still held", err)
	}
	l.Release()
	if _, err := OpenLocked(context.Background(), l); err == nil {
		t.Fatal("OpenLocked with a released lock opened the database")
	}
}

// A lock file whose holder died (it names a pid, nobody holds the lock)
// blocks nobody.
func TestStaleLockFileIsTaken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "manager.db")
	if err := os.WriteFile(path+LockSuffix, []byte("999999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := LockDatabase(path)
	if err != nil {
		t.Fatalf("LockDatabase over a stale lock file: %v", err)
	}
	defer l.Release()
	if pid := holderPID(path + LockSuffix); pid != os.Getpid() {
		t.Fatalf("the lock file names pid %d; want this process's, %d", pid, os.Getpid())
	}
}
