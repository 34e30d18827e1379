package libvirthost

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// LockdHolders are the virtlockd processes that hold a write lock on the
// file at path (a running guest's disk, under lock_manager = "lockd"), as
// the kernel lists them in /proc/locks: what proves that libvirt's lock
// manager, not only QEMU's own image locking, guards the disk. The system
// daemon's virtlockd and each private daemon's are distinct processes.
func LockdHolders(path string) ([]int, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fmt.Errorf("%s: no inode", path)
	}
	f, err := os.Open("/proc/locks")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var holders []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "1: POSIX  ADVISORY  WRITE 17801 fe:00:9987141 0 0"; a waiter's
		// line has "->" after the number.
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 || fields[1] != "POSIX" || fields[3] != "WRITE" {
			continue
		}
		dev := strings.Split(fields[5], ":")
		if len(dev) != 3 {
			continue
		}
		major, err1 := strconv.ParseUint(dev[0], 16, 32)
		minor, err2 := strconv.ParseUint(dev[1], 16, 32)
		ino, err3 := strconv.ParseUint(dev[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || ino != st.Ino || major != devMajor(st.Dev) || minor != devMinor(st.Dev) {
			continue
		}
		pid, err := strconv.Atoi(fields[4])
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && filepath.Base(exe) == filepath.Base(virtlockdPath) {
			holders = append(holders, pid)
		}
	}
	return holders, sc.Err()
}

// devMajor and devMinor split a Linux device number (glibc's encoding).
func devMajor(dev uint64) uint64 { return (dev>>8)&0xfff | (dev>>32)&^0xfff }
func devMinor(dev uint64) uint64 { return dev&0xff | (dev>>12)&^0xff }

// HoldLikeLockd takes, on the file at path, the lock another server's
// virtlockd holds on a running guest's disk (a write lock on its first
// byte; lockd's direct lockspace), so that a test can check that libvirt's
// lock manager, and not QEMU's image locking (other bytes), refuses a
// start. It is an open file description lock, so that no other file the
// test process opens and closes drops it. release (also at the test's
// end) lets it go.
func HoldLikeLockd(t testing.TB, path string) (release func()) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 1}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		f.Close()
		t.Fatalf("lock %s as virtlockd would: %v", path, err)
	}
	var once sync.Once
	release = func() { once.Do(func() { f.Close() }) }
	t.Cleanup(release)
	return release
}
