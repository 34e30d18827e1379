package backend

import "time"

// The views below are what operations return to the command layer: the
// stored configuration with references resolved to names, and no secrets.

// ServerPool is a pool as the operator sees it.
type ServerPool struct {
	ID, Name, Description string
	StartPolicy           string
	Master                NamedRef
	Servers               []NamedRef
	Repositories          []NamedRef
	VMs                   int
	CreatedAt             time.Time
	HA                    PoolHAView
}

// PoolHAView is a pool's high availability as show ServerPool gives it.
type PoolHAView struct {
	Enabled              bool
	Repository           NamedRef
	Renew, Fence, Margin time.Duration
}

// NamedRef is an object's id and name, for "Server = <id>  [<name>]" lines.
type NamedRef struct {
	ID, Name string
}

// Server is a server as the operator sees it.
type Server struct {
	ID, Name, Hostname, UniqueID string
	Address                      string
	Port                         int
	Status                       string
	Pool                         NamedRef
	OVMVersion, AgentVersion     string
	// HypervisorType is what runs the server's domains (an
	// agentapi.Hypervisor* value); HypervisorVersion is "" when unknown.
	HypervisorType, HypervisorVersion string
	Manufacturer, Product             string
	CPUModel                          string
	CPUSockets, CoresPerSocket        int64
	ThreadsPerCore, CPUKHz            int64
	TotalMemoryMiB                    int64
	Dom0MemoryMiB                     int64
	CertSPKISHA256                    string
	RunningVMs                        int
	Roles                             string
	IsMaster                          bool
	Maintenance                       bool
	CreatedAt                         time.Time
}

// Repository is a repository as the operator sees it.
type Repository struct {
	ID, Name   string
	Pool       NamedRef
	FSLocation string
	MountPoint string
	VMs        int
	CreatedAt  time.Time
}

// VM is a virtual machine as the operator sees it.
type VM struct {
	ID, Name         string
	Status           string
	Pool             NamedRef
	Repository       NamedRef
	Server           NamedRef // empty when not running anywhere
	MemoryMiB        int64
	CPUCount         int64
	DomainType       string
	Description      string
	CPUCountLimit    int64
	MemoryLimitMiB   int64 // 0: equal to MemoryMiB
	CPUPinning       string
	PreferredServers []NamedRef
	HA               bool
	OSType           string
	BootOrder        string
	StartPolicy      string
	// RestartActionOnCrash is what the hypervisor does with the VM's
	// domain when its guest crashes (one of RestartActionsOnCrash).
	RestartActionOnCrash string
	// DirectBoot is the VM's direct kernel boot, its kernel and ramdisk
	// relative to the root of its repository.
	DirectBoot DirectBoot
	Disks      []NamedRef // by slot
	Cdroms     []NamedRef // ISOs, by slot
	Vnics      []NamedRef
	// Tags are the names of the VM's tags, read with its devices.
	Tags      []string
	CreatedAt time.Time
}

// VM statuses.
const (
	VMStopped = "Stopped"
	VMRunning = "Running"
)

// Server statuses.
const (
	ServerRunning = "Running"
)

func (v VM) String() string         { return "Vm " + v.Name + " (" + v.ID + ")" }
func (s Server) String() string     { return "Server " + s.Name + " (" + s.ID + ")" }
func (p ServerPool) String() string { return "ServerPool " + p.Name + " (" + p.ID + ")" }
func (r Repository) String() string { return "Repository " + r.Name + " (" + r.ID + ")" }
