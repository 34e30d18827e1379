//go:build !windows

package prompt

// Tests of xenmanager's patch for window changes (see PATCHES.md). Not in
// go-prompt v0.2.6; each fails on its unpatched prompt.go and
// signal_posix.go.

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sizedParser is a waitParser whose window size the test changes; it
// reports each GetWinSize call on asked (at most one queued).
type sizedParser struct {
	*waitParser
	mu    sync.Mutex // guards size
	size  WinSize
	asked chan struct{}
}

func newSizedParser(cols, rows uint16) *sizedParser {
	return &sizedParser{waitParser: newWaitParser(), size: WinSize{Col: cols, Row: rows}, asked: make(chan struct{}, 1)}
}

func (p *sizedParser) GetWinSize() *WinSize {
	p.mu.Lock()
	w := p.size
	p.mu.Unlock()
	select {
	case p.asked <- struct{}{}:
	default:
	}
	return &w
}

func (p *sizedParser) resize(cols, rows uint16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.size = WinSize{Col: cols, Row: rows}
}

// TestSignalHandlerStopsWhileSendingWinSize checks that a window change
// whose size nobody reads yet does not keep the signal handler from
// stopping: Run stops it (a blocking send on stop) when Enter is pressed,
// and upstream's handler, blocked sending the size, never received that
// stop: the prompt froze.
func TestSignalHandlerStopsWhileSendingWinSize(t *testing.T) {
	in := newSizedParser(80, 24)
	p := &Prompt{in: in}
	t.Cleanup(func() { signal.Reset(syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGWINCH) })
	exitCh, winSizeCh, stop, done := make(chan int), make(chan *WinSize), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		p.handleSignals(exitCh, winSizeCh, stop)
	}()

	// The handler hears SIGWINCH once it has called signal.Notify: signal
	// until it asks the size it is then about to send (a bounded poll).
	deadline := time.Now().Add(10 * time.Second)
	for asked := false; !asked; {
		if time.Now().After(deadline) {
			t.Fatal("the handler never read the window size after SIGWINCH")
		}
		syscall.Kill(os.Getpid(), syscall.SIGWINCH)
		select {
		case <-in.asked:
			asked = true
		case <-time.After(10 * time.Millisecond):
		}
	}

	select {
	case stop <- struct{}{}:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler, sending a window size nobody reads, does not take stop: Run would deadlock")
	}
	<-done
}

// TestRunReadsTheWindowAfterTheExecutor checks that a window change made
// while the executor ran (when no signal handler listens) is what the
// prompt is drawn for afterwards; upstream kept the old size until the
// next SIGWINCH.
func TestRunReadsTheWindowAfterTheExecutor(t *testing.T) {
	in := newSizedParser(80, 24)
	seen := make(chan WinSize, 2)
	p := &Prompt{
		in: in,
		renderer: &Render{
			prefix:             "> ",
			out:                &discardWriter{},
			livePrefixCallback: func() (string, bool) { return "", false },
		},
		buf:         NewBuffer(),
		history:     NewHistory(),
		completion:  NewCompletionManager(func(Document) []Suggest { return nil }, 6),
		keyBindMode: EmacsKeyBind,
	}
	// The executor runs in Run's goroutine, which owns the renderer: it
	// reports the size the prompt was drawn for, then the window changes.
	p.executor = func(string) {
		seen <- WinSize{Col: p.renderer.col, Row: p.renderer.row}
		in.resize(132, 50)
	}
	t.Cleanup(func() { signal.Reset(syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGWINCH) })
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run()
	}()
	for _, key := range []string{"a", "\r", "b", "\r"} {
		<-in.waits
		in.keys <- []byte(key)
	}
	if w := <-seen; w != (WinSize{Col: 80, Row: 24}) {
		t.Fatalf("first command: drawn for %+v, want 80x24", w)
	}
	if w := <-seen; w != (WinSize{Col: 132, Row: 50}) {
		t.Fatalf("after a window change during a command: drawn for %+v, want 132x50", w)
	}
	<-in.waits
	in.keys <- []byte{0x4} // Ctrl-D on an empty line: Run returns
	<-done
}
