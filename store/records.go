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
	CreatedAt   time.Time
}
