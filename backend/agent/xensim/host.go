// Package xensim is the simulated Xen host behind the agent: CPUs, memory,
// Domain-0 and domains with their states, plus real repository directories
// and a small persistent state. Every method is safe for concurrent use and
// reports failures as *agentapi.Fault, ready to go on the wire.
package xensim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// AgentVersion is the version the simulated agent reports.
const AgentVersion = "0.1.0-xensim"

// OVMVersion is the Oracle VM Server release the simulated host imitates.
const OVMVersion = "3.4.6"

// Defaults used when Config leaves a field zero.
const (
	DefaultCPUs      = 8
	DefaultMemoryMiB = 32768
)

// Config describes the simulated host.
type Config struct {
	DataDir   string // holds state.json and the roots of mount points; created if missing
	Hostname  string
	CPUs      int   // hardware threads; DefaultCPUs when 0
	MemoryMiB int64 // total memory; DefaultMemoryMiB when 0
	// Now returns the current time; time.Now when nil. Tests pass a fake
	// clock to check CPU time.
	Now func() time.Time
}

// Host is one simulated Xen server.
type Host struct {
	dataDir  string
	hostname string
	cpus     int64
	totalMiB int64
	dom0MiB  int64
	now      func() time.Time

	// mu guards state, domains and nextDomID, and serialises this host's
	// writes of state.json and of VM directories, so that a check ("not
	// running here") and the change it allows cannot interleave with another
	// call.
	mu        sync.Mutex
	state     persistentState
	domains   map[string]*domain // by domainKey(repoID, vmID)
	nextDomID int64
	diskOps   map[string]string // by diskKey(repoID, diskID): the progress key of a disk being created
	// targets are the incoming migrations set up here (setup_migration_target),
	// by domainKey; their memory is reserved. See migrate.go.
	targets map[string]*migTarget
	// migTTL is how long a target waits for its source; MigrationTargetTTL
	// but in tests.
	migTTL time.Duration
	migTLS migrationTLS // the certificate of ssl migration streams; see migrate.go

	faults   faults           // has its own mutex; see sim.go
	events   eventLog         // has its own mutex; see events.go
	progress progressRegistry // has its own mutex; see progress.go
	consoles consoleTickets   // has its own mutex; see console.go
}

// New loads the host's state from cfg.DataDir, or creates it (with a new
// unique id) on first start. Domains are never restored: a restarted agent
// is a rebooted host.
func New(cfg Config) (*Host, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("xensim: a data directory is required")
	}
	if cfg.Hostname == "" {
		return nil, errors.New("xensim: a hostname is required")
	}
	if cfg.CPUs < 0 || cfg.MemoryMiB < 0 {
		return nil, fmt.Errorf("xensim: CPUs (%d) and memory (%d MiB) must not be negative", cfg.CPUs, cfg.MemoryMiB)
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("xensim: data directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("xensim: create data directory: %w", err)
	}
	h := &Host{
		dataDir:   dir,
		hostname:  cfg.Hostname,
		cpus:      int64(cfg.CPUs),
		totalMiB:  cfg.MemoryMiB,
		now:       cfg.Now,
		domains:   map[string]*domain{},
		diskOps:   map[string]string{},
		targets:   map[string]*migTarget{},
		migTTL:    MigrationTargetTTL,
		nextDomID: 1,
	}
	if h.cpus == 0 {
		h.cpus = DefaultCPUs
	}
	if h.totalMiB == 0 {
		h.totalMiB = DefaultMemoryMiB
	}
	h.dom0MiB = Dom0MemoryMiB(h.totalMiB)
	if h.now == nil {
		h.now = time.Now
	}
	if err := h.loadState(); err != nil {
		return nil, err
	}
	return h, nil
}

// Dom0MemoryMiB is the memory Domain-0 keeps on a host with total MiB:
// 1024 MiB, or an eighth of a host smaller than 8 GiB.
func Dom0MemoryMiB(total int64) int64 {
	if total < 8192 {
		return total / 8
	}
	return 1024
}

// Hostname is the host's name.
func (h *Host) Hostname() string { return h.hostname }

// DataDir is the absolute data directory.
func (h *Host) DataDir() string { return h.dataDir }

// UniqueID is the id generated on the host's first start.
func (h *Host) UniqueID() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state.UniqueID
}

// FreeMemoryMiB is the memory left for new domains.
func (h *Host) FreeMemoryMiB() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.freeLocked()
}

// freeLocked is total - Domain-0 - the memory of domains that hold it
// (running, blocked or paused) - the memory reserved for incoming
// migrations. h.mu must be held.
func (h *Host) freeLocked() int64 {
	free := h.totalMiB - h.dom0MiB
	for _, d := range h.domains {
		if d.holdsMemory() {
			free -= d.memoryMiB
		}
	}
	for _, t := range h.targets {
		free -= t.memoryMiB
	}
	return free
}

// Reset is the host going down, as for sys_reboot or sys_shutdown: every
// domain is lost (as after a restart of the agent), incoming migrations are
// cut and their reservations released, and injected faults, console
// tickets and operation progress are forgotten. The persistent
// state, the repositories and the event log stay. Calls blocked by a hang
// return.
func (h *Host) Reset() {
	h.mu.Lock()
	for key := range h.domains {
		h.removeDomainLocked(key)
	}
	h.releaseTargetsLocked()
	h.mu.Unlock()
	h.progress.clear()
	h.consoles.clear()
	f := &h.faults
	f.mu.Lock()
	if f.hung != nil {
		close(f.hung)
	}
	f.hung, f.latency, f.failNext, f.dirty = nil, nil, nil, nil
	f.corruptMig, f.breakMig, f.migMiBPerS = nil, nil, 0
	f.mu.Unlock()
}
