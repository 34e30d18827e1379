package backend

import (
	"strings"
	"testing"
	"time"

	"xenmanager/store"
)

func TestParseHADuration(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{"20", 20 * time.Second, false},
		{"2.5", 2500 * time.Millisecond, false},
		{"500ms", 500 * time.Millisecond, false},
		{"1m30s", 90 * time.Second, false},
		{" 3s ", 3 * time.Second, false},
		{"", 0, true},
		{"soon", 0, true},
		{"NaN", 0, true},
		{"1e3", 0, true},
		{"5 minutes", 0, true},
	} {
		got, err := parseHADuration("haFenceTimeout", c.in)
		if c.bad {
			if err == nil || !strings.Contains(err.Error(), "haFenceTimeout") || !strings.Contains(err.Error(), "such as 20s") {
				t.Errorf("parseHADuration(%q) = %v, %v; want an error naming the attribute and the forms", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("parseHADuration(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestHABounds(t *testing.T) {
	ok := store.PoolHA{Renew: DefaultHARenew, Fence: DefaultHAFence, Margin: DefaultHAMargin}
	for _, c := range []struct {
		name string
		edit func(*store.PoolHA)
		want string // "" when accepted
	}{
		{"defaults", func(*store.PoolHA) {}, ""},
		{"test timing", func(h *store.PoolHA) {
			h.Renew, h.Fence, h.Margin = 200*time.Millisecond, time.Second, 500*time.Millisecond
		}, ""},
		{"no margin", func(h *store.PoolHA) { h.Margin = 0 }, ""},
		{"renew too short", func(h *store.PoolHA) { h.Renew = 50 * time.Millisecond }, "haRenewInterval 50ms is out of range"},
		{"renew too long", func(h *store.PoolHA) { h.Renew, h.Fence = 2*time.Minute, 9*time.Minute }, "haRenewInterval 2m0s is out of range"},
		{"fence under three renewals", func(h *store.PoolHA) { h.Fence = 5 * time.Second }, "at least 3 renewals (6s)"},
		{"fence too long", func(h *store.PoolHA) { h.Fence = 11 * time.Minute }, "too long: at most 10m0s"},
		{"negative margin", func(h *store.PoolHA) { h.Margin = -time.Second }, "haRestartMargin -1s is out of range"},
	} {
		h := ok
		c.edit(&h)
		err := haBounds(h)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: haBounds(%+v) = %v, want nil", c.name, h, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: haBounds(%+v) = %v, want an error with %q", c.name, h, err, c.want)
		}
	}
}
