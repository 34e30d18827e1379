// Package testkit holds the small helpers the agent's tests share (the
// shared host code's, the simulated driver's and the XML-RPC layer's), so
// that each package's tests do not keep a copy.
package testkit

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"xenmanager/backend/agentapi"
)

// Clock is a settable clock, for checks of CPU time, uptime and
// timestamps.
type Clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

// NewClock returns a clock that says t until advanced.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// WaitFor spins (yielding, not sleeping) until cond holds, failing after a
// generous deadline.
func WaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

// WantFault fails unless err is a fault of code whose message contains sub.
func WantFault(t *testing.T, err error, code agentapi.FaultCode, sub string) {
	t.Helper()
	f, ok := agentapi.AsFault(err)
	if !ok {
		t.Fatalf("err = %v, want a %s fault", err, code.Kind())
	}
	if f.Code != code || !strings.Contains(f.Message, sub) {
		t.Fatalf("fault = %v, want %s containing %q", f, code.Kind(), sub)
	}
}

// MustOK fails the test on err.
func MustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// HostConfig is a host on the simulated driver, as the tests of the shared
// host code and of the driver describe it.
type HostConfig struct {
	DataDir   string // a temporary directory when empty
	Hostname  string // "xen1" when empty
	CPUs      int
	MemoryMiB int64
	Now       func() time.Time
}

// WithDefaults fills the empty fields that have a default.
func (c HostConfig) WithDefaults(t *testing.T) HostConfig {
	if c.DataDir == "" {
		c.DataDir = t.TempDir()
	}
	if c.Hostname == "" {
		c.Hostname = "xen1"
	}
	return c
}

// Must returns v, panicking when err is not nil: for the calls a test
// expects to succeed whose result it uses inline, Must(h.ListVMs()).
func Must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
