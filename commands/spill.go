package commands

import (
	"bufio"
	"errors"
	"io"
	"os"
	"sync"
	"time"
)

// spillWriter stands between a streamed listing and the session's output,
// so that a client that reads slowly never keeps the listing's read
// transaction open: writes are queued in memory (at most spillQueue
// chunks) for a goroutine that sends them to the client; once a write
// finds the queue full for longer than spillWait, the client is behind,
// and that write and every later one go to a temporary file instead,
// which Close sends after the queue. The listing thus reads its rows at
// the speed of the store whatever the client does, and the manager's
// memory stays bounded by the queue, whatever the number of rows.
//
// The file is made in TMPDIR (os.TempDir) and removed as soon as it is
// made: only its open descriptor keeps it, so it never outlives the
// manager.
type spillWriter struct {
	out   io.Writer
	wait  time.Duration
	queue chan []byte   // chunks for the sender, in order; closed by Close
	free  chan []byte   // chunk buffers the sender has sent, for reuse
	sent  chan struct{} // closed when the sender has taken every chunk
	file  *os.File      // the spill once the client fell behind; nil before
	// spilled counts the bytes written to the file, for the log.
	spilled int64

	mu       sync.Mutex // guards err and panicked
	err      error      // the first error of the output or the file; writes stop after it
	panicked any        // what a Write of the output panicked with; Close panics with it
}

// spillQueue is how many chunks of spillChunk bytes the queue holds
// (1 MiB): more than an SSH channel's window, so that a client that keeps
// up never makes a listing spill.
const (
	spillQueue = 16
	spillChunk = 64 << 10
)

// spillWait is how long a write waits for room in the queue before it
// decides the client is behind; the bound on the time a stalled client
// adds to a listing's read transaction.
const spillWait = 20 * time.Millisecond

func newSpillWriter(out io.Writer, wait time.Duration) *spillWriter {
	w := &spillWriter{out: out, wait: wait, queue: make(chan []byte, spillQueue), free: make(chan []byte, spillQueue),
		sent: make(chan struct{})}
	go w.send()
	return w
}

// send writes the queued chunks to the output in order; after a failed
// write it takes the rest without writing them, so that the listing
// never waits on a client that is gone.
func (w *spillWriter) send() {
	defer close(w.sent)
	for c := range w.queue {
		if w.failed() == nil {
			w.sendOne(c)
		}
		select {
		case w.free <- c[:0]:
		default:
		}
	}
}

// sendOne writes one chunk. A panic of the output (a fault of the
// session's writer) is not this goroutine's to end the manager with: it is
// kept, and Close raises it again in the session's goroutine, whose guard
// handles it as it always has.
func (w *spillWriter) sendOne(c []byte) {
	defer func() {
		if r := recover(); r != nil {
			w.mu.Lock()
			w.panicked = r
			w.mu.Unlock()
			w.fail(errors.New("the session's output failed"))
		}
	}()
	if _, err := w.out.Write(c); err != nil {
		w.fail(err)
	}
}

func (w *spillWriter) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

func (w *spillWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Write queues p, or writes it to the spill file once the client is
// behind. It fails once the output has failed (the client left), so that
// the listing stops reading.
func (w *spillWriter) Write(p []byte) (int, error) {
	if err := w.failed(); err != nil {
		return 0, err
	}
	if w.file != nil {
		n, err := w.file.Write(p)
		w.spilled += int64(n)
		if err != nil {
			w.fail(err)
		}
		return n, err
	}
	var c []byte
	select {
	case c = <-w.free:
	default:
		c = make([]byte, 0, max(len(p), spillChunk))
	}
	c = append(c, p...)
	select {
	case w.queue <- c:
		return len(p), nil
	default:
	}
	t := time.NewTimer(w.wait)
	defer t.Stop()
	select {
	case w.queue <- c:
		return len(p), nil
	case <-t.C:
	}
	f, err := os.CreateTemp("", "xenmanager-listing-*")
	if err != nil {
		err = errors.New("spill a listing the client reads slowly: " + err.Error())
		w.fail(err)
		return 0, err
	}
	os.Remove(f.Name()) // the descriptor keeps it until Close
	w.file = f
	return w.Write(p)
}

// Close sends what is queued, then the spill file, to the output, waiting
// for the client as long as it takes (no transaction is open any more),
// and returns the first error of the output or the file.
func (w *spillWriter) Close() error {
	close(w.queue)
	<-w.sent
	w.mu.Lock()
	p := w.panicked
	w.mu.Unlock()
	if p != nil {
		if w.file != nil {
			w.file.Close()
		}
		panic(p)
	}
	if w.file == nil {
		return w.failed()
	}
	defer w.file.Close()
	if err := w.failed(); err != nil {
		return err
	}
	if _, err := w.file.Seek(0, io.SeekStart); err != nil {
		return err
	}
	// Through a buffer of the queue's chunk size: the channel gets the
	// same large writes as before the spill.
	_, err := io.Copy(w.out, bufio.NewReaderSize(w.file, spillChunk))
	return err
}
