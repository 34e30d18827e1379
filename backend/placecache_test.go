package backend

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

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
			cp.byServer["s1"].at = cp.byServer["s1"].at.Add(-2 * capacityStale) // too old to use: the next get reads
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
			if stale, _ := cp.cached(cs, ok, noReading(t), func(int) bool { return false }); stale != 0 {
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

// noReading is cached's read for a test in which every value is current:
// it fails the test when called.
func noReading(t *testing.T) func(int) capacityReading {
	return func(int) capacityReading {
		t.Error("a current capacity was read again")
		return fixedReading(0)
	}
}

// TestCapacityReadsBehindWhenOld: values older than capacityTTL but
// younger than capacityStale still place VMs at once while the server is
// read again in the background, once however many placements use them
// meanwhile; the read's values are used from its end on. Values older
// than capacityStale, or whose read failed, are not used: the caller reads.
func TestCapacityReadsBehindWhenOld(t *testing.T) {
	cp := &capacity{}
	ctx := context.Background()
	if _, _, _, err := cp.get(ctx, "s1", fixedReading(10000), func() bool { return false }); err != nil {
		t.Fatal(err)
	}
	age := func(d time.Duration) {
		cp.mu.Lock()
		cp.byServer["s1"].at = time.Now().Add(-d)
		cp.mu.Unlock()
	}
	look := func(read capacityReading) (free int64, stale int) {
		cs := []choice{{server: &store.Server{ID: "s1"}}}
		stale, _ = cp.cached(cs, []bool{false}, func(int) capacityReading { return read }, func(int) bool { return false })
		return cs[0].freeMiB, stale
	}
	reading := func() chan struct{} {
		cp.mu.Lock()
		defer cp.mu.Unlock()
		return cp.byServer["s1"].reading
	}

	age(capacityTTL + time.Second)
	var reads atomic.Int32
	release := make(chan struct{})
	slow := func(context.Context) (int64, int64, int, error) {
		reads.Add(1)
		<-release
		return 6000, 8, 0, nil
	}
	for range 3 {
		if free, stale := look(slow); stale != 0 || free != 10000 {
			t.Fatalf("an old capacity while read behind: %d MiB, %d stale; want the old 10000 MiB at once", free, stale)
		}
	}
	done := reading()
	if done == nil {
		t.Fatal("no read behind was started")
	}
	close(release)
	<-done
	if n := reads.Load(); n != 1 {
		t.Fatalf("%d reads behind for three placements, want 1", n)
	}
	if free, stale := look(nil); stale != 0 || free != 6000 {
		t.Fatalf("after the read behind: %d MiB, %d stale; want its 6000 MiB", free, stale)
	}

	age(capacityStale + time.Second)
	if _, stale := look(nil); stale != 1 {
		t.Fatalf("a capacity older than capacityStale was used")
	}

	age(capacityTTL + time.Second)
	gate := make(chan struct{})
	failing := func(context.Context) (int64, int64, int, error) {
		<-gate
		return 0, 0, 0, errors.New("agent gone")
	}
	look(failing)
	if done = reading(); done == nil {
		t.Fatal("no read behind was started")
	}
	close(gate)
	<-done
	if _, stale := look(nil); stale != 1 {
		t.Fatalf("a capacity whose read behind failed was used")
	}
}
