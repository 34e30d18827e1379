// Package prompt is the front-end of an interactive session: it runs in a
// child process whose controlling terminal is the session's pseudo-terminal
// (go-prompt wants one: it opens /dev/tty, installs signal handlers and
// exits the process on some of them). It edits lines with live completion
// and draws what the manager sends; commands run in the manager, reached
// through the socket the process inherits (termproto).
package prompt

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	goprompt "xenmanager/shell/prompt/third_party/goprompt"

	"xenmanager/shell/termproto"
)

// SocketFD is the descriptor of the inherited socket (the first of
// exec.Cmd.ExtraFiles).
const SocketFD = 3

// Main runs the front-end on the inherited socket and returns the process's
// exit status.
func Main() int {
	f := os.NewFile(SocketFD, "manager")
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "xenmanager prompt: no manager socket:", err)
		return 2
	}
	defer conn.Close()
	fe := &frontEnd{conn: termproto.NewConn(conn), replies: make(chan termproto.Msg, 16), out: os.Stdout}
	go fe.readLoop()
	if err := fe.conn.Send(termproto.Msg{Op: termproto.OpHello}); err != nil {
		return 2
	}
	hello, ok := <-fe.replies
	if !ok || hello.Op != termproto.OpHello {
		return 2
	}
	prefix := hello.Prompt
	if prefix == "" {
		prefix = "OVM> "
	}
	fe.parser = &keyParser{ConsoleParser: goprompt.NewStandardInputParser()}
	if w, err := openWaitFDs(); err == nil {
		fe.parser.wait = w
	}
	if w, err := openWaitFDs(); err == nil {
		fe.watchWait = w
	}
	p := goprompt.New(fe.execute, fe.complete,
		goprompt.OptionPrefix(prefix),
		goprompt.OptionPrefixTextColor(goprompt.DefaultColor),
		goprompt.OptionHistory(hello.History),
		goprompt.OptionParser(fe.parser),
		goprompt.OptionTitle("xenmanager"),
		goprompt.OptionMaxSuggestion(8),
		goprompt.OptionCompletionWordSeparator(" ="),
		goprompt.OptionSetExitCheckerOnInput(func(string, bool) bool { return fe.exited }),
	)
	p.Run()
	return 0
}

// frontEnd is the state of the front-end process.
type frontEnd struct {
	conn    *termproto.Conn
	replies chan termproto.Msg // every message from the manager, in order
	out     io.Writer
	parser  *keyParser
	// watchWait lets the key watcher of a running command block until a
	// key comes; nil: it polls every 10 ms.
	watchWait *waitFDs
	exited    bool // the manager said the session ends
}

// readLoop hands every message from the manager to replies; it closes
// replies when the manager goes away, which ends the process.
func (fe *frontEnd) readLoop() {
	for {
		m, err := fe.conn.Recv()
		if err != nil {
			close(fe.replies)
			return
		}
		fe.replies <- m
	}
}

// recv waits for the next message; a closed socket ends the process, since
// nothing can be done without the manager.
func (fe *frontEnd) recv() termproto.Msg {
	m, ok := <-fe.replies
	if !ok {
		fmt.Fprintln(fe.out, "\nthe manager closed the session")
		os.Exit(0)
	}
	return m
}

func (fe *frontEnd) complete(d goprompt.Document) []goprompt.Suggest {
	if err := fe.conn.Send(termproto.Msg{Op: termproto.OpComplete, Line: d.TextBeforeCursor()}); err != nil {
		return nil
	}
	m := fe.recv()
	for m.Op != termproto.OpComplete {
		// Output of a command that outlived its wait: show it, then read on.
		if m.Op == termproto.OpOut {
			io.WriteString(fe.out, m.Data)
		}
		m = fe.recv()
	}
	out := make([]goprompt.Suggest, len(m.Items))
	for i, it := range m.Items {
		out[i] = goprompt.Suggest{Text: it.Text, Description: it.Desc}
	}
	return out
}

// execute runs one line in the manager and draws its output. Keys typed
// meanwhile are read here: Ctrl-C asks the manager to stop waiting (the job
// goes on), other keys wait for the next prompt, and while the manager asks
// for raw mode (top, console) every key goes to it. go-prompt leaves the
// terminal raw during the executor (its saved termios is the raw one), so a
// Ctrl-C never becomes SIGINT here: it arrives as a byte.
func (fe *frontEnd) execute(line string) {
	if strings.TrimSpace(line) == "" {
		return
	}
	width := 80
	if ws := fe.parser.GetWinSize(); ws != nil && ws.Col > 0 {
		width = int(ws.Col)
	}
	if err := fe.conn.Send(termproto.Msg{Op: termproto.OpRun, Line: line, Width: width}); err != nil {
		return
	}
	// go-prompt does not watch the window while a command runs; its loop
	// (patched, see third_party/goprompt/PATCHES.md) reads the size again
	// when the command ends.
	in := fe.watchKeys()
	defer in.stop()
	progress := false
	for {
		m := fe.recv()
		switch m.Op {
		case termproto.OpOut:
			if progress {
				io.WriteString(fe.out, "\r\033[K")
				progress = false
			}
			io.WriteString(fe.out, m.Data)
		case termproto.OpProgress:
			io.WriteString(fe.out, "\r\033[K"+m.Data)
			progress = m.Data != ""
		case termproto.OpRaw:
			in.setRaw(m.On)
		case termproto.OpDone:
			if progress {
				io.WriteString(fe.out, "\r\033[K")
			}
			fe.exited = m.Exit
			return
		}
	}
}

// keyWatcher reads the terminal while a command runs.
type keyWatcher struct {
	fe   *frontEnd
	quit chan struct{}
	done sync.WaitGroup

	mu        sync.Mutex // guards raw and typeAhead
	raw       bool
	typeAhead []byte
}

func (fe *frontEnd) watchKeys() *keyWatcher {
	w := &keyWatcher{fe: fe, quit: make(chan struct{})}
	fe.parser.Setup() // non-blocking reads
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		// Block until a key comes where the terminal can be waited on;
		// polling every 10 ms cost each session 100 wake-ups a second for
		// as long as a command ran, which with 200 sessions slowed the
		// commands themselves. The watcher waits on a waitFDs of its own:
		// a reader go-prompt stopped may still be waiting on the parser's
		// and would take the wake-up that stop sends.
		var tick <-chan time.Time
		if fe.watchWait == nil {
			t := time.NewTicker(10 * time.Millisecond)
			defer t.Stop()
			tick = t.C
		}
		for {
			if tick == nil {
				if !fe.watchWait.wait(w.quit) {
					return
				}
			} else {
				select {
				case <-w.quit:
					return
				case <-tick:
				}
			}
			b, err := fe.parser.ConsoleParser.Read()
			if err != nil || len(b) == 0 {
				continue
			}
			w.mu.Lock()
			raw := w.raw
			if !raw {
				for _, c := range b {
					if c == 0x03 {
						fe.conn.Send(termproto.Msg{Op: termproto.OpInterrupt})
					} else {
						w.typeAhead = append(w.typeAhead, c)
					}
				}
			}
			w.mu.Unlock()
			if raw {
				fe.conn.Send(termproto.Msg{Op: termproto.OpIn, Data: string(b)})
			}
		}
	}()
	return w
}

func (w *keyWatcher) setRaw(on bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.raw = on
}

// stop ends the watch and hands the keys typed ahead to the prompt.
func (w *keyWatcher) stop() {
	close(w.quit)
	w.done.Wait()
	w.fe.parser.TearDown()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fe.parser.pending = append(w.fe.parser.pending, w.typeAhead...)
}
