//go:build !unix

package store

import (
	"errors"
	"fmt"
	"os"
	"runtime"
)

// errLockHeld is lockFile's answer when another process holds the lock.
var errLockHeld = errors.New("the lock is held")

// lockFile fails: the manager runs on unix systems only (its interactive
// sessions need ptys), and a store that could not keep a second manager
// off its database is not opened.
func lockFile(*os.File) error {
	return fmt.Errorf("locking a database is not supported on %s", runtime.GOOS)
}
