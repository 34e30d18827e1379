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
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	goprompt "github.com/c-bata/go-prompt"

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
	exited  bool // the manager said the session ends
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
	out := make([]goprompt.Suggest, len(m.Items))
	for i, it := range m.Items {
		out[i] = goprompt.Suggest{Text: it.Text, Description: it.Desc}
	}
	return out
}

// execute runs one line in the manager and draws its output. Ctrl-C while
// it runs asks the manager to stop waiting (the job goes on).
func (fe *frontEnd) execute(line string) {
	if strings.TrimSpace(line) == "" {
		return
	}
	width := 80
	if ws := fe.parser.GetWinSize(); ws != nil && ws.Col > 0 {
		width = int(ws.Col)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT)
	defer signal.Stop(sigs)
	stopSigs := make(chan struct{})
	defer close(stopSigs)
	go func() {
		for {
			select {
			case <-sigs:
				fe.conn.Send(termproto.Msg{Op: termproto.OpInterrupt})
			case <-stopSigs:
				return
			}
		}
	}()
	if err := fe.conn.Send(termproto.Msg{Op: termproto.OpRun, Line: line, Width: width}); err != nil {
		return
	}
	var raw *rawInput
	defer func() {
		if raw != nil {
			raw.stop()
		}
	}()
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
			if m.On && raw == nil {
				raw = fe.startRaw()
			} else if !m.On && raw != nil {
				raw.stop()
				raw = nil
			}
		case termproto.OpDone:
			if progress {
				io.WriteString(fe.out, "\r\033[K")
			}
			fe.exited = m.Exit
			return
		}
	}
}

// rawInput forwards keys while the manager asks for raw mode (top,
// console): the terminal goes raw through go-prompt's own parser, which
// reads without blocking, so that stopping never loses a key to a pending
// read.
type rawInput struct {
	fe   *frontEnd
	quit chan struct{}
	done sync.WaitGroup
}

func (fe *frontEnd) startRaw() *rawInput {
	r := &rawInput{fe: fe, quit: make(chan struct{})}
	fe.parser.Setup()
	r.done.Add(1)
	go func() {
		defer r.done.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.quit:
				return
			case <-tick.C:
			}
			b, err := fe.parser.ConsoleParser.Read()
			if err == nil && len(b) > 0 {
				fe.conn.Send(termproto.Msg{Op: termproto.OpIn, Data: string(b)})
			}
		}
	}()
	return r
}

func (r *rawInput) stop() {
	close(r.quit)
	r.done.Wait()
	r.fe.parser.TearDown()
}
