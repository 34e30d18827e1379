package backend

// Bounds is the range an integer setting may take, ends included.
type Bounds struct{ Min, Max int64 }

// The sizes a VM and a disk may have. CreateVM and EditVM both check the
// VM's, and the command language declares its size attributes from these,
// so that every path refuses the same values with the same error.
var (
	VMMemoryMiB    = Bounds{Min: 1, Max: 16 * 1024 * 1024} // 16 TiB, well past any server
	VMCPUs         = Bounds{Min: 1, Max: 4096}
	VirtualDiskMiB = Bounds{Min: 1, Max: 64 * 1024 * 1024} // 64 TiB
)

// checkVMSizes refuses a memory size, memory limit or vCPU count out of its
// bounds; nil values are not being set.
func checkVMSizes(memoryMiB, memoryLimitMiB, cpuCount, cpuCountLimit *int64) error {
	for _, c := range []struct {
		name string
		n    *int64
	}{{"memory", memoryMiB}, {"memoryLimit", memoryLimitMiB}} {
		if c.n != nil && (*c.n < VMMemoryMiB.Min || *c.n > VMMemoryMiB.Max) {
			return errorf(KindInvalidArgument, "%s %d MiB is out of range: use %d to %d", c.name, *c.n, VMMemoryMiB.Min, VMMemoryMiB.Max)
		}
	}
	for _, c := range []struct {
		name string
		n    *int64
	}{{"cpuCount", cpuCount}, {"cpuCountLimit", cpuCountLimit}} {
		if c.n != nil && (*c.n < VMCPUs.Min || *c.n > VMCPUs.Max) {
			return errorf(KindInvalidArgument, "%s %d is out of range: use %d to %d", c.name, *c.n, VMCPUs.Min, VMCPUs.Max)
		}
	}
	return nil
}

// nonZero is a pointer to n, or nil when n is 0 (a limit not given).
func nonZero(n int64) *int64 {
	if n == 0 {
		return nil
	}
	return &n
}

// aboveLimit is the error of a count or size above its limit: the same
// from create Vm and edit Vm.
func aboveLimit(what string, n int64, limitName string, limit int64, unit string) error {
	return errorf(KindInvalidArgument, "%s %d%s is above %s %d%s", what, n, unit, limitName, limit, unit)
}
