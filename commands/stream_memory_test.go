//go:build !race

package commands

import (
	"context"
	"errors"
	"iter"
	"runtime"
	"runtime/debug"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
)

// The race detector makes the store's 100,000 reads and writes of this
// test take minutes and measures its own heap: the test runs without it
// (the spill's goroutines are raced by TestListingSlowClientSpills and
// stream_test.go).

// TestListingMemoryIsFlat: list Event over 100,000 events, read through
// the real store to a client that reads nothing until the listing has
// been read, grows the heap by a bounded amount, not by the rows (as
// TestStreamMemoryIsFlat for list Vm's rows).
func TestListingMemoryIsFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 events")
	}
	c := managertest.Open(t, managertest.Options{})
	const n = 100000
	seedEvents(t, c.Store, n)
	ctx := backend.WithActor(context.Background(), admin)
	l, err := c.Manager.StreamEvents(ctx, false, n)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	res := streamedRows(l, func(backend.Event) bool { return true }, eventRow)
	stream := res.Stream
	res.Stream = func(ctx context.Context) iter.Seq2[Row, error] {
		return func(yield func(Row, error) bool) {
			defer close(done)
			stream(ctx)(yield)
		}
	}
	rep := &Report{Command: "list Event", Time: goldenTime, Result: res}
	w := &blockedWriter{release: make(chan struct{})}
	// Garbage is collected sooner than by default, so that the heap
	// measures what the listing holds rather than when the collector ran.
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	peakHeap := sampleHeapPeak()
	finished := make(chan error, 1)
	go func() {
		lerr, werr := writeStream(context.Background(), w, Format{Mode: ModeJSON}, rep)
		finished <- errors.Join(lerr, werr)
	}()
	<-done
	peak := peakHeap()
	close(w.release)
	if err := <-finished; err != nil {
		t.Fatal(err)
	}
	growth := int64(peak) - int64(before.HeapInuse)
	if got := w.n.Load(); got < int64(n)*400 {
		t.Fatalf("the client got %d bytes for %d events", got, n)
	}
	const bound = 16 << 20
	if growth > bound {
		t.Fatalf("the heap grew by %d MB listing %d events (%d MB of Json), want under %d MB", growth>>20, n, w.n.Load()>>20, bound>>20)
	}
	t.Logf("heap growth while listing %d events (%d MB of Json): %.1f MB", n, w.n.Load()>>20, float64(growth)/(1<<20))
}
