//go:build !windows

package prompt

// Tests of xenmanager's patch (see PATCHES.md): an idle prompt does not
// poll. Not in go-prompt v0.2.6; each test fails on its unpatched prompt.go.
// They use no timing: they count the parser's Reads and look at the state
// of Run's goroutine, so a slow machine cannot make them pass or fail.

import (
	"bytes"
	"errors"
	"os/signal"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// errNoInput is what the fake parsers' Read returns when no key is typed, as
// upstream's non-blocking read of an idle terminal returns nothing.
var errNoInput = errors.New("no input")

// waitParser is a ConsoleParser that implements Waiter, as xenmanager's
// front-end does: Wait blocks until the test types a key (true) or stop
// receives a value (false). It counts Reads, and reports on early a Read
// made while no key is ready: that is a poll.
type waitParser struct {
	waits   chan struct{} // a value each time Wait starts blocking
	keys    chan []byte   // a key typed: Wait returns true, the next Read returns it
	early   chan struct{} // a value (at most one queued) for each Read with no key ready
	reads   atomic.Int32
	pending []byte // the key Wait let through; only readBuffer's goroutine uses it
}

func newWaitParser() *waitParser {
	return &waitParser{
		waits: make(chan struct{}, 16),
		keys:  make(chan []byte),
		early: make(chan struct{}, 1),
	}
}

func (p *waitParser) Wait(stop chan struct{}) bool {
	p.waits <- struct{}{}
	select {
	case b := <-p.keys:
		p.pending = b
		return true
	case <-stop:
		return false
	}
}

func (p *waitParser) Read() ([]byte, error) {
	p.reads.Add(1)
	if p.pending == nil {
		select {
		case p.early <- struct{}{}:
		default:
		}
		return nil, errNoInput
	}
	b := p.pending
	p.pending = nil
	return b, nil
}

func (p *waitParser) Setup() error         { return nil }
func (p *waitParser) TearDown() error      { return nil }
func (p *waitParser) GetWinSize() *WinSize { return &WinSize{Row: 24, Col: 80} }

// TestReadBufferBlocksInWait checks that with a Waiter readBuffer reads
// only after Wait said input is ready: no Read while the prompt is idle,
// one per key, and a value on stop ends it from inside Wait. Upstream's
// readBuffer ignores Wait and reads every 10 ms.
func TestReadBufferBlocksInWait(t *testing.T) {
	in := newWaitParser()
	p := &Prompt{in: in}
	bufCh, stop, done := make(chan []byte, 128), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		p.readBuffer(bufCh, stop)
	}()
	t.Cleanup(func() {
		close(stop) // ends it however far the test got
		<-done
	})

	select {
	case <-in.waits:
	case <-in.early:
		t.Fatal("readBuffer read with no input ready: it polls instead of waiting")
	}
	if n := in.reads.Load(); n != 0 {
		t.Fatalf("%d Reads while idle, want 0", n)
	}

	in.keys <- []byte("a")
	if b := <-bufCh; string(b) != "a" {
		t.Fatalf("readBuffer sent %q, want %q", b, "a")
	}
	<-in.waits // idle again
	if n := in.reads.Load(); n != 1 {
		t.Fatalf("%d Reads for one key, want 1", n)
	}

	stop <- struct{}{} // Wait receives it
	<-done
	if n := in.reads.Load(); n != 1 {
		t.Fatalf("%d Reads after stop, want 1", n)
	}
}

// pollParser is a ConsoleParser without Wait: Read returns a queued key, or
// errNoInput and a value on idle.
type pollParser struct {
	keys chan []byte
	idle chan struct{}
}

func (p *pollParser) Read() ([]byte, error) {
	select {
	case b := <-p.keys:
		return b, nil
	default:
		select {
		case p.idle <- struct{}{}:
		default:
		}
		return nil, errNoInput
	}
}

func (p *pollParser) Setup() error         { return nil }
func (p *pollParser) TearDown() error      { return nil }
func (p *pollParser) GetWinSize() *WinSize { return &WinSize{Row: 24, Col: 80} }

// TestReadBufferWithoutWaiterPolls checks that a parser without Wait is read
// as upstream reads it: input is delivered, and the reader reads again while
// nothing is typed.
func TestReadBufferWithoutWaiterPolls(t *testing.T) {
	in := &pollParser{keys: make(chan []byte, 1), idle: make(chan struct{}, 1)}
	in.keys <- []byte("a")
	p := &Prompt{in: in}
	bufCh, stop, done := make(chan []byte, 128), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		p.readBuffer(bufCh, stop)
	}()
	if b := <-bufCh; string(b) != "a" {
		t.Fatalf("readBuffer sent %q, want %q", b, "a")
	}
	<-in.idle
	<-in.idle // read again with nothing typed: it polls
	close(stop)
	<-done
}

// discardWriter is a ConsoleWriter that drops what the prompt renders.
type discardWriter struct{ VT100Writer }

func (w *discardWriter) Flush() error {
	w.buffer = w.buffer[:0]
	return nil
}

// TestRunBlocksWhileIdle checks that Run's loop, with nothing typed, is
// parked in its select: upstream's loop has a default branch that sleeps
// 10 ms, so its goroutine is found asleep and never blocked in the select.
// Then it checks that the prompt still answers a key (Ctrl-D ends it).
func TestRunBlocksWhileIdle(t *testing.T) {
	in := newWaitParser()
	// Not New: it opens the terminal, which a test may not have.
	p := &Prompt{
		in: in,
		renderer: &Render{
			prefix:             "> ",
			out:                &discardWriter{},
			livePrefixCallback: func() (string, bool) { return "", false },
		},
		buf:         NewBuffer(),
		executor:    func(string) {},
		history:     NewHistory(),
		completion:  NewCompletionManager(func(Document) []Suggest { return nil }, 6),
		keyBindMode: EmacsKeyBind,
	}
	// Run's signal handler calls signal.Notify and never signal.Stop (it
	// expects to own the process); give the test binary its signals back.
	t.Cleanup(func() { signal.Reset(syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGWINCH) })
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run()
	}()

	select { // readBuffer has started
	case <-in.waits:
	case <-in.early:
	}
	for {
		state, ok := goroutineState("goprompt.(*Prompt).Run(")
		if ok && state == "select" {
			break
		}
		if ok && state == "sleep" {
			t.Fatal("Run's goroutine sleeps while the prompt is idle: its loop polls")
		}
		select {
		case <-done:
			t.Fatal("Run returned with nothing typed")
		default:
		}
		runtime.Gosched()
	}
	if n := in.reads.Load(); n != 0 {
		t.Fatalf("%d Reads while idle, want 0", n)
	}

	in.keys <- []byte{0x4} // Ctrl-D on an empty line: Run returns
	<-done
	if n := in.reads.Load(); n != 1 {
		t.Fatalf("%d Reads for one key, want 1", n)
	}
}

// goroutineState returns the state ("select", "sleep", "running"...) of the
// goroutine whose stack has a frame containing fn, from runtime.Stack.
func goroutineState(fn string) (string, bool) {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		header, frames, _ := strings.Cut(string(g), "\n")
		if !strings.Contains(frames, fn) {
			continue
		}
		// header: "goroutine 7 [select]:" or "goroutine 7 [select, 2 minutes]:"
		_, state, ok := strings.Cut(header, "[")
		if !ok {
			continue
		}
		state, _, _ = strings.Cut(state, "]")
		state, _, _ = strings.Cut(state, ",")
		return state, true
	}
	return "", false
}
