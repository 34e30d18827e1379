package halease

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"xenmanager/backend/agent/internal/atomicfile"
)

// Lease is the content of a lease file: who holds it and when the holder
// last renewed it, by the holder's wall clock. A server lease is held by
// the server it names; a VM lease by the server that may run the VM, ""
// when it was released.
type Lease struct {
	ServerID      string `json:"server_id"`
	Hostname      string `json:"hostname"`
	RenewedUnixMS int64  `json:"renewed_unix_ms"`
	Counter       int64  `json:"counter"`
}

// Age is how long before now (the reader's wall clock) the lease was
// renewed.
func (l Lease) Age(now time.Time) time.Duration {
	return time.Duration(now.UnixMilli()-l.RenewedUnixMS) * time.Millisecond
}

// Live reports whether the lease is held and was renewed less than
// timeout before now: its holder may be running what it covers.
func (l Lease) Live(now time.Time, timeout time.Duration) bool {
	return l.ServerID != "" && l.Age(now) < timeout
}

// Errors of the store, wrapped with the file they concern.
var (
	// ErrUnreadable: the file exists but does not hold a lease. An
	// unreadable VM lease is not free: nobody can tell who holds it.
	ErrUnreadable = errors.New("the lease file is unreadable (not a lease)")
	// ErrLockBusy: another process held the VM's lock for the whole wait.
	ErrLockBusy = errors.New("another server is deciding about this VM's lease now")
	// ErrStorageFault: the simulated host's ha_storage_fail is on.
	ErrStorageFault = errors.New("the repository is unreachable (simulated: sim_set ha_storage_fail)")
)

// Names under the repository's root.
const (
	dirHA      = ".ha"
	dirServers = "servers"
	dirVMs     = "vms"
	extLease   = ".lease"
	extLock    = ".lock"
)

// DefaultLockWait is how long taking a VM's lock is retried before
// ErrLockBusy.
const DefaultLockWait = 2 * time.Second

// lockRetry is the pause between two tries of a VM's lock.
const lockRetry = 10 * time.Millisecond

// Store reads and writes the lease files of one pool in one repository:
// .ha/<pool>/servers/<server_id>.lease and .ha/<pool>/vms/<vm_uuid>.lease,
// each written whole (temp file, fsync, rename), so that a reader sees the
// old or the new lease, never a part. The caller has checked the ids it
// passes as file names. A Store has no state of its own beyond its
// settings: any number of them (in any number of processes) may use the
// same files.
type Store struct {
	root string // the repository's root directory as this server sees it
	pool string
	// fault, when set and true, fails every read, write and lock as if
	// the repository were unreachable (sim_set ha_storage_fail).
	fault    func() bool
	lockWait time.Duration
}

// NewStore is the store of pool's leases in the repository whose root
// directory is root; fault (may be nil) fails every access while it
// returns true.
func NewStore(root, pool string, fault func() bool) *Store {
	return &Store{root: root, pool: pool, fault: fault, lockWait: DefaultLockWait}
}

// ServerRel and VMRel are the paths of a server's and a VM's lease,
// relative to the repository's root: what messages show.
func (s *Store) ServerRel(serverID string) string {
	return filepath.Join(dirHA, s.pool, dirServers, serverID+extLease)
}

// VMRel is the path of a VM's lease, relative to the repository's root.
func (s *Store) VMRel(vmUUID string) string {
	return filepath.Join(dirHA, s.pool, dirVMs, vmUUID+extLease)
}

func (s *Store) abs(rel string) string { return filepath.Join(s.root, rel) }

// failing is ErrStorageFault while the fault is on.
func (s *Store) failing(op, rel string) error {
	if s.fault != nil && s.fault() {
		return &Error{Op: op, Rel: rel, Err: ErrStorageFault}
	}
	return nil
}

// ReadServer reads a server's lease; found is false when there is none.
func (s *Store) ReadServer(serverID string) (l Lease, found bool, err error) {
	return s.read(s.ServerRel(serverID))
}

// WriteServer writes l as its server's lease.
func (s *Store) WriteServer(l Lease) error { return s.write(s.ServerRel(l.ServerID), l) }

// RemoveServer removes a server's lease; none is not an error.
func (s *Store) RemoveServer(serverID string) error {
	rel := s.ServerRel(serverID)
	if err := s.failing("remove", rel); err != nil {
		return err
	}
	if err := os.Remove(s.abs(rel)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return wrap("remove", rel, err)
	}
	return nil
}

// ReadVM reads a VM's lease; found is false when there is none.
func (s *Store) ReadVM(vmUUID string) (l Lease, found bool, err error) {
	return s.read(s.VMRel(vmUUID))
}

// WriteVM writes l as the VM's lease. Deciding to write it (read, decide,
// write) is the caller's, under LockVM.
func (s *Store) WriteVM(vmUUID string, l Lease) error { return s.write(s.VMRel(vmUUID), l) }

// VMLeases lists the VMs that have a lease file, in no order.
func (s *Store) VMLeases() ([]string, error) {
	rel := filepath.Join(dirHA, s.pool, dirVMs)
	if err := s.failing("list", rel); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(s.abs(rel))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap("list", rel, err)
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, extLease) {
			continue
		}
		out = append(out, strings.TrimSuffix(name, extLease))
	}
	return out, nil
}

// LockVM takes the exclusive lock of the VM's lease,
// .ha/<pool>/vms/<vm_uuid>.lock (flock, non-blocking, retried for the
// store's lock wait, then ErrLockBusy), so that read-decide-write of the
// lease cannot interleave with another server's. The lock file is never
// deleted: a deleted one could be locked by two processes at once.
func (s *Store) LockVM(vmUUID string) (unlock func(), err error) {
	rel := filepath.Join(dirHA, s.pool, dirVMs, vmUUID+extLock)
	if err := s.failing("lock", rel); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(s.abs(rel)), 0o755); err != nil {
		return nil, wrap("lock", rel, err)
	}
	f, err := os.OpenFile(s.abs(rel), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, wrap("lock", rel, err)
	}
	deadline := time.Now().Add(s.lockWait)
	for {
		locked, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, wrap("lock", rel, err)
		}
		if locked {
			return func() {
				_ = unlockFile(f)
				f.Close()
			}, nil
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, &Error{Op: "lock", Rel: rel, Err: ErrLockBusy}
		}
		time.Sleep(lockRetry)
	}
}

func (s *Store) read(rel string) (Lease, bool, error) {
	if err := s.failing("read", rel); err != nil {
		return Lease{}, false, err
	}
	data, err := os.ReadFile(s.abs(rel))
	if errors.Is(err, fs.ErrNotExist) {
		return Lease{}, false, nil
	}
	if err != nil {
		return Lease{}, false, wrap("read", rel, err)
	}
	l, err := Parse(data)
	if err != nil {
		return Lease{}, true, &Error{Op: "read", Rel: rel, Err: err}
	}
	return l, true, nil
}

// Parse reads a lease file's content: one JSON object of the lease's
// members, with no unknown member, a renewal time and a counter not
// negative. Anything else is ErrUnreadable.
func Parse(data []byte) (Lease, error) {
	var l Lease
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return Lease{}, ErrUnreadable
	}
	if dec.More() || l.RenewedUnixMS < 0 || l.Counter < 0 {
		return Lease{}, ErrUnreadable
	}
	return l, nil
}

func (s *Store) write(rel string, l Lease) error {
	if err := s.failing("write", rel); err != nil {
		return err
	}
	data, err := json.Marshal(l)
	if err != nil {
		return &Error{Op: "write", Rel: rel, Err: err}
	}
	path := s.abs(rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return wrap("write", rel, err)
	}
	if err := atomicfile.Write(path, append(data, '\n'), 0o644); err != nil {
		return wrap("write", rel, err)
	}
	return nil
}

// Error is a failed access to a lease file, in the agent's own words: the
// operation, the file relative to the repository's root, and the cause
// without the absolute path the operating system would add.
type Error struct {
	Op  string // read, write, remove, lock, list
	Rel string
	Err error
}

func (e *Error) Error() string { return fmt.Sprintf("%s %s: %v", e.Op, e.Rel, e.Err) }

func (e *Error) Unwrap() error { return e.Err }

// wrap keeps the cause of a file system error and drops the path it
// carries (the repository's root is the agent's business).
func wrap(op, rel string, err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		err = pe.Err
	case errors.As(err, &le):
		err = le.Err
	}
	return &Error{Op: op, Rel: rel, Err: err}
}
