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
	"golang.org/x/sys/unix"

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

// isClosed reports whether the manager is shutting down (and ending every
// front-end).
func (c *children) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
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
// A fault (the child failing, or a panic in the goroutines serving it) ends
// the session with one line to the client and the cause in the log.
// setupDone is called once the child's first prompt is answered (its
// hello), which ends the session's setup.
func (s *Server) promptSession(sess ssh.Session, actor backend.Actor, ptyReq ssh.Pty, resize <-chan ssh.Window, setupDone func()) (int, error) {
	p, err := startFrontEnd(s.cfg.PromptCommand, ptyReq)
	if err != nil {
		return 0, err
	}
	defer p.release()
	if !s.children.add(p.cmd.Process) {
		p.end()
		return 0, nil
	}
	defer s.children.remove(p.cmd.Process)

	go io.Copy(p.master, sess)
	outDone := make(chan struct{})
	go func() {
		io.Copy(sess, p.master)
		close(outDone)
	}()
	size := &windowSize{w: ptyReq.Window}
	resized := p.followResizes(resize, size)
	defer func() {
		p.end()   // reaped already, unless this returns on a panic
		<-resized // before the pty closes: it resizes the pty
	}()

	// Everything serving this front-end ends with it, even when the SSH
	// connection lives on (a multiplexed client).
	ctx, cancel := context.WithCancel(sess.Context())
	defer cancel()
	guard := newFaultGuard(s, actor)
	fe := &frontEndServer{s: s, conn: termproto.NewConn(p.sock), actor: actor, size: size, guard: guard, ready: setupDone}
	go fe.serve(ctx)

	select {
	case <-p.exited:
		// The user left (exit, Ctrl-D), or the front-end failed: let its
		// last output through.
		awaitOutput(outDone)
		if !p.cmd.ProcessState.Success() && !s.children.isClosed() {
			s.log.Error("front-end fault: the interactive front-end failed", "user", actor.User, "remote", actor.Remote,
				"exit", p.cmd.ProcessState.String(), "stderr", p.stderr.String())
			tellFault(sess, true)
			return faultStatus, nil
		}
	case <-guard.faulted:
		p.end()
		awaitOutput(outDone)
		tellFault(sess, true)
		return faultStatus, nil
	case <-sess.Context().Done():
		// The client went away: end the child and reap it.
		p.end()
	}
	return 0, nil
}

// awaitOutput waits, a second at most, until the front-end's last output
// reached the client.
func awaitOutput(outDone <-chan struct{}) {
	select {
	case <-outDone:
	case <-time.After(time.Second):
	}
}

// frontEndProcess is a started front-end: the process, the master side of
// its pty, and the manager's end of its socket.
type frontEndProcess struct {
	cmd    *exec.Cmd
	master *os.File
	sock   net.Conn
	// stderr is what the process wrote on its standard error (a panic's
	// trace, go-prompt's asserts), for the log: never the client's
	// terminal. Read it only once exited is closed.
	stderr *headBuffer
	exited chan struct{} // closed once the process is reaped
}

// startFrontEnd starts command on a new pty of the size ptyReq asks, with
// a socket pair to the manager as its descriptor 3.
func startFrontEnd(command []string, ptyReq ssh.Pty) (*frontEndProcess, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	parentFile, childFile := os.NewFile(uintptr(fds[0]), "frontend"), os.NewFile(uintptr(fds[1]), "manager")
	defer childFile.Close()
	sock, err := net.FileConn(parentFile)
	parentFile.Close()
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	master, tty, err := openPty()
	if err != nil {
		sock.Close()
		return nil, fmt.Errorf("allocate a pty: %w", err)
	}
	defer tty.Close()
	setPtySize(master, ptyReq.Window)

	p := &frontEndProcess{master: master, sock: sock, stderr: &headBuffer{limit: maxFrontEndStderr}, exited: make(chan struct{})}
	p.cmd = exec.Command(command[0], command[1:]...)
	term := ptyReq.Term
	if term == "" {
		term = "xterm"
	}
	p.cmd.Env = []string{"TERM=" + term, "LANG=C.UTF-8", "PATH=/usr/bin:/bin", "GOMAXPROCS=1"}
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = tty, tty, p.stderr
	p.cmd.ExtraFiles = []*os.File{childFile}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := p.cmd.Start(); err != nil {
		master.Close()
		sock.Close()
		return nil, fmt.Errorf("start the front-end: %w", err)
	}
	go func() {
		// Wait for the exit on the poller, then reap (no zombie stays
		// behind): Wait alone would hold an OS thread for the session's
		// whole life (see awaitExit).
		_ = awaitExit(p.cmd.Process.Pid)
		p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// maxFrontEndStderr bounds what the log keeps of a front-end's standard
// error: the start of a panic, and the trace of the goroutine that
// panicked, which comes first.
const maxFrontEndStderr = 32 << 10

// end asks the process to end (SIGHUP, as a terminal that hangs up),
// kills it if it has not within 2 s, and waits until it is reaped.
func (p *frontEndProcess) end() {
	p.cmd.Process.Signal(syscall.SIGHUP)
	select {
	case <-p.exited:
	case <-time.After(2 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// release closes the pty master and the socket; the process has been
// reaped and nothing uses them any more.
func (p *frontEndProcess) release() {
	p.master.Close()
	p.sock.Close()
}

// followResizes applies the client's window changes to the pty (the
// child gets SIGWINCH) and to size, until the process is reaped; the
// channel it returns is closed when it stops.
func (p *frontEndProcess) followResizes(resize <-chan ssh.Window, size *windowSize) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case w := <-resize:
				setPtySize(p.master, w)
				size.set(w)
			case <-p.exited:
				return
			}
		}
	}()
	return done
}

// openPty allocates a pseudo-terminal whose master is read and written
// through the runtime's poller. pty.Open leaves the master in blocking mode
// (it asks for its descriptor), and a blocking read holds an OS thread for
// as long as it waits: one per interactive session, for its whole life,
// and the Go runtime keeps every thread it ever made. The master is
// therefore a non-blocking duplicate of the one pty.Open returned.
func openPty() (master, tty *os.File, err error) {
	m, tty, err := pty.Open()
	if err != nil {
		return nil, nil, err
	}
	defer m.Close()
	fd, err := unix.FcntlInt(m.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err == nil {
		err = unix.SetNonblock(fd, true)
		if err != nil {
			unix.Close(fd)
		}
	}
	if err != nil {
		tty.Close()
		return nil, nil, fmt.Errorf("pty master: %w", err)
	}
	return os.NewFile(uintptr(fd), m.Name()), tty, nil
}

// setPtySize sets the window of a pty; w is clamped already (clampWindow),
// so that it fits the pty's 16 bits. It reaches the descriptor through
// SyscallConn, not Fd (as pty.Setsize does), which would put the master
// back in blocking mode (see openPty).
func setPtySize(master *os.File, w ssh.Window) {
	raw, err := master.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		_ = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Col: uint16(w.Width), Row: uint16(w.Height)})
	})
}

// headBuffer keeps the first limit bytes written to it and counts the
// rest. It is written by one goroutine (exec's copy of the child's
// standard error) and read after that goroutine ends (Cmd.Wait), so it
// needs no lock.
type headBuffer struct {
	limit   int
	buf     []byte
	dropped int
}

func (b *headBuffer) Write(p []byte) (int, error) {
	take := min(len(p), b.limit-len(b.buf))
	b.buf = append(b.buf, p[:take]...)
	b.dropped += len(p) - take
	return len(p), nil
}

func (b *headBuffer) String() string {
	if b.dropped > 0 {
		return fmt.Sprintf("%s\n... (%d more bytes)", b.buf, b.dropped)
	}
	return string(b.buf)
}

// frontEndServer answers one front-end's requests.
type frontEndServer struct {
	s     *Server
	conn  *termproto.Conn
	actor backend.Actor
	size  *windowSize // the session's window, for commands that draw (top)
	guard *faultGuard // a panic serving the front-end ends the session
	ready func()      // called once the first hello is answered: the setup is over

	mu        sync.Mutex // guards interrupt and keys
	interrupt context.CancelFunc
	keys      chan []byte // non-nil while a command holds the terminal raw
}

// serve answers the front-end's messages until its socket closes or ctx
// ends; commands run one at a time in a goroutine of their own, so that
// an interrupt reaches the one running.
func (fe *frontEndServer) serve(ctx context.Context) {
	defer fe.guard.catch("front-end requests")
	cfg := fe.s.cfg
	out := &protoWriter{conn: fe.conn}
	cs := cfg.NewSession(ctx, cfg.Registry, fe.actor, out, commands.Options{
		Interactive: true, RememberSettings: true, Log: fe.s.log.With("session", "interactive"), Terminal: &protoTerminal{fe: fe},
		Progress: func(line string) { fe.conn.Send(termproto.Msg{Op: termproto.OpProgress, Data: line}) },
	})
	runs := make(chan string)
	go func() {
		defer fe.guard.catch("command")
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
			fe.ready()
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
			select {
			case runs <- m.Line:
			case <-ctx.Done():
				return
			}
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
	w := t.fe.size.get()
	return w.Width, w.Height
}
