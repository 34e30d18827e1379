package prompt

import (
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// ttyParser reads a pty's slave side without blocking and counts its Reads.
type ttyParser struct {
	fakeParser
	fd    int
	reads atomic.Int64
}

func (p *ttyParser) Setup() error    { return nil }
func (p *ttyParser) TearDown() error { return nil }

func (p *ttyParser) Read() ([]byte, error) {
	p.reads.Add(1)
	buf := make([]byte, 64)
	n, err := unix.Read(p.fd, buf)
	if err != nil || n <= 0 {
		return []byte{}, nil
	}
	return buf[:n], nil
}

// waitFDsOn is openWaitFDs on the terminal fd (a test has no /dev/tty).
func waitFDsOn(t *testing.T, fd int) *waitFDs {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	return &waitFDs{tty: fd, wakeR: p[0], wakeW: p[1]}
}

// watcherWaiting reports whether the key watcher's goroutine is blocked in
// waitFDs.wait (rather than, say, ticking).
func watcherWaiting() bool {
	buf := make([]byte, 1<<20)
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "watchKeys.func") && strings.Contains(g, "(*waitFDs).wait(") {
			return true
		}
	}
	return false
}

// While a command runs, the key watcher blocks until a key comes (one Read
// per key, no polling every 10 ms), on a wake-up pipe of its own: a reader
// go-prompt stopped but that still waits on the parser's pipe cannot take
// the wake-up that ends the watch.
func TestKeyWatcherWaitsForKeys(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	fd := int(slave.Fd())
	if _, err := term.MakeRaw(fd); err != nil { // keys one by one, as go-prompt sets it
		t.Fatal(err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	parser := &ttyParser{fd: fd}

	fe := &frontEnd{parser: &keyParser{ConsoleParser: parser, wait: waitFDsOn(t, fd)}, watchWait: waitFDsOn(t, fd)}

	// A reader of go-prompt's, waiting on the parser's pipe again and
	// again: were the watcher's pipe the same, it could drain the wake-up
	// that stops the watcher, which then never returns.
	stale, staleDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(staleDone)
		for fe.parser.wait.wait(stale) {
		}
	}()
	defer func() {
		close(stale)
		select {
		case <-staleDone:
		case <-time.After(20 * time.Second):
			t.Error("the reader did not stop")
		}
	}()

	deadline := time.Now().Add(20 * time.Second)
	watch := func() *keyWatcher {
		t.Helper()
		w := fe.watchKeys()
		for !watcherWaiting() {
			if time.Now().After(deadline) {
				t.Fatal("the key watcher never waited on the terminal")
			}
			time.Sleep(time.Millisecond)
		}
		return w
	}
	stop := func(w *keyWatcher) {
		t.Helper()
		stopped := make(chan struct{})
		go func() { w.stop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(20 * time.Second):
			t.Fatal("the key watcher did not stop")
		}
	}

	w := watch()
	typed := func(want string) {
		t.Helper()
		for {
			w.mu.Lock()
			got := string(w.typeAhead)
			w.mu.Unlock()
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("typed ahead %q, want %q", got, want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	master.Write([]byte("x"))
	typed("x")
	master.Write([]byte("y"))
	typed("xy")
	stop(w)
	if n := parser.reads.Load(); n != 2 {
		t.Fatalf("%d reads of the terminal for 2 keys, want 2: the watcher polls", n)
	}
	if string(fe.parser.pending) != "xy" {
		t.Fatalf("keys typed ahead handed to the prompt: %q, want %q", fe.parser.pending, "xy")
	}
	// Command after command, the watch ends every time.
	for range 50 {
		stop(watch())
	}
}
