package main

import (
	"runtime"
	"testing"
)

// TestRaiseProcs: one P becomes minProcs, more stay as they are, and
// GOMAXPROCS in the environment is left alone.
func TestRaiseProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	noEnv := func(string) string { return "" }
	for _, tc := range []struct {
		before int
		getenv func(string) string
		want   int
	}{
		{1, noEnv, minProcs},
		{minProcs + 1, noEnv, minProcs + 1},
		{1, func(k string) string {
			if k == "GOMAXPROCS" {
				return "1"
			}
			return ""
		}, 1},
	} {
		runtime.GOMAXPROCS(tc.before)
		raiseProcs(tc.getenv)
		if got := runtime.GOMAXPROCS(0); got != tc.want {
			t.Errorf("GOMAXPROCS %d before: %d after, want %d", tc.before, got, tc.want)
		}
	}
}
