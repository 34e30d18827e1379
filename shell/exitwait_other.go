//go:build !linux

package shell

import "errors"

// awaitExit is Linux's wait on a pidfd (see exitwait_linux.go); elsewhere
// the caller waits with exec.Cmd.Wait.
func awaitExit(int) error { return errors.New("no pidfd") }
