package agentapi

import (
	"fmt"
	"sort"
	"time"
)

// Method names of high availability [ext]: the leases an agent of an
// HA-enabled pool keeps in the pool's HA repository (docs/agent-protocol.md,
// "High availability: leases and fencing"). An agent serves them when its
// get_api_version lists ExtHALeases.
const (
	MethodHAConfigure    = "ha_configure"
	MethodHADisable      = "ha_disable"
	MethodHAStatus       = "ha_status"
	MethodHAReadLeases   = "ha_read_leases"
	MethodHAReadVMLeases = "ha_read_vm_leases"
)

// ExtHALeases: the agent serves the ha_* methods, keeps a server lease and
// a lease per domain in the pool's HA repository once ha_configure'd,
// fences itself (destroys every domain) when it cannot renew its lease for
// the fence timeout, and refuses start_vm and restore_vm while another
// server holds a live lease on the VM.
const ExtHALeases = "ha_leases"

// Event kinds of high availability (get_events), raised by an agent that
// lists ExtHALeases.
const (
	// EventHAFenced: the agent could not renew its server lease for the
	// fence timeout and destroyed every domain it ran; VMUUID is "".
	EventHAFenced = "ha_fenced"
	// EventVMLeaseLost: a domain was destroyed here because another
	// server holds the VM's live lease; State is "shutdown".
	EventVMLeaseLost = "vm_lease_lost"
)

// Bounds of HAParams (ha_configure's params).
const (
	MinHARenewInterval  = 100 * time.Millisecond
	MaxHAFenceTimeout   = 10 * time.Minute
	HAFenceToRenewRatio = 3 // the fence timeout is at least this many renew intervals
)

// Members of ha_configure's params struct.
const (
	HAParamRenewIntervalMS = "renew_interval_ms"
	HAParamFenceTimeoutMS  = "fence_timeout_ms"
)

// HAParams are ha_configure's params: how often the agent renews its
// leases, and after how long without a renewal a lease is no longer live
// and its holder fences itself.
type HAParams struct {
	RenewIntervalMS int64
	FenceTimeoutMS  int64
}

// RenewInterval and FenceTimeout are the params as durations.
func (p HAParams) RenewInterval() time.Duration {
	return time.Duration(p.RenewIntervalMS) * time.Millisecond
}

// FenceTimeout is the fence timeout as a duration.
func (p HAParams) FenceTimeout() time.Duration {
	return time.Duration(p.FenceTimeoutMS) * time.Millisecond
}

// Check names the first rule p breaks: renew_interval_ms at least 100,
// fence_timeout_ms at least 3 renew intervals and at most 10 minutes.
func (p HAParams) Check() error {
	switch {
	case p.RenewInterval() < MinHARenewInterval:
		return fmt.Errorf("%s must be at least %d, got %d", HAParamRenewIntervalMS, MinHARenewInterval.Milliseconds(), p.RenewIntervalMS)
	case p.FenceTimeoutMS > MaxHAFenceTimeout.Milliseconds():
		return fmt.Errorf("%s must be at most %d (10 minutes), got %d", HAParamFenceTimeoutMS, MaxHAFenceTimeout.Milliseconds(), p.FenceTimeoutMS)
	case p.FenceTimeoutMS < HAFenceToRenewRatio*p.RenewIntervalMS:
		return fmt.Errorf("%s must be at least %d times %s (%d), got %d", HAParamFenceTimeoutMS, HAFenceToRenewRatio,
			HAParamRenewIntervalMS, HAFenceToRenewRatio*p.RenewIntervalMS, p.FenceTimeoutMS)
	}
	return nil
}

// Struct is the params as they travel.
func (p HAParams) Struct() map[string]any {
	return map[string]any{HAParamRenewIntervalMS: p.RenewIntervalMS, HAParamFenceTimeoutMS: p.FenceTimeoutMS}
}

// ParseHAParams reads ha_configure's params struct as it arrived: both
// members, integers, and no other member; then Check.
func ParseHAParams(m map[string]any) (HAParams, error) {
	var p HAParams
	for _, k := range sortedKeys(m) {
		var dst *int64
		switch k {
		case HAParamRenewIntervalMS:
			dst = &p.RenewIntervalMS
		case HAParamFenceTimeoutMS:
			dst = &p.FenceTimeoutMS
		default:
			return HAParams{}, fmt.Errorf("params has an unknown member %q (known: %s, %s)", truncated(k), HAParamRenewIntervalMS, HAParamFenceTimeoutMS)
		}
		n, err := ToInt(m[k])
		if err != nil {
			return HAParams{}, fmt.Errorf("params.%s must be an integer (milliseconds): %w", k, err)
		}
		*dst = n
	}
	for _, k := range []string{HAParamRenewIntervalMS, HAParamFenceTimeoutMS} {
		if _, ok := m[k]; !ok {
			return HAParams{}, fmt.Errorf("params.%s is missing (an integer, milliseconds)", k)
		}
	}
	if err := p.Check(); err != nil {
		return HAParams{}, err
	}
	return p, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// truncated shortens a name a caller sent for a message.
func truncated(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// HAStatus is the result of ha_status.
type HAStatus struct {
	Enabled         bool   `xmlrpc:"enabled"`
	PoolUUID        string `xmlrpc:"pool_uuid"`
	RepoUUID        string `xmlrpc:"repo_uuid"`
	ServerID        string `xmlrpc:"server_id"`
	RenewIntervalMS int64  `xmlrpc:"renew_interval_ms"`
	FenceTimeoutMS  int64  `xmlrpc:"fence_timeout_ms"`
	// LastRenewalAgeMS is the time since the last fully successful
	// renewal, on the agent's monotonic clock; -1 when there was none.
	LastRenewalAgeMS int64 `xmlrpc:"last_renewal_age_ms"`
	// Fenced is true from a fence until the next successful renewal.
	Fenced      bool  `xmlrpc:"fenced"`
	FencedCount int64 `xmlrpc:"fenced_count"`
	// LastFenceUnix is the agent's wall clock at the last fence, 0 when
	// none.
	LastFenceUnix int64 `xmlrpc:"last_fence_unix"`
	// LastError is why the last renewal failed, "" when it succeeded.
	LastError string `xmlrpc:"last_error"`
}

// ServerLease is one element of ha_read_leases: a server's lease as the
// agent asked read it.
type ServerLease struct {
	ServerID      string `xmlrpc:"server_id"`
	Found         bool   `xmlrpc:"found"`
	Hostname      string `xmlrpc:"hostname"`
	RenewedUnixMS int64  `xmlrpc:"renewed_unix_ms"`
	// AgeMS is the reading agent's wall clock minus RenewedUnixMS.
	AgeMS   int64 `xmlrpc:"age_ms"`
	Counter int64 `xmlrpc:"counter"`
}

// VMLease is one element of ha_read_vm_leases.
type VMLease struct {
	VMUUID string `xmlrpc:"vm_uuid"`
	Found  bool   `xmlrpc:"found"`
	// ServerID holds the lease; "" when it was released.
	ServerID      string `xmlrpc:"server_id"`
	RenewedUnixMS int64  `xmlrpc:"renewed_unix_ms"`
	AgeMS         int64  `xmlrpc:"age_ms"`
	// Live: held, and AgeMS below the reading agent's fence timeout.
	Live bool `xmlrpc:"live"`
}
