package backend

import (
	"context"
	"testing"
)

// edit refuses a VM size out of bounds with the very error create gives,
// before it looks anything up.
func TestVMSizeBoundsCreateAndEdit(t *testing.T) {
	ptr := func(n int64) *int64 { return &n }
	cases := []struct {
		name            string
		memoryMiB, cpus int64
		want            string
	}{
		{"memory 0", 0, 1, "memory 0 MiB is out of range: use 1 to 16777216"},
		{"memory above max", VMMemoryMiB.Max + 1, 1, "memory 16777217 MiB is out of range: use 1 to 16777216"},
		{"memory negative", -5, 1, "memory -5 MiB is out of range: use 1 to 16777216"},
		{"cpus 0", 1024, 0, "cpuCount 0 is out of range: use 1 to 4096"},
		{"cpus above max", 1024, VMCPUs.Max + 1, "cpuCount 4097 is out of range: use 1 to 4096"},
	}
	m := &Manager{} // the bounds are checked before anything is read
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, createErr := m.CreateVM(ctx, CreateVMRequest{Name: "web1", MemoryMiB: c.memoryMiB, CPUCount: c.cpus})
			_, editErr := m.EditVM(ctx, Ref{Name: "web1"}, EditVMRequest{MemoryMiB: ptr(c.memoryMiB), CPUCount: ptr(c.cpus)})
			for what, err := range map[string]error{"create": createErr, "edit": editErr} {
				if err == nil || err.Error() != c.want || KindOf(err) != KindInvalidArgument {
					t.Errorf("%s: got %v (kind %v), want %s (%v)", what, err, KindOf(err), c.want, KindInvalidArgument)
				}
			}
		})
	}
	_, err := m.EditVM(ctx, Ref{Name: "web1"}, EditVMRequest{CPUCountLimit: ptr(VMCPUs.Max + 1)})
	if err == nil || err.Error() != "cpuCountLimit 4097 is out of range: use 1 to 4096" {
		t.Errorf("edit cpuCountLimit=4097: got %v", err)
	}
}

// edit refuses a boot order that is not one of BootOrders before it looks
// anything up, as the command language's enumeration does.
func TestEditVMRefusesUnknownBootOrder(t *testing.T) {
	m := &Manager{} // checked before anything is read
	for _, order := range []string{"", "FLOPPY", "disk", "DISK,PXE"} {
		_, err := m.EditVM(context.Background(), Ref{Name: "web1"}, EditVMRequest{BootOrder: &order})
		want := `bootOrder "` + order + `" is not one of DISK, CDROM, PXE, DISK,CDROM, CDROM,DISK, PXE,DISK`
		if err == nil || err.Error() != want || KindOf(err) != KindInvalidArgument {
			t.Errorf("bootOrder %q: got %v, want %s", order, err, want)
		}
	}
}

// create takes the limits and boot order edit takes, refused alike before
// anything is looked up: out of bounds, below what they limit, not one of
// BootOrders.
func TestCreateVMLimitsAndBootOrder(t *testing.T) {
	m := &Manager{} // checked before anything is read
	for _, c := range []struct {
		name string
		req  CreateVMRequest
		want string
	}{
		{"memoryLimit above max", CreateVMRequest{MemoryMiB: 1024, MemoryLimitMiB: VMMemoryMiB.Max + 1},
			"memoryLimit 16777217 MiB is out of range: use 1 to 16777216"},
		{"memoryLimit negative", CreateVMRequest{MemoryMiB: 1024, MemoryLimitMiB: -1}, "memoryLimit -1 MiB is out of range: use 1 to 16777216"},
		{"cpuCountLimit above max", CreateVMRequest{MemoryMiB: 1024, CPUCount: 1, CPUCountLimit: VMCPUs.Max + 1},
			"cpuCountLimit 4097 is out of range: use 1 to 4096"},
		{"memory above memoryLimit", CreateVMRequest{MemoryMiB: 2048, CPUCount: 1, MemoryLimitMiB: 1024},
			"memory 2048 MiB is above memoryLimit 1024 MiB"},
		{"cpuCount above cpuCountLimit", CreateVMRequest{MemoryMiB: 1024, CPUCount: 4, CPUCountLimit: 2}, "cpuCount 4 is above cpuCountLimit 2"},
		{"an unknown boot order", CreateVMRequest{MemoryMiB: 1024, CPUCount: 1, BootOrder: "FLOPPY"},
			`bootOrder "FLOPPY" is not one of DISK, CDROM, PXE, DISK,CDROM, CDROM,DISK, PXE,DISK`},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.req.Name = "web1"
			if c.req.CPUCount == 0 {
				c.req.CPUCount = 1
			}
			_, err := m.CreateVM(context.Background(), c.req)
			if err == nil || err.Error() != c.want || KindOf(err) != KindInvalidArgument {
				t.Errorf("got %v (kind %v), want %s", err, KindOf(err), c.want)
			}
		})
	}
	ptr := func(n int64) *int64 { return &n }
	_, err := m.EditVM(context.Background(), Ref{Name: "web1"}, EditVMRequest{MemoryLimitMiB: ptr(0)})
	if err == nil || err.Error() != "memoryLimit 0 MiB is out of range: use 1 to 16777216" {
		t.Errorf("edit memoryLimit=0: got %v", err)
	}
}
