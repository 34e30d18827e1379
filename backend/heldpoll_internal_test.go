package backend

import (
	"testing"
	"time"
)

// TestHeldWaitAndBound: a held call's wait ends at the next multiple of
// the interval, at most one interval and the protocol's 30 s away, at
// least a millisecond; its bound is two intervals after the server's last
// answer, so that a silent agent misses its first beat no later than in
// the rounds, and at least the wait and half an interval.
func TestHeldWaitAndBound(t *testing.T) {
	const i = 5 * time.Second
	base := time.Unix(1_700_000_000, 0).Truncate(i) // a multiple of the interval
	tests := []struct {
		name      string
		interval  time.Duration
		now       time.Time
		wantWait  time.Duration
		last      time.Time // the last answer, for the bound
		wantBound time.Duration
	}{
		{"at a multiple: a whole interval", i, base, i, base, 2 * i},
		{"just after one", i, base.Add(time.Millisecond), i - time.Millisecond, base, 2*i - time.Millisecond},
		{"mid-interval, after an event", i, base.Add(2 * time.Second), 3 * time.Second, base.Add(2 * time.Second), 2 * i},
		{"a nanosecond before one: a millisecond", i, base.Add(i - 1), time.Millisecond, base.Add(i - 1), 2 * i},
		{"the last answer long ago: the wait and half an interval", i, base, i, base.Add(-time.Hour), i + i/2},
		{"a long interval: the protocol's bound", time.Hour, time.Unix(1_700_000_000, 0).Truncate(time.Hour), 30 * time.Second,
			time.Unix(1_700_000_000, 0).Truncate(time.Hour), 2 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wait := heldWaitFor(tt.now, tt.interval)
			if wait != tt.wantWait {
				t.Errorf("wait = %s, want %s", wait, tt.wantWait)
			}
			if b := heldBound(tt.last, tt.now, wait, tt.interval); b != tt.wantBound {
				t.Errorf("bound = %s, want %s", b, tt.wantBound)
			}
		})
	}
}
