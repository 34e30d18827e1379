// Package agentapi holds the wire contract between the manager and the agents
// (docs/agent-protocol.md): method names, each method's parameters in wire
// order (Signatures), fault codes and the shapes of results; vm.cfg's format
// is its subpackage vmcfg, and which addresses an import may reach its
// subpackage importnet. It is the only package the agent's server side
// and the manager's client share, so that neither can drift from the other
// without a compile error or a refused call.
package agentapi

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// APIVersion is the protocol version this package describes.
const APIVersion = "3"

// AgentUser is the fixed HTTP basic-auth user name of every agent.
const AgentUser = "oracle"

// DefaultPort is the agent's default HTTPS port.
const DefaultPort = 8899

// Paths the agent serves XML-RPC on.
const (
	Path     = "/api/3/"
	PathRPC2 = "/RPC2"
)

// Method names, as the Oracle VM Agent 3.x API spells them.
const (
	MethodGetAPIVersion        = "get_api_version"
	MethodEcho                 = "echo"
	MethodDiscoverServer       = "discover_server"
	MethodDiscoverHardware     = "discover_hardware"
	MethodTakeOwnership        = "take_ownership"
	MethodReleaseOwnership     = "release_ownership"
	MethodCreateRepository     = "create_repository"
	MethodAddRepository        = "add_repository"
	MethodDiscoverRepositories = "discover_repositories"
	MethodCreateVM             = "create_vm"
	MethodGetVMConfig          = "get_vm_config"
	MethodListVMs              = "list_vms"
	MethodListVM               = "list_vm"
	MethodStartVM              = "start_vm"
	MethodStopVM               = "stop_vm"
	MethodDeleteVM             = "delete_vm"
	MethodSimSet               = "sim_set"
)

// FaultCode is the faultCode of an XML-RPC fault sent by an agent.
type FaultCode int

// The fault codes of the protocol, one per kind.
const (
	FaultInternalError         FaultCode = 1000
	FaultInvalidArgument       FaultCode = 1001
	FaultNotFound              FaultCode = 1002
	FaultInvalidState          FaultCode = 1003
	FaultInsufficientResources FaultCode = 1004
	FaultNotOwner              FaultCode = 1005
	FaultBusy                  FaultCode = 1006
	FaultMigrationFailed       FaultCode = 1007
)

var faultKinds = map[FaultCode]string{
	FaultInternalError:         "InternalError",
	FaultInvalidArgument:       "InvalidArgument",
	FaultNotFound:              "NotFound",
	FaultInvalidState:          "InvalidState",
	FaultInsufficientResources: "InsufficientResources",
	FaultNotOwner:              "NotOwner",
	FaultBusy:                  "Busy",
	FaultMigrationFailed:       "MigrationFailed",
}

// Kind returns the name of the fault kind ("NotFound"), or "Fault<code>" for a
// code the protocol does not define.
func (c FaultCode) Kind() string {
	if k, ok := faultKinds[c]; ok {
		return k
	}
	return "Fault" + strconv.Itoa(int(c))
}

// Known reports whether the protocol defines c: a code an agent sends
// may be any number.
func (c FaultCode) Known() bool {
	_, ok := faultKinds[c]
	return ok
}

// Fault is an XML-RPC fault in the protocol's shape: faultString is
// "<Kind>: <message>".
type Fault struct {
	Code    FaultCode
	Message string // the part after "<Kind>: "
}

// Errorf builds a fault of the given code with a formatted message.
func Errorf(code FaultCode, format string, args ...any) *Fault {
	return &Fault{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FaultString is the faultString sent on the wire.
func (f *Fault) FaultString() string { return f.Code.Kind() + ": " + f.Message }

func (f *Fault) Error() string { return f.FaultString() }

// ParseFaultString splits a faultString into the message without its
// "<Kind>: " prefix; strings from agents that omit the prefix pass unchanged.
func ParseFaultString(code FaultCode, s string) *Fault {
	prefix := code.Kind() + ": "
	return &Fault{Code: code, Message: strings.TrimPrefix(s, prefix)}
}

// AsFault reports whether err is (or wraps) a Fault, and returns it.
func AsFault(err error) (*Fault, bool) {
	var f *Fault
	if errors.As(err, &f) {
		return f, true
	}
	return nil, false
}

// Membership states a server reports in discover_server.
const (
	MembershipUnowned = "Unowned"
	MembershipOwned   = "Owned"
	MembershipPooled  = "Pooled"
)

// Domain states reported by list_vms and list_vm.
const (
	StateRunning   = "running"
	StateBlocked   = "blocked"
	StatePaused    = "paused"
	StateSuspended = "suspended"
	StateShutdown  = "shutdown"
	StateCrashed   = "crashed"
)

// VersionInfo is the result of get_api_version. Extensions [ext] names
// the optional features the agent has beyond the Oracle VM Agent API that
// change what a call means (Ext constants); absent from agents that have
// none, and unknown names are ignored, so that a manager asks before it
// relies on one.
type VersionInfo struct {
	APIVersion   string   `xmlrpc:"api_version"`
	AgentVersion string   `xmlrpc:"agent_version"`
	Extensions   []string `xmlrpc:"extensions,omitempty"`
}

// Has reports whether the agent lists the extension ext.
func (v VersionInfo) Has(ext string) bool { return slices.Contains(v.Extensions, ext) }

// Extensions an agent lists in get_api_version.
const (
	// ExtImportAllowedNetworks: import_virtual_disk refuses downloads
	// from loopback, link-local, private, shared and the agent's own
	// addresses, at every connection (each redirect and DNS answer), and
	// reads option.allowed_networks, the networks where it may reach them.
	ExtImportAllowedNetworks = "import_allowed_networks"
)

// Hypervisor types an agent reports in discover_server's hypervisor_type:
// what runs its domains.
const (
	HypervisorSimulated = "simulated" // no real guest runs: this project's simulated host
	HypervisorXen       = "xen"       // Xen
	HypervisorQEMU      = "qemu"      // QEMU, with KVM or TCG
	HypervisorTest      = "test"      // libvirt's test driver: domains without guests
)

// ServerInfo is the result of discover_server. HypervisorType and
// HypervisorVersion are optional (absent from older agents, and the
// version when the agent does not know it); see Hypervisor.
type ServerInfo struct {
	Hostname        string   `xmlrpc:"hostname"`
	UniqueID        string   `xmlrpc:"unique_id"`
	Address         string   `xmlrpc:"address"`
	OVMVersion      string   `xmlrpc:"ovm_version"`
	AgentVersion    string   `xmlrpc:"agent_version"`
	ServerRoles     []string `xmlrpc:"server_roles"`
	IsCurrentMaster bool     `xmlrpc:"is_current_master"`
	PoolUniqueID    string   `xmlrpc:"pool_unique_id"`
	ManagerUniqueID string   `xmlrpc:"manager_unique_id"`
	MembershipState string   `xmlrpc:"membership_state"`
	// HypervisorType is one of the Hypervisor constants.
	HypervisorType    string `xmlrpc:"hypervisor_type,omitempty"`
	HypervisorVersion string `xmlrpc:"hypervisor_version,omitempty"`
}

// Hypervisor is the hypervisor type and version s reports ("" when
// unknown). An agent without hypervisor_type predates the field and is
// taken as Xen of an unknown version: Xen is the only hypervisor the
// Oracle VM Agent API knows.
func (s ServerInfo) Hypervisor() (kind, version string) {
	if s.HypervisorType == "" {
		return HypervisorXen, ""
	}
	return s.HypervisorType, s.HypervisorVersion
}

// Hardware is the result of discover_hardware.
type Hardware struct {
	Manufacturer   string `xmlrpc:"manufacturer"`
	Product        string `xmlrpc:"product"`
	CPUModel       string `xmlrpc:"cpu_model"`
	CPUSockets     int64  `xmlrpc:"cpu_sockets"`
	CoresPerSocket int64  `xmlrpc:"cores_per_socket"`
	ThreadsPerCore int64  `xmlrpc:"threads_per_core"`
	CPUKHz         int64  `xmlrpc:"cpu_khz"`
	TotalMemoryMiB int64  `xmlrpc:"total_memory_mib"`
	FreeMemoryMiB  int64  `xmlrpc:"free_memory_mib"`
	Dom0MemoryMiB  int64  `xmlrpc:"dom0_memory_mib"`
}

// Threads is the number of hardware threads (logical CPUs) of the server.
func (h Hardware) Threads() int64 { return h.CPUSockets * h.CoresPerSocket * h.ThreadsPerCore }

// Repository is one element of discover_repositories.
type Repository struct {
	UUID       string `xmlrpc:"uuid"`
	Alias      string `xmlrpc:"alias"`
	MountPoint string `xmlrpc:"mount_point"`
	TotalMiB   int64  `xmlrpc:"total_mib"`
	FreeMiB    int64  `xmlrpc:"free_mib"`
	VMs        int64  `xmlrpc:"vms"`
	Disks      int64  `xmlrpc:"disks"`
	ISOs       int64  `xmlrpc:"isos"`
	Templates  int64  `xmlrpc:"templates"`
}

// Domain is one element of list_vms, and the result of list_vm.
type Domain struct {
	UUID      string  `xmlrpc:"uuid"`
	Name      string  `xmlrpc:"name"`
	DomID     int64   `xmlrpc:"domid"`
	State     string  `xmlrpc:"state"`
	MemoryMiB int64   `xmlrpc:"memory_mib"`
	VCPUs     int64   `xmlrpc:"vcpus"`
	CPUTimeS  float64 `xmlrpc:"cpu_time_s"`
	RepoID    string  `xmlrpc:"repo_id"`
}

// VMParams is a VM's configuration as vm.cfg keys (see the protocol's
// "Domains" section). Values are string, int64, or []string (disk, vif).
type VMParams map[string]any

// Keys of VMParams that the manager sets and reads.
const (
	KeyName        = "name"
	KeyUUID        = "uuid"
	KeySimpleName  = "OVM_simple_name"
	KeyDescription = "OVM_description"
	KeyDomainType  = "OVM_domain_type"
	KeyOSType      = "OVM_os_type"
	KeyHA          = "OVM_high_availability"
	KeyMemory      = "memory"
	KeyMaxMem      = "maxmem"
	KeyVCPUs       = "vcpus"
	KeyMaxVCPUs    = "maxvcpus"
	KeyCPUs        = "cpus"
	KeyDisk        = "disk"
	KeyVif         = "vif"
	KeyVfb         = "vfb"
	KeyBoot        = "boot"
	KeyKernel      = "kernel"
	KeyRamdisk     = "ramdisk"
	KeyExtra       = "extra"
	KeyOnPoweroff  = "on_poweroff"
	KeyOnReboot    = "on_reboot"
	KeyOnCrash     = "on_crash"
)

// Actions of vm.cfg's on_crash, as xl spells them: what the hypervisor
// does with a domain whose guest crashed. Xen's default, when the key is
// absent, is CrashDestroy.
const (
	CrashDestroy         = "destroy"          // the domain is destroyed
	CrashRestart         = "restart"          // the domain is destroyed and a new one boots
	CrashPreserve        = "preserve"         // the crashed domain stays, for inspection
	CrashCoredumpDestroy = "coredump-destroy" // destroy, after dumping the guest's memory
	CrashCoredumpRestart = "coredump-restart" // restart, after dumping the guest's memory
	CrashRenameRestart   = "rename-restart"   // the crashed domain stays under another name and a new one boots
)

// CrashActions are the values on_crash accepts.
var CrashActions = []string{CrashDestroy, CrashRestart, CrashPreserve, CrashCoredumpDestroy, CrashCoredumpRestart, CrashRenameRestart}

// DirectBootKeys are the vm.cfg keys of a direct kernel boot (Xen PV, as
// xl reads them): the kernel and the initial ramdisk, absolute paths as the
// server sees them, and the kernel command line. All are optional strings;
// an empty one stands for no value, which configure_vm removes from
// vm.cfg, since xl would try to boot a kernel of an empty name.
var DirectBootKeys = []string{KeyKernel, KeyRamdisk, KeyExtra}

// Int returns the integer value of key, accepting the int64 and decimal string
// forms the protocol allows.
func (p VMParams) Int(key string) (int64, bool) {
	n, err := ToInt(p[key])
	return n, err == nil
}

// String returns the string value of key, or "".
func (p VMParams) String(key string) string {
	s, _ := p[key].(string)
	return s
}
