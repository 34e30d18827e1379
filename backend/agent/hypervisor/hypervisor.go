// Package hypervisor is the seam between the agent's shared code (package
// host: repositories, VM files, ownership, pools, the event log, operation
// progress) and what runs the domains: a Driver. The simulated host
// (package xensim) is one; a driver for a real hypervisor can be added
// without touching the XML-RPC layer or the shared code.
//
// The seam covers domains only. Every method is safe for concurrent use and
// reports failures as *agentapi.Fault, ready to go on the wire; the shared
// code has checked ids and resolved the VM's files before it calls.
package hypervisor

import (
	"context"
	"net"
	"time"

	"xenmanager/backend/agentapi"
)

// Spec is a VM as the shared code resolved it for a driver, so that the
// driver need not know how repositories are mounted.
type Spec struct {
	RepoID, VMID string
	// Dir is the VM's directory in the mounted repository, where its
	// vm.cfg is (and a driver may keep a save file beside it).
	Dir string
	// Params is the VM's vm.cfg, checked: integer memory (MiB) and vcpus.
	// Nil for the calls that do not build a domain from it (save, restore).
	Params agentapi.VMParams
	// DiskMiB is the total size of the disk images Params names that this
	// host can see, for guest statistics.
	DiskMiB int64
}

// Change is a configure_vm change of a VM's memory, vCPUs or uuid, which a
// domain of the VM must take live.
type Change struct {
	MemoryMiB, VCPUs    int64 // the values in the merged vm.cfg
	SetMemory, SetVCPUs bool  // whether the call gave memory, vcpus
	// UUID is the uuid the call gave, when SetUUID.
	UUID    any
	SetUUID bool
}

// Domain is a live domain, in any state, with the VM it runs.
type Domain struct {
	agentapi.Domain
	VMID string
}

// HoldsMemory reports whether a domain in state counts against the host's
// free memory (running, blocked or paused), which is also when its console
// and statistics exist and when it keeps a server in its pool.
func HoldsMemory(state string) bool {
	switch state {
	case agentapi.StateRunning, agentapi.StateBlocked, agentapi.StatePaused:
		return true
	}
	return false
}

// ErrNotRunning is the fault for a call about the domain of a VM that has
// none on this host, the same from the shared code and from every driver.
func ErrNotRunning(repoID, vmID string) error {
	return agentapi.Errorf(agentapi.FaultNotFound, "VM %s of repository %s is not running on this server", vmID, repoID)
}

// Hypervisor types a driver reports (discover_server's hypervisor_type):
// the contract's values, so that the manager and the agent read one list.
const (
	TypeSimulated = agentapi.HypervisorSimulated // package xensim: no real guest runs
	TypeXen       = agentapi.HypervisorXen       // Xen through libvirt's libxl driver
	TypeQEMU      = agentapi.HypervisorQEMU      // QEMU (KVM or TCG) through libvirt
	TypeTest      = agentapi.HypervisorTest      // libvirt's test driver: domains without guests
)

// Driver runs the domains of one host.
type Driver interface {
	// Hypervisor names what runs the domains, for discover_server: one of
	// the Type constants and the hypervisor's version ("" when unknown).
	Hypervisor() (kind, version string)
	// Hardware answers discover_hardware: CPUs, total, free and Domain-0
	// memory.
	Hardware() (agentapi.Hardware, error)
	// FreeMemoryMiB is the memory left for new domains.
	FreeMemoryMiB() int64

	// Start boots a domain from spec: InvalidState when the VM already
	// has a domain here, Busy while it migrates here,
	// InsufficientResources when it does not fit.
	Start(spec Spec) error
	// Stop ends the VM's domain: a clean shutdown, or a destroy when force.
	Stop(repoID, vmID string, force bool) error
	// Reboot replaces a running or blocked domain with a new one booted
	// from spec; wait is the seconds the guest is given to shut down.
	Reboot(spec Spec, wait int64) error
	// Pause and Unpause pause a running or blocked domain and let a
	// paused one run again.
	Pause(repoID, vmID string) error
	Unpause(repoID, vmID string) error
	// Save suspends the domain to a file in spec.Dir (a checkpoint keeps
	// it running); Restore resumes it from there, paused when paused.
	Save(spec Spec, checkpoint bool) error
	Restore(spec Spec, paused bool) error
	// Configure checks change against the VM's domain, if any, and, when
	// the domain can take it (or there is none), calls write, which writes
	// vm.cfg, and applies the change to the domain once write succeeds;
	// nothing else happens to the domain in between. Busy while the domain
	// is held by a long operation or migrates here.
	Configure(repoID, vmID string, change Change, write func() error) error

	// Domain is the VM's live domain, in any state; ok is false when the
	// VM has none here.
	//
	// Domain, Domains, DomainVMs, Stats and Hardware fail (rather than
	// answer "none") when the driver cannot tell, such as while a real
	// hypervisor's daemon is unreachable: a manager told "no domains" would
	// record every VM of the server stopped.
	Domain(repoID, vmID string) (d Domain, ok bool, err error)
	// Domains answers list_vms: the live domains, in any state, by domid.
	Domains() ([]agentapi.Domain, error)
	// DomainVMs are the live domains, in any state, with the VM each runs,
	// for the shared code's checks of what is in use (delete a disk or a
	// repository, leave a pool).
	DomainVMs() ([]Domain, error)
	// CheckNoIncoming is Busy while a migration of the VM to this host is
	// set up, so that its files must not change.
	CheckNoIncoming(repoID, vmID string) error
	// Stats answers get_statistics.
	Stats() (agentapi.Statistics, error)

	// OpenConsole issues a single-use token for the serial console of the
	// VM's domain; ServeConsole runs a connection that presents one.
	OpenConsole(repoID, vmID string) (string, error)
	ServeConsole(conn net.Conn)

	// SetupMigrationTarget prepares this host to receive the VM and
	// returns the opaque dest of MigrateVM; listenHost is the address the
	// call came in on. CheckDest checks a dest before anything else of a
	// migrate_vm call. MigrateVM migrates the VM's domain to dest; ctx
	// ending before the commit abandons it. CleanupMigrationTarget
	// releases the VM's incoming migration, if any.
	SetupMigrationTarget(spec Spec, listenHost string) (string, error)
	CheckDest(dest string) error
	MigrateVM(ctx context.Context, repoID, vmID, dest string, live, ssl bool) (agentapi.MigrationResult, error)
	CleanupMigrationTarget(repoID, vmID string) error

	// Reset is the host going down (sys_reboot, sys_shutdown): every
	// domain, incoming migration and console ticket is lost.
	Reset()
	// Close ends the incoming migrations; the agent calls it when it shuts
	// down.
	Close()
}

// Env is what the shared code gives a driver.
type Env struct {
	Hostname string
	Now      func() time.Time
	Events   EventSink
	Progress Progress
	Pool     Pool
	// ResolvePath maps a path of a vm.cfg (a disk image, an ISO, a kernel:
	// /OVS/Repositories/<id>/... as the manager wrote it) to the file on
	// this host, refusing a path that is not inside a repository known
	// here; a driver of a real hypervisor hands the result to it.
	ResolvePath func(vmcfgPath string) (string, error)
}

// EventSink records the domain state changes no call caused (get_events).
type EventSink interface {
	// Emit appends e to the event log, which numbers it.
	Emit(e agentapi.Event)
}

// Progress is the registry of long operations (get_operation_progress).
type Progress interface {
	// Start registers a running operation under key, replacing an ended
	// one.
	Start(key, phase string, total int64) Operation
}

// Operation is one long operation's progress.
type Operation interface {
	// Set records the phase and how far it is.
	Set(phase string, done int64)
	// SetRound records the phase, how far it is and its total, for
	// operations whose total changes with the phase.
	SetRound(phase string, done, total int64)
	// Finish ends the operation: done when err is nil, else failed.
	Finish(err error)
}

// Pool is the host's pool membership, which decides which servers may
// migrate domains here.
type Pool interface {
	// PoolUUID is the pool this server is in, "" when none.
	PoolUUID() string
	// PoolMembers are the servers of the pool (host names or addresses).
	PoolMembers() []string
}

// NewDriver makes a driver for a host.
type NewDriver func(Env) (Driver, error)

// LeaseStorageFault is what a simulated driver may offer besides Driver: a
// fault that makes every access to the HA leases fail, as if the HA
// repository were unreachable (sim_set ha_storage_fail), so that fencing
// can be tested without breaking a file system.
type LeaseStorageFault interface {
	// LeaseStorageFailing reports whether lease accesses must fail now.
	LeaseStorageFailing() bool
}

// CopyPace is what a simulated driver may offer besides Driver: a speed
// limit on the copies of copy_file (sim_set copy_mib_per_s), so that tests
// can watch copies that would otherwise end before anyone looks.
type CopyPace interface {
	// CopyBytesPerSecond is the most a copy may move per second; 0 is no
	// limit.
	CopyBytesPerSecond() int64
}

// SimControl is what a simulated driver offers besides Driver: fault
// injection (sim_set) and its effect on each call. The XML-RPC layer uses
// it when the driver has it; a driver of a real hypervisor need not.
type SimControl interface {
	// BeforeCall applies the injected faults to a call of method.
	BeforeCall(ctx context.Context, method string) error
	// SimSet changes the injected faults.
	SimSet(params map[string]any) error
}
