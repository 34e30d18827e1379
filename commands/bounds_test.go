package commands

import (
	"strconv"
	"testing"

	"xenmanager/backend"
)

// create Vm and edit Vm refuse the same sizes, those out of the backend's
// bounds, and accept the bounds themselves.
func TestVMSizeBoundsCreateAndEdit(t *testing.T) {
	cases := []struct {
		attr     string
		bounds   backend.Bounds
		editOnly bool // create Vm does not take it
	}{
		{"memory", backend.VMMemoryMiB, false},
		{"memoryLimit", backend.VMMemoryMiB, false},
		{"cpuCount", backend.VMCPUs, false},
		{"cpuCountLimit", backend.VMCPUs, false},
	}
	for _, c := range cases {
		for _, tc := range []struct {
			n  int64
			ok bool
		}{{c.bounds.Min - 1, false}, {c.bounds.Min, true}, {c.bounds.Max, true}, {c.bounds.Max + 1, false}} {
			v := c.attr + "=" + strconv.FormatInt(tc.n, 10)
			lines := []string{"edit Vm name=web1 " + v}
			if !c.editOnly {
				lines = append(lines, "create Vm name=web1 repository=r1 "+v)
			}
			for _, line := range lines {
				_, perr := Default.Parse(line)
				switch {
				case tc.ok && perr != nil:
					t.Errorf("%s: refused: %v", line, perr)
				case !tc.ok && (perr == nil || perr.Code != CodeInvalidValue):
					t.Errorf("%s: got %v, want %s", line, perr, CodeInvalidValue)
				}
			}
		}
	}
}
