package store

import "time"

// User is a person who may log in to the manager.
type User struct {
	ID           string
	Name         string
	PasswordHash string
	Role         string
	CreatedAt    time.Time
}

// ServerPool is a set of servers that share storage and run VMs together.
type ServerPool struct {
	ID          string
	Name        string
	Description string
	StartPolicy string
	CreatedAt   time.Time
}

// Server is a Xen server the manager owns through its agent.
type Server struct {
	ID             string
	Name           string
	UniqueID       string // the agent's own identity, stable across addresses
	Hostname       string
	Address        string
	Port           int
	AgentPassword  []byte // sealed with the manager's secret key, never plain
	CertSPKISHA256 string // the pinned agent certificate
	PoolID         string // "" when in no pool
	OVMVersion     string
	AgentVersion   string
	Manufacturer   string
	Product        string
	CPUModel       string
	CPUSockets     int64
	CoresPerSocket int64
	ThreadsPerCore int64
	CPUKHz         int64
	TotalMemoryMiB int64
	Dom0MemoryMiB  int64
	Status         string
	Roles          string // comma-separated: xen, utility
	IsMaster       bool
	Maintenance    bool
	CreatedAt      time.Time
}

// Repository is storage shared by the servers of a pool.
type Repository struct {
	ID         string
	Name       string
	PoolID     string
	FSLocation string
	MountPoint string
	CreatedAt  time.Time
}

// VM is a virtual machine's configuration and last known state.
type VM struct {
	ID          string
	Name        string
	PoolID      string
	RepoID      string
	ServerID    string // "" when not placed on a server
	Status      string
	MemoryMiB   int64
	CPUCount    int64
	DomainType  string
	Description string
	// CPUCountLimit is maxvcpus (0: equal to CPUCount).
	CPUCountLimit int64
	// CPUPinning is the vm.cfg cpus value ("0-1"), "" for none.
	CPUPinning       string
	PreferredServers string // space-separated server ids
	HA               bool
	OSType           string
	BootOrder        string
	StartPolicy      string
	LastServerID     string // where it ran last, for CURRENT_SERVER
	CreatedAt        time.Time
}

// Job is one change the manager carries out, recorded before its first
// agent call.
type Job struct {
	ID        string
	Summary   string
	User      string
	Objects   string // space-separated ids the job locks
	PoolID    string // the pool it acts in; "" for manager-wide jobs
	Status    string
	Progress  int
	Message   string
	Result    string
	Error     string
	CreatedAt time.Time
	EndedAt   time.Time // zero while running
}

// Event is something an operator should know about: a failed job, an agent
// fault, a change made outside the manager.
type Event struct {
	ID           string
	Severity     string
	Kind         string
	ObjectType   string
	ObjectID     string
	ObjectName   string
	PoolID       string
	Description  string
	Acknowledged bool
	CreatedAt    time.Time
}

// AuditRecord is one command a user ran.
type AuditRecord struct {
	Seq       int64
	User      string
	Remote    string
	Command   string
	Result    string
	CreatedAt time.Time
}

// SSHKey is a public key a user may log in with.
type SSHKey struct {
	ID          string
	UserID      string
	UserName    string
	Name        string
	PublicKey   string
	Fingerprint string
	CreatedAt   time.Time
}
