package commands

import (
	"context"
	"strings"

	"xenmanager/backend"
)

// vmType is the Vm: a guest whose vm.cfg lives in a repository.
var vmType = &objectType{
	Name: "Vm",
	List: &Spec{Help: "List VMs.", Attrs: []Attr{filterName,
		{Name: "status", Kind: AttrEnum, Enum: []string{"Running", "Stopped", "Suspended", "Paused", backend.VMUnknown},
			Help: "only VMs in this state (Unknown: placed on a server that is unreachable)"},
		filterServer, filterServerPool, filterRepository},
		Run: streamedBy((*backend.Manager).StreamVMs, vmRow)},
	Show:       shownBy((*backend.Manager).VM, vmShowFields),
	ShowFields: fieldsOf(vmFields),
	ListFields: rowFieldsOf(vmRow),
	StatesFor:  backend.VMStatesFor,
}

// domainTypes are the core's domain types as the language spells them.
var domainTypes = func() []string {
	out := make([]string, len(backend.DomainTypes))
	for i, d := range backend.DomainTypes {
		out[i] = domainTypeName(d)
	}
	return out
}()

func domainTypeName(wire string) string { return strings.ToUpper(wire) }

// The VM size attributes of create Vm and edit Vm: their bounds are the
// backend's, which both paths check again.
var (
	attrMemory        = Attr{Name: "memory", Kind: AttrInt, Min: backend.VMMemoryMiB.Min, Max: backend.VMMemoryMiB.Max, Help: "memory in MB"}
	attrCPUCount      = Attr{Name: "cpuCount", Kind: AttrInt, Min: backend.VMCPUs.Min, Max: backend.VMCPUs.Max, Help: "number of virtual CPUs"}
	attrCPUCountLimit = Attr{Name: "cpuCountLimit", Kind: AttrInt, Min: backend.VMCPUs.Min, Max: backend.VMCPUs.Max,
		Help: "the most vCPUs it may have (maxvcpus), up to which cpuCount grows while it runs"}
	attrMemoryLimit = Attr{Name: "memoryLimit", Kind: AttrInt, Min: backend.VMMemoryMiB.Min, Max: backend.VMMemoryMiB.Max,
		Help: "the most memory in MB it may have (maxmem), up to which memory grows while it runs"}
)

// stoppedOnly is attribute a as edit Vm takes it when it changes only
// while the VM is stopped.
func stoppedOnly(a Attr) Attr {
	a.Help += "; stopped VMs only"
	return a
}

// The settings of create Vm and edit Vm that are for information or for
// start: the backend checks their values on both paths.
var (
	attrOSType    = Attr{Name: "osType", Kind: AttrString, Help: "the guest's operating system, for information"}
	attrBootOrder = Attr{Name: "bootOrder", Kind: AttrEnum, Enum: backend.BootOrders, Help: "devices to boot from, in order"}
)

// The direct kernel boot attributes of create Vm and edit Vm (vm.cfg's
// kernel, ramdisk and extra); the backend checks their values.
var (
	attrKernel = Attr{Name: "kernel", Kind: AttrString,
		Help: "kernel to boot directly (Xen PV): a file of the VM's repository, relative to its root, such as Kernels/vmlinuz-6.1"}
	attrRamdisk = Attr{Name: "ramdisk", Kind: AttrString,
		Help: "initial ramdisk of the direct boot: a file of the VM's repository, relative to its root"}
	attrExtra = Attr{Name: "extra", Kind: AttrString,
		Help: "kernel command line of the direct boot, such as 'root=/dev/xvda1 console=hvc0' (printable, at most 1024 bytes)"}
)

// attrOnCrash is restartActionOnCrash of create Vm and edit Vm: vm.cfg's
// on_crash.
var attrOnCrash = Attr{Name: "restartActionOnCrash", Kind: AttrEnum, Enum: backend.RestartActionsOnCrash,
	Help: "what the server does with the VM when its guest crashes: Restart it at once, Destroy its domain, or Preserve the crashed domain for inspection (Coredump*: the same after dumping its memory)"}

// onCrashAtNextBoot is attrOnCrash as edit Vm takes it: a running VM's
// domain keeps the action it started with.
func onCrashAtNextBoot(a Attr) Attr {
	a.Help += "; a running VM's domain keeps the action it booted with until it starts or restarts again"
	return a
}

// editableBoot is a direct boot attribute a as edit Vm takes it: an empty
// value removes the setting, which changes only while the VM is stopped.
func editableBoot(a Attr) Attr {
	a.Help += "; empty to remove; stopped VMs only"
	return a
}

// withDefault is attribute a with default def: create Vm defaults the
// sizes edit Vm leaves alone when absent.
func withDefault(a Attr, def string) Attr {
	a.Default = def
	return a
}

func vmRow(v backend.VMSummary) Row {
	return Row{ID: v.ID, Name: v.Name, Fields: []Field{
		strField("status", "status", v.Status), refCol("server", "server", v.Server), intField("memory", "memory", v.MemoryMiB),
		intField("cpus", "cpuCount", v.CPUCount), refCol("repository", "repository", v.Repository)}}
}

func vmFields(v backend.VM) []Field {
	return []Field{
		strField("Name", "name", v.Name),
		strField("Id", "id", v.ID),
		strField("Status", "status", v.Status),
		refField("Server", "server", v.Server),
		refField("Server Pool", "serverPool", v.Pool),
		refField("Repository", "repository", v.Repository),
		intField("Memory (MB)", "memory", v.MemoryMiB),
		intField("Processors", "cpuCount", v.CPUCount),
		strField("Domain Type", "domainType", domainTypeName(v.DomainType)),
		strField("Description", "description", v.Description),
		intField("Max. Processors", "cpuCountLimit", max(v.CPUCountLimit, v.CPUCount)),
		intField("Max. Memory (MB)", "memoryLimit", max(v.MemoryLimitMiB, v.MemoryMiB)),
		strField("CPU Pinning", "cpuPinning", v.CPUPinning),
		refsField("Preferred Servers", "preferredServers", v.PreferredServers),
		boolField("High Availability", "highAvailability", v.HA),
		strField("Operating System", "osType", v.OSType),
		strField("Boot Order", "bootOrder", v.BootOrder),
		strField("Kernel", "kernel", v.DirectBoot.Kernel),
		strField("Ramdisk", "ramdisk", v.DirectBoot.Ramdisk),
		strField("Extra", "extra", v.DirectBoot.Extra),
		strField("Start Policy", "startPolicy", v.StartPolicy),
		strField("Restart Action On Crash", "restartActionOnCrash", v.RestartActionOnCrash),
		refsField("Virtual Disks", "disks", v.Disks),
		refsField("Virtual Cdroms", "cdroms", v.Cdroms),
		refsField("Vnics", "vnics", v.Vnics),
	}
}

func showVM(v backend.VM) *Result { return &Result{Fields: vmFields(v)} }

// vmShowFields are show Vm's fields: the VM's and its tags, which the
// backend reads with its devices (runShow does not ask for them again).
func vmShowFields(v backend.VM) []Field { return append(vmFields(v), tagsField(v.Tags)) }

func rowVM(v backend.VM) *Result { return &Result{Rows: []Row{{ID: v.ID, Name: v.Name}}} }

func createVMSpec() *Spec {
	return &Spec{
		Type: "Vm", Help: "Create a VM (Stopped) in a repository; its vm.cfg is written there.",
		Attrs: []Attr{
			{Name: "name", Kind: AttrString, Required: true, Help: "the VM's name"},
			{Name: "repository", Kind: AttrObject, Object: "Repository", Required: true, Help: "the repository that holds the VM's files (name or id)"},
			withDefault(attrMemory, "1024"),
			attrMemoryLimit,
			withDefault(attrCPUCount, "1"),
			attrCPUCountLimit,
			{Name: "domainType", Kind: AttrEnum, Enum: domainTypes, Default: "XEN_HVM", Help: "virtualization mode"},
			{Name: "description", Kind: AttrString, Help: "free text"},
			{Name: "disks", Kind: AttrString, Help: "comma-separated VirtualDisk names or ids, mapped from slot 0 (xvda)"},
			{Name: "networks", Kind: AttrString, Help: "comma-separated Network names or ids, one Vnic on each"},
			attrKernel,
			attrRamdisk,
			attrExtra,
			{Name: "highAvailability", Kind: AttrYesNo, Default: "No", Help: "restart the VM elsewhere when its server fails (in a pool with high availability)"},
			withDefault(attrOnCrash, backend.OnCrashRestart),
			attrOSType,
			withDefault(attrBootOrder, "DISK"),
		},
		Clause: &Clause{Prep: "on", Types: []string{"ServerPool"}},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			v, err := x.Backend.CreateVM(ctx, backend.CreateVMRequest{
				Name:           x.Str("name"),
				Repository:     objectRef(x.Str("repository")),
				Pool:           x.TargetRef(),
				MemoryMiB:      x.Int("memory"),
				CPUCount:       x.Int("cpuCount"),
				DomainType:     strings.ToLower(x.Str("domainType")),
				Description:    x.Str("description"),
				Disks:          splitRefs(x.Str("disks")),
				Networks:       splitRefs(x.Str("networks")),
				DirectBoot:     backend.DirectBoot{Kernel: x.Str("kernel"), Ramdisk: x.Str("ramdisk"), Extra: x.Str("extra")},
				HA:             x.Str("highAvailability") == "Yes",
				OnCrash:        x.Str("restartActionOnCrash"),
				MemoryLimitMiB: x.Int("memoryLimit"), CPUCountLimit: x.Int("cpuCountLimit"),
				OSType: x.Str("osType"), BootOrder: x.Str("bootOrder"),
			})
			return rowOf(v.ID, v.Name, err)
		},
	}
}

func editVMSpec() *Spec {
	return &Spec{
		Type: "Vm", Instance: true,
		Help: "Change a VM's settings; memory and cpuCount of a running VM change live within what it started with (memoryLimit, cpuCountLimit; a live decrease keeps its maximum, so the count can be raised back).",
		Attrs: []Attr{
			{Name: "name", Kind: AttrString, Help: "a new name"},
			{Name: "description", Kind: AttrString, Help: "free text"},
			attrMemory,
			stoppedOnly(attrMemoryLimit),
			attrCPUCount,
			stoppedOnly(attrCPUCountLimit),
			{Name: "cpuPinning", Kind: AttrString, Help: "physical CPUs the vCPUs may use, such as 0-1 or 0,2 (hard partitioning), which the server it runs on must have (checked here when it runs, else at start and migrate); empty to remove"},
			{Name: "preferredServers", Kind: AttrString, Help: "comma-separated server names or ids placement picks from; empty to remove"},
			{Name: "highAvailability", Kind: AttrYesNo, Help: "restart the VM elsewhere when its server fails"},
			{Name: "domainType", Kind: AttrEnum, Enum: domainTypes, Help: "virtualization mode; stopped VMs only"},
			attrOSType,
			attrBootOrder,
			{Name: "startPolicy", Kind: AttrEnum, Enum: backend.StartPolicies, Help: "where start places the VM"},
			onCrashAtNextBoot(attrOnCrash),
			editableBoot(attrKernel),
			editableBoot(attrRamdisk),
			editableBoot(attrExtra),
		},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			if err := needSomething(x); err != nil {
				return nil, err
			}
			req := backend.EditVMRequest{Name: optStr(x, "name"), Description: optStr(x, "description"),
				MemoryMiB: optInt(x, "memory"), MemoryLimitMiB: optInt(x, "memoryLimit"),
				CPUCount: optInt(x, "cpuCount"), CPUCountLimit: optInt(x, "cpuCountLimit"),
				CPUPinning: optStr(x, "cpuPinning"), HA: optBool(x, "highAvailability"), OSType: optStr(x, "osType"),
				BootOrder: optStr(x, "bootOrder"), StartPolicy: optStr(x, "startPolicy"), OnCrash: optStr(x, "restartActionOnCrash"),
				Kernel: optStr(x, "kernel"), Ramdisk: optStr(x, "ramdisk"), Extra: optStr(x, "extra")}
			if dt := optStr(x, "domainType"); dt != nil {
				lower := strings.ToLower(*dt)
				req.DomainType = &lower
			}
			if ps := optStr(x, "preferredServers"); ps != nil {
				refs := append([]backend.Ref{}, splitRefs(*ps)...) // empty, not nil: remove the preference
				req.PreferredServers = &refs
			}
			v, err := x.Backend.EditVM(ctx, x.Ref(), req)
			if err != nil {
				return nil, err
			}
			return showVM(v), nil
		},
	}
}

func deleteVMSpec() *Spec {
	return selecting(&Spec{
		Type: "Vm", Instance: true, Attrs: []Attr{attrMultiple},
		Help: "Delete a stopped VM and its files in the repository.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			return vmAction(ctx, x, (*backend.Manager).DeleteVM, rowVM)
		},
	})
}
