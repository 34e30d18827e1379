package backend

import (
	"context"
	"testing"

	"xenmanager/store"
)

// TestCapacityCountsAStartOnce: a read of a server's capacity that a start
// of the manager's overlaps may or may not show the start; its values are
// then not taken over the adjusted ones, so that the start is counted once
// (by adjust), however the agent ordered the read and the start. A quiet
// read is taken as it comes.
func TestCapacityCountsAStartOnce(t *testing.T) {
	const start = 1024 // MiB a start takes
	tests := []struct {
		name string
		// during runs while the read is under way; busy is whether starts
		// are in flight when it begins.
		busy   bool
		during func(cp *capacity)
		// agentFree is what the agent answers; after runs once the read
		// has ended.
		agentFree int64
		after     func(cp *capacity)
		want      int64
	}{
		{name: "a quiet read is taken", agentFree: 9000, want: 9000},
		{name: "a start decided and made while reading, the read shows it",
			during: func(cp *capacity) { cp.decided("s1") }, agentFree: 10000 - start,
			after: func(cp *capacity) { cp.adjust("s1", -start) }, want: 10000 - start},
		{name: "a start decided and made while reading, the read does not show it",
			during: func(cp *capacity) { cp.decided("s1") }, agentFree: 10000,
			after: func(cp *capacity) { cp.adjust("s1", -start) }, want: 10000 - start},
		{name: "a start in flight when the read began",
			busy: true, agentFree: 10000 - start,
			after: func(cp *capacity) { cp.adjust("s1", -start) }, want: 10000 - start},
		{name: "a start made while reading is adjusted on the values kept",
			during: func(cp *capacity) { cp.adjust("s1", -start) }, agentFree: 10000 - start, want: 10000 - start},
		{name: "a stop made while reading",
			during: func(cp *capacity) { cp.adjust("s1", start) }, agentFree: 10000 + start, want: 10000 + start},
		{name: "forgotten while reading: the read is taken",
			during: func(cp *capacity) { cp.decided("s1"); cp.forget("s1") }, agentFree: 7000, want: 7000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp := &capacity{}
			ctx := context.Background()
			// A first, quiet read: 10000 MiB free.
			if free, _, _, err := cp.get(ctx, "s1", fixedReading(10000), func() bool { return false }); err != nil || free != 10000 {
				t.Fatalf("first read = %d, %v", free, err)
			}
			cp.byServer["s1"].at = cp.byServer["s1"].at.Add(-2 * capacityTTL) // stale: the next get reads
			read := func(ctx context.Context) (int64, int64, int, error) {
				if tt.during != nil {
					tt.during(cp) // the read is under way: the entry is being read
				}
				return tt.agentFree, 8, 0, nil
			}
			if _, _, _, err := cp.get(ctx, "s1", read, func() bool { return tt.busy }); err != nil {
				t.Fatal(err)
			}
			if tt.after != nil {
				tt.after(cp)
			}
			ok := []bool{false}
			cs := []choice{{server: &store.Server{ID: "s1"}}}
			if stale := cp.cached(cs, ok); stale != 0 {
				t.Fatalf("the server's capacity is not current after the read")
			}
			if cs[0].freeMiB != tt.want {
				t.Errorf("free = %d MiB, want %d", cs[0].freeMiB, tt.want)
			}
		})
	}
}

// fixedReading answers free MiB and 8 threads.
func fixedReading(free int64) capacityReading {
	return func(context.Context) (int64, int64, int, error) { return free, 8, 0, nil }
}
