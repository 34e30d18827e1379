package shell

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"github.com/gliderlabs/ssh"

	"xenmanager/backend"
	"xenmanager/commands"
	"xenmanager/shell/termproto"
)

// children tracks the front-end processes of interactive sessions, so that
// shutting the manager down ends them all.
type children struct {
	mu     sync.Mutex // guards procs and closed
	procs  map[*os.Process]struct{}
	closed bool // the manager is shutting down: no new front-end
}

// add records a front-end; false when the manager is shutting down (the
// caller ends it).
func (c *children) add(p *os.Process) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	if c.procs == nil {
		c.procs = map[*os.Process]struct{}{}
	}
	c.procs[p] = struct{}{}
	return true
}

func (c *children) remove(p *os.Process) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.procs, p)
}

func (c *children) killAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for p := range c.procs {
		p.Signal(syscall.SIGHUP)
		p.Kill()
	}
}

// promptSession runs an interactive session through a front-end process
// (the same binary, Config.PromptCommand) on a pseudo-terminal allocated for
// this session: the manager copies bytes between the SSH channel and the pty
// master, resizes the pty on window changes (the child gets SIGWINCH), and
// serves the child's requests on a socket pair. The child is ended and
// reaped when the channel closes, and the session ends when the child does.
func (s *Server) promptSession(sess ssh.Session, actor backend.Actor, ptyReq ssh.Pty, resize <-chan ssh.Window) (int, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("socketpair: %w", err)
	}
	parentFile, childFile := os.NewFile(uintptr(fds[0]), "frontend"), os.NewFile(uintptr(fds[1]), "manager")
	defer childFile.Close()
	sock, err := net.FileConn(parentFile)
	parentFile.Close()
	if err != nil {
		return 0, fmt.Errorf("socket: %w", err)
	}
	defer sock.Close()

	master, tty, err := pty.Open()
	if err != nil {
		return 0, fmt.Errorf("allocate a pty: %w", err)
	}
	defer master.Close()
	pty.Setsize(master, &pty.Winsize{Cols: uint16(max(ptyReq.Window.Width, 1)), Rows: uint16(max(ptyReq.Window.Height, 1))})

	cmd := exec.Command(s.cfg.PromptCommand[0], s.cfg.PromptCommand[1:]...)
	term := ptyReq.Term
	if term == "" {
		term = "xterm"
	}
	cmd.Env = []string{"TERM=" + term, "LANG=C.UTF-8", "PATH=/usr/bin:/bin", "GOMAXPROCS=1"}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.ExtraFiles = []*os.File{childFile}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		tty.Close()
		return 0, fmt.Errorf("start the front-end: %w", err)
	}
	tty.Close()
	childFile.Close()
	exited := make(chan struct{})
	go func() {
		cmd.Wait() // reap: no zombie stays behind
		close(exited)
	}()
	if !s.children.add(cmd.Process) {
		cmd.Process.Kill()
		<-exited
		return 0, nil
	}
	defer s.children.remove(cmd.Process)

	go io.Copy(master, sess)
	outDone := make(chan struct{})
	go func() {
		io.Copy(sess, master)
		close(outDone)
	}()
	go func() {
		for {
			select {
			case w := <-resize:
				pty.Setsize(master, &pty.Winsize{Cols: uint16(max(w.Width, 1)), Rows: uint16(max(w.Height, 1))})
			case <-exited:
				return
			}
		}
	}()

	// Everything serving this front-end ends with it, even when the SSH
	// connection lives on (a multiplexed client).
	ctx, cancel := context.WithCancel(sess.Context())
	defer cancel()
	fe := &frontEndServer{s: s, conn: termproto.NewConn(sock), actor: actor, master: master}
	go fe.serve(ctx)

	select {
	case <-exited:
		// The user left (exit, Ctrl-D): let the last output through.
		select {
		case <-outDone:
		case <-time.After(time.Second):
		}
	case <-sess.Context().Done():
		// The client went away: end the child and reap it.
		cmd.Process.Signal(syscall.SIGHUP)
		select {
		case <-exited:
		case <-time.After(2 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	return 0, nil
}

// frontEndServer answers one front-end's requests.
type frontEndServer struct {
	s      *Server
	conn   *termproto.Conn
	actor  backend.Actor
	master *os.File

	mu        sync.Mutex // guards interrupt and keys
	interrupt context.CancelFunc
	keys      chan []byte // non-nil while a command holds the terminal raw
}

func (fe *frontEndServer) serve(ctx context.Context) {
	cfg := fe.s.cfg
	out := &protoWriter{conn: fe.conn}
	cs := cfg.NewSession(ctx, cfg.Registry, fe.actor, out, commands.Options{
		Interactive: true, Log: fe.s.log, Terminal: &protoTerminal{fe: fe},
		Progress: func(line string) { fe.conn.Send(termproto.Msg{Op: termproto.OpProgress, Data: line}) },
	})
	runs := make(chan string)
	go func() {
		for line := range runs {
			rctx, cancel := context.WithCancel(ctx)
			fe.mu.Lock()
			fe.interrupt = cancel
			fe.mu.Unlock()
			cs.RunLine(rctx, line)
			cancel()
			fe.mu.Lock()
			fe.interrupt = nil
			fe.mu.Unlock()
			fe.conn.Send(termproto.Msg{Op: termproto.OpDone, Exit: cs.Exited()})
		}
	}()
	defer close(runs)
	for {
		m, err := fe.conn.Recv()
		if err != nil {
			return
		}
		switch m.Op {
		case termproto.OpHello:
			fe.conn.Send(termproto.Msg{Op: termproto.OpHello, Prompt: "OVM> ", History: cfg.Core.History(ctx, fe.actor.User)})
		case termproto.OpComplete:
			var sugs []commands.Suggestion
			// Nothing on an empty line: the list would cover the screen
			// after every command.
			if strings.TrimSpace(m.Line) != "" {
				_, sugs = cfg.Registry.Complete(m.Line, objectNames(ctx, cfg.Core, fe.actor))
			}
			items := make([]termproto.Item, len(sugs))
			for i, sg := range sugs {
				items[i] = termproto.Item{Text: sg.Text, Desc: sg.Description}
			}
			fe.conn.Send(termproto.Msg{Op: termproto.OpComplete, Items: items})
		case termproto.OpRun:
			if !commands.MentionsSecret(m.Line) { // passwords stay out of the history
				cfg.Core.AppendHistory(ctx, fe.actor.User, m.Line)
			}
			runs <- m.Line
		case termproto.OpInterrupt:
			fe.mu.Lock()
			if fe.interrupt != nil {
				fe.interrupt()
			}
			fe.mu.Unlock()
		case termproto.OpIn:
			fe.mu.Lock()
			keys := fe.keys
			fe.mu.Unlock()
			if keys != nil {
				select {
				case keys <- []byte(m.Data):
				default: // the command is not reading: drop, as a terminal would
				}
			}
		}
	}
}

// protoWriter sends command output to the front-end.
type protoWriter struct{ conn *termproto.Conn }

func (w *protoWriter) Write(p []byte) (int, error) {
	if err := w.conn.Send(termproto.Msg{Op: termproto.OpOut, Data: string(p)}); err != nil {
		return 0, err
	}
	return len(p), nil
}

// protoTerminal is the commands.Terminal of a front-end session.
type protoTerminal struct{ fe *frontEndServer }

func (t *protoTerminal) Write(p []byte) (int, error) { return (&protoWriter{t.fe.conn}).Write(p) }

func (t *protoTerminal) Raw(on bool) {
	t.fe.mu.Lock()
	if on {
		t.fe.keys = make(chan []byte, 64)
	} else {
		t.fe.keys = nil
	}
	t.fe.mu.Unlock()
	t.fe.conn.Send(termproto.Msg{Op: termproto.OpRaw, On: on})
}

func (t *protoTerminal) Keys() <-chan []byte {
	t.fe.mu.Lock()
	defer t.fe.mu.Unlock()
	return t.fe.keys
}

func (t *protoTerminal) Size() (int, int) {
	ws, err := pty.GetsizeFull(t.fe.master)
	if err != nil {
		return 80, 24
	}
	return int(ws.Cols), int(ws.Rows)
}
