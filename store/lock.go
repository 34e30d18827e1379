package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// LockSuffix names the lock file beside a database: manager.db.lock.
const LockSuffix = ".lock"

// Lock is one process's exclusive hold on a database: an flock(2) on a
// sidecar file beside it (<database>.lock), which holds the holder's pid.
// Two managers on one SQLite database would each run their start-up (job
// recovery, discovery) against the other's live state, so a database has
// one manager at a time; the lock is on the database, not on the data
// directory, so that managers may share a host key and secret key while
// each has a database of its own.
//
// A sidecar rather than the database file itself: SQLite takes POSIX
// (fcntl) locks on the database file, and closing any descriptor of that
// file in the process drops them all, so the store never holds a
// descriptor of the database file of its own. The kernel releases an
// flock when its holder dies, however it dies, so a stale lock file
// blocks nobody; the file is left in place (removing it would let two
// processes lock two different files under one name).
type Lock struct {
	dbPath string
	mu     sync.Mutex // guards f
	f      *os.File   // nil once released
}

// LockedError is the refusal of Lock: another process holds the database.
type LockedError struct {
	Path string // the database
	PID  int    // the holder's pid; 0 when it has not written it yet
}

func (e *LockedError) Error() string {
	if e.PID == 0 {
		return fmt.Sprintf("another manager holds the database %s", e.Path)
	}
	return fmt.Sprintf("another manager (pid %d) holds the database %s", e.PID, e.Path)
}

// LockDatabase takes the exclusive lock on the database at dbPath (which
// need not exist yet) without waiting: when another process holds it, it
// fails at once with a *LockedError, having read nothing of the database
// and written nothing but the lock file's creation.
func LockDatabase(dbPath string) (*Lock, error) {
	path := dbPath + LockSuffix
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dbPath, err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, errLockHeld) {
			return nil, &LockedError{Path: dbPath, PID: holderPID(path)}
		}
		return nil, fmt.Errorf("lock %s: %w", dbPath, err)
	}
	if err := writePID(f); err != nil {
		f.Close() // closing the descriptor releases the lock
		return nil, fmt.Errorf("lock %s: %w", dbPath, err)
	}
	return &Lock{dbPath: dbPath, f: f}, nil
}

// Release lets another process take the database. Releasing twice is
// harmless, so that a caller may defer it and still release early.
func (l *Lock) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the descriptor releases the flock
	l.f = nil
	return err
}

// held reports whether the lock has not been released.
func (l *Lock) held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f != nil
}

// writePID records the holder's pid in the lock file, for the message of
// the process that is refused.
func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

// holderPID reads the pid the holder wrote into the lock file: 0 when it
// cannot tell (the holder has locked the file and not written it yet).
func holderPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// OpenLocked opens the database whose lock the caller holds, as Open does;
// the lock stays the caller's, to release after Close (a manager holds it
// for its whole life, from before it binds its address).
func OpenLocked(ctx context.Context, l *Lock, opts ...Option) (*Store, error) {
	if !l.held() {
		return nil, fmt.Errorf("open %s: the database's lock was released", l.dbPath)
	}
	var o openOptions
	for _, opt := range opts {
		opt(&o)
	}
	return open(ctx, l.dbPath, o)
}
