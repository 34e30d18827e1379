//go:build unix

package store

import (
	"errors"
	"os"
	"syscall"
)

// errLockHeld is lockFile's answer when another process holds the lock.
var errLockHeld = errors.New("the lock is held")

// lockFile takes an exclusive flock on f without waiting.
func lockFile(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return errLockHeld
		}
		return err
	}
}
