// Package host is the agent's code shared by every hypervisor driver: the
// persistent state (identity, ownership, pool membership, roles,
// repositories), repositories and their files (virtual disks, imports of
// disks, ISOs and templates, vm.cfg), the event log and operation
// progress. It answers the protocol's calls, resolving a VM's files before
// it hands a domain operation to its hypervisor.Driver. Every method is
// safe for concurrent use and reports failures as *agentapi.Fault, ready
// to go on the wire.
package host

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"xenmanager/backend/agent/halease"
	"xenmanager/backend/agent/hypervisor"
)

// AgentVersion is the version the agent reports.
const AgentVersion = "0.1.0-xensim"

// OVMVersion is the Oracle VM Server release the agent imitates.
const OVMVersion = "3.4.6"

// Config describes the host.
type Config struct {
	DataDir  string // holds state.json and the roots of mount points; created if missing
	Hostname string
	// Now returns the current time; time.Now when nil. Tests pass a fake
	// clock to check CPU time.
	Now func() time.Time
	// Driver makes the hypervisor driver that runs the domains; required.
	Driver hypervisor.NewDriver
	// Logger receives what the host does on its own (HA leases and
	// fencing); slog.Default when nil.
	Logger *slog.Logger
}

// Host is one server as the agent sees it.
type Host struct {
	dataDir  string
	hostname string
	now      func() time.Time
	drv      hypervisor.Driver
	log      *slog.Logger
	ha       *halease.Keeper // the HA leases; see ha.go
	// haMu serialises ha_configure and ha_disable, so that state.json
	// says what the keeper does.
	haMu sync.Mutex

	// mu guards state and diskOps, and serialises this host's writes of
	// state.json, so that a check and the change it allows cannot
	// interleave with another call. It may be held while calling drv,
	// never the other way round.
	mu      sync.Mutex
	state   persistentState
	diskOps map[string]string // by diskKey(repoID, diskID): the progress key of a disk being created

	vms      vmLocks          // per-VM serialisation of files and domains; see vmlock.go
	events   eventLog         // has its own mutex; see events.go
	progress progressRegistry // has its own mutex; see progress.go
}

// New loads the host's state from cfg.DataDir, or creates it (with a new
// unique id) on first start, then makes its driver.
func New(cfg Config) (*Host, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("host: a data directory is required")
	}
	if cfg.Hostname == "" {
		return nil, errors.New("host: a hostname is required")
	}
	if cfg.Driver == nil {
		return nil, errors.New("host: a hypervisor driver is required")
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("host: data directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("host: create data directory: %w", err)
	}
	h := &Host{
		dataDir:  dir,
		hostname: cfg.Hostname,
		now:      cfg.Now,
		log:      cfg.Logger,
		diskOps:  map[string]string{},
	}
	h.events.instance = newUUID()
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.progress.now = h.now
	if err := h.loadState(); err != nil {
		return nil, err
	}
	drv, err := cfg.Driver(hypervisor.Env{Hostname: h.hostname, Now: h.now, Events: &h.events, Progress: &h.progress, Pool: poolView{h}, ResolvePath: h.ResolvePath})
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	h.drv = drv
	h.newHAKeeper()
	return h, nil
}

// Driver is the hypervisor driver that runs the domains.
func (h *Host) Driver() hypervisor.Driver { return h.drv }

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
func (h *Host) FreeMemoryMiB() int64 { return h.drv.FreeMemoryMiB() }

// Reset is the host going down, as for sys_reboot or sys_shutdown: the
// driver loses every domain, and operation progress is forgotten. The
// persistent state, the repositories and the event log stay.
func (h *Host) Reset() {
	h.drv.Reset()
	h.progress.clear()
}

// Close stops renewing the HA leases (they lapse unless the agent comes
// back in time) and ends the driver's incoming migrations; the agent calls
// it when it shuts down.
func (h *Host) Close() {
	h.ha.Close()
	h.drv.Close()
}

// poolView shows the driver the host's pool membership.
type poolView struct{ h *Host }

func (p poolView) PoolUUID() string {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	return p.h.state.PoolUUID
}

func (p poolView) PoolMembers() []string { return p.h.PoolMembers() }
