//go:build !unix

package host

import "errors"

// diskSpaceMiB is unknown where statfs is not available.
func diskSpaceMiB(string) (total, free int64, err error) { return 0, 0, nil }

// freeBytes is unknown where statfs is not available: an error, so that
// no check refuses on it.
func freeBytes(string) (int64, error) { return 0, errors.ErrUnsupported }
