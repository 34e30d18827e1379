package backend

import (
	"strings"
	"testing"

	"xenmanager/store"
)

func TestHighestPinnedCPU(t *testing.T) {
	for _, c := range []struct {
		pinning string
		want    int64
		errHas  string
	}{
		{pinning: "", want: -1},
		{pinning: "0", want: 0},
		{pinning: "0-1,4", want: 4},
		{pinning: "60-63", want: 63},
		{pinning: "7,2-3", want: 7},
		{pinning: "abc", errHas: "is not a CPU list"},
		{pinning: "1-", errHas: "is not a CPU list"},
		{pinning: "5-3", errHas: "the range 5-3, which goes down"},
		{pinning: "0-99999999999999999999", errHas: "beyond any server's"},
	} {
		got, err := highestPinnedCPU(c.pinning)
		if c.errHas != "" {
			if KindOf(err) != KindInvalidArgument || !strings.Contains(err.Error(), c.errHas) {
				t.Errorf("highestPinnedCPU(%q) = %d, %v; want an invalid argument with %q", c.pinning, got, err, c.errHas)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("highestPinnedCPU(%q) = %d, %v; want %d", c.pinning, got, err, c.want)
		}
	}
}

func TestCheckPinningOn(t *testing.T) {
	four := store.Server{Name: "ovs1", CPUSockets: 1, CoresPerSocket: 2, ThreadsPerCore: 2}
	for _, c := range []struct {
		pinning string
		server  store.Server
		errHas  string
	}{
		{pinning: "", server: four},
		{pinning: "0-3", server: four},
		{pinning: "60-63", server: four, errHas: "cpuPinning 60-63: server ovs1 has CPUs 0-3"},
		{pinning: "0,4", server: four, errHas: "cpuPinning 0,4: server ovs1 has CPUs 0-3"},
		{pinning: "1", server: store.Server{Name: "one", CPUSockets: 1, CoresPerSocket: 1, ThreadsPerCore: 1}, errHas: "server one has CPUs 0"},
		{pinning: "60-63", server: store.Server{Name: "unknown"}}, // hardware not discovered: not judged
	} {
		err := checkPinningOn(c.pinning, c.server)
		if c.errHas == "" && err != nil || c.errHas != "" && (KindOf(err) != KindInvalidArgument || !strings.Contains(err.Error(), c.errHas)) {
			t.Errorf("checkPinningOn(%q, %s) = %v; want error with %q", c.pinning, c.server.Name, err, c.errHas)
		}
	}
}
