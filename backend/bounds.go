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

// checkVMSizes refuses a memory size or vCPU count out of its bounds; nil
// values are not being set.
func checkVMSizes(memoryMiB, cpuCount, cpuCountLimit *int64) error {
	if memoryMiB != nil && (*memoryMiB < VMMemoryMiB.Min || *memoryMiB > VMMemoryMiB.Max) {
		return errorf(KindInvalidArgument, "memory %d MiB is out of range: use %d to %d", *memoryMiB, VMMemoryMiB.Min, VMMemoryMiB.Max)
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
