// Package xensim is the simulated Xen hypervisor behind the agent, a
// hypervisor.Driver: CPUs, memory, Domain-0 and domains with their states,
// CPU time, save files, live migration streams, serial consoles and
// statistics, plus the fault injection of sim_set. Every method is safe
// for concurrent use and reports failures as *agentapi.Fault, ready to go
// on the wire.
package xensim

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agentapi"
)

// Defaults used when Config leaves a field zero.
const (
	DefaultCPUs      = 8
	DefaultMemoryMiB = 32768
)

// Config describes the simulated hardware.
type Config struct {
	CPUs      int   // hardware threads; DefaultCPUs when 0
	MemoryMiB int64 // total memory; DefaultMemoryMiB when 0
}

// Sim is the simulated hypervisor of one host.
type Sim struct {
	hostname string
	cpus     int64
	totalMiB int64
	dom0MiB  int64
	now      func() time.Time
	events   hypervisor.EventSink // the host's event log
	progress hypervisor.Progress  // the host's operation progress
	pool     hypervisor.Pool      // the host's pool membership; never called with mu held

	// mu guards domains, nextDomID and targets, so that a check ("not
	// running here", "it fits") and the change it allows cannot interleave
	// with another call.
	mu        sync.Mutex
	domains   map[string]*domain // by domainKey(repoID, vmID)
	nextDomID int64
	// targets are the incoming migrations set up here (setup_migration_target),
	// by domainKey; their memory is reserved. See migrate.go.
	targets map[string]*migTarget
	// migTTL is how long a target waits for its source; MigrationTargetTTL
	// but in tests.
	migTTL time.Duration
	migTLS migrationTLS // the certificate of ssl migration streams; see migrate.go

	faults   faults                    // has its own mutex; see sim.go
	consoles hypervisor.ConsoleTickets // has its own mutex
}

var (
	_ hypervisor.Driver            = (*Sim)(nil)
	_ hypervisor.SimControl        = (*Sim)(nil)
	_ hypervisor.LeaseStorageFault = (*Sim)(nil)
)

// Driver makes simulated hosts of cfg's hardware, for host.Config.
func Driver(cfg Config) hypervisor.NewDriver {
	return func(env hypervisor.Env) (hypervisor.Driver, error) { return New(cfg, env) }
}

// New makes the simulated hypervisor of a host; it starts with no domains:
// a restarted agent is a rebooted host.
func New(cfg Config, env hypervisor.Env) (*Sim, error) {
	if cfg.CPUs < 0 || cfg.MemoryMiB < 0 {
		return nil, fmt.Errorf("xensim: CPUs (%d) and memory (%d MiB) must not be negative", cfg.CPUs, cfg.MemoryMiB)
	}
	if env.Now == nil || env.Events == nil || env.Progress == nil || env.Pool == nil {
		return nil, errors.New("xensim: the environment needs a clock, an event sink, a progress registry and a pool")
	}
	h := &Sim{
		hostname:  env.Hostname,
		cpus:      int64(cfg.CPUs),
		totalMiB:  cfg.MemoryMiB,
		now:       env.Now,
		events:    env.Events,
		progress:  env.Progress,
		pool:      env.Pool,
		domains:   map[string]*domain{},
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

// FreeMemoryMiB is the memory left for new domains.
func (h *Sim) FreeMemoryMiB() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.freeLocked()
}

// freeLocked is total - Domain-0 - the memory of domains that hold it
// (running, blocked or paused) - the memory reserved for incoming
// migrations. h.mu must be held.
func (h *Sim) freeLocked() int64 {
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

// Hypervisor says the domains are simulated; there is no version.
func (h *Sim) Hypervisor() (kind, version string) { return hypervisor.TypeSimulated, "" }

// Hardware answers discover_hardware: one socket with a core per
// configured CPU.
func (h *Sim) Hardware() (agentapi.Hardware, error) {
	return agentapi.Hardware{
		Manufacturer:   "Xen Simulator",
		Product:        "Simulated Server",
		CPUModel:       "Simulated x86-64 CPU",
		CPUSockets:     1,
		CoresPerSocket: h.cpus,
		ThreadsPerCore: 1,
		CPUKHz:         2_400_000,
		TotalMemoryMiB: h.totalMiB,
		FreeMemoryMiB:  h.FreeMemoryMiB(),
		Dom0MemoryMiB:  h.dom0MiB,
	}, nil
}

// Reset is the host going down, as for sys_reboot or sys_shutdown: every
// domain is lost (as after a restart of the agent), incoming migrations are
// cut and their reservations released, and injected faults and console
// tickets are forgotten. Calls blocked by a hang return.
func (h *Sim) Reset() {
	h.mu.Lock()
	for key := range h.domains {
		h.removeDomainLocked(key)
	}
	h.releaseTargetsLocked()
	h.mu.Unlock()
	h.consoles.Clear()
	f := &h.faults
	f.mu.Lock()
	if f.hung != nil {
		close(f.hung)
	}
	f.hung, f.latency, f.failNext, f.dirty = nil, nil, nil, nil
	f.corruptMig, f.breakMig, f.migMiBPerS = nil, nil, 0
	f.leaseFail = false
	f.mu.Unlock()
}
