package backend

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"xenmanager/store"
)

var pinningRx = regexp.MustCompile(`^\d+(-\d+)?(,\d+(-\d+)?)*$`)

// highestPinnedCPU checks a cpuPinning value (vm.cfg's cpus, "0-1,4") and
// returns the highest CPU it names, -1 for "" (no pinning): a server can
// run the VM only if it has that CPU.
func highestPinnedCPU(pinning string) (int64, error) {
	if pinning == "" {
		return -1, nil
	}
	if !pinningRx.MatchString(pinning) {
		return 0, errorf(KindInvalidArgument, "cpuPinning %q is not a CPU list such as 0-1 or 0,2,4-5", pinning)
	}
	highest := int64(-1)
	for _, part := range strings.Split(pinning, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		first, err1 := strconv.ParseInt(lo, 10, 32)
		last, err2 := first, error(nil)
		if isRange {
			last, err2 = strconv.ParseInt(hi, 10, 32)
		}
		if err1 != nil || err2 != nil {
			return 0, errorf(KindInvalidArgument, "cpuPinning %q names a CPU beyond any server's", pinning)
		}
		if last < first {
			return 0, errorf(KindInvalidArgument, "cpuPinning %q has the range %s, which goes down: write it low-high", pinning, part)
		}
		highest = max(highest, last)
	}
	return highest, nil
}

// cpuRange is how the CPUs of a server with threads hardware threads are
// named: "0-3", "0" for one.
func cpuRange(threads int64) string {
	if threads == 1 {
		return "0"
	}
	return fmt.Sprintf("0-%d", threads-1)
}

// recordedThreads is the number of hardware threads a server had when it
// was last discovered; 0 when unknown.
func recordedThreads(s store.Server) int64 {
	return s.CPUSockets * s.CoresPerSocket * s.ThreadsPerCore
}

// checkPinningOn refuses a cpuPinning that names CPUs server s lacks (as
// recorded when it was discovered): the VM could not run there. A server
// whose hardware is unknown is not judged.
func checkPinningOn(pinning string, s store.Server) error {
	highest, err := highestPinnedCPU(pinning)
	if err != nil {
		return err
	}
	threads := recordedThreads(s)
	if highest < 0 || threads <= 0 || highest < threads {
		return nil
	}
	return errorf(KindInvalidArgument, "cpuPinning %s: server %s has CPUs %s", pinning, s.Name, cpuRange(threads))
}
