//go:build !unix

package halease

import (
	"errors"
	"os"
)

// errNoFlock: leases need flock, which only Unix systems have.
var errNoFlock = errors.New("HA leases need flock, which this operating system lacks")

func tryLock(*os.File) (bool, error) { return false, errNoFlock }

func unlockFile(*os.File) error { return errNoFlock }
