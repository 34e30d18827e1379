package shell

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/term"

	"xenmanager/backend"
	"xenmanager/backend/metrics"
	"xenmanager/commands"
)

// maxBatchLine bounds one line of a stdin batch; a longer line is reported
// as an error and skipped, and the batch goes on.
const maxBatchLine = 1 << 20

// openSession is the handler of "session" channels: it takes a slot for
// the session (Limits), or refuses the channel saying which limit stands in
// the way, and gives everything back when the session ends. gliderlabs/ssh
// gives every session of a connection the connection's context; this one
// gets a context of its own, which ends when its channel closes, so that
// what serves the session (a front-end process, goroutines, a running
// command) ends with it even while the connection lives on.
func (s *Server) openSession(srv *ssh.Server, conn *gossh.ServerConn, newChan gossh.NewChannel, ctx ssh.Context) {
	c, ok := ctx.Value(connKey).(*clientConn)
	if !ok {
		newChan.Reject(gossh.Prohibited, "not logged in")
		return
	}
	if err := c.openSession(); err != nil {
		s.log.Warn("session refused", "user", ctx.User(), "remote", ctx.RemoteAddr().String(), "reason", err.Error())
		newChan.Reject(gossh.ResourceShortage, err.Error())
		return
	}
	defer c.closeSession()
	sc := newSessionContext(ctx)
	defer sc.handlers.Wait()
	defer sc.cancel()
	ssh.DefaultSessionHandler(srv, conn, newChan, sc)
}

// startSession admits a shell or exec request, counting the handler it
// starts so that openSession can wait for it; the manager serves no
// subsystem.
func (s *Server) startSession(sess ssh.Session, requestType string) bool {
	if requestType == "subsystem" {
		return false
	}
	if sc, ok := sess.Context().(*sessionContext); ok {
		sc.handlers.Add(1)
	}
	return true
}

// sessionContext is the context of one session: the connection's values,
// and an end of its own (its channel closing, or the connection's end).
type sessionContext struct {
	ssh.Context                    // the connection's: values, user, addresses
	ctx         context.Context    // ends with the session
	cancel      context.CancelFunc // ends ctx
	handlers    sync.WaitGroup     // the handler started (startSession), until it returns
}

func newSessionContext(conn ssh.Context) *sessionContext {
	ctx, cancel := context.WithCancel(conn)
	return &sessionContext{Context: conn, ctx: ctx, cancel: cancel}
}

func (c *sessionContext) Deadline() (time.Time, bool) { return c.ctx.Deadline() }
func (c *sessionContext) Done() <-chan struct{}       { return c.ctx.Done() }
func (c *sessionContext) Err() error                  { return c.ctx.Err() }
func (c *sessionContext) Value(key any) any           { return c.ctx.Value(key) }

// handle runs one SSH session: an exec command, a stdin batch, or an
// interactive terminal, each ending with the exit status of docs/command-language.md.
func (s *Server) handle(sess ssh.Session) {
	if sc, ok := sess.Context().(*sessionContext); ok {
		defer sc.handlers.Done()
	}
	ptyReq, winCh, isPty := sess.Pty()
	// An interactive session sets up in a slot (Limits.SessionSetups):
	// from here to its first prompt, so that a login storm queues here
	// rather than beside the jobs in flight. Exec and batch sessions,
	// which start no front-end, do not wait for one.
	setupDone := func() {}
	if isPty && sess.RawCommand() == "" {
		release, ok := s.setups.take(sess.Context())
		if !ok {
			return // the client went away while it waited
		}
		defer release()
		setupDone = release
	}
	actor, ok := sess.Context().Value(actorKey).(backend.Actor)
	// Check again what authentication left behind: gliderlabs/ssh may carry
	// a key or a context value over from an earlier attempt (its issue
	// #242), and a client may change user names between attempts.
	if ok && actor.User != sess.User() {
		ok = false
	}
	if ok && sess.Context().Value(authMethodKey) == "publickey" {
		if sess.PublicKey() == nil {
			ok = false
		} else if _, err := s.cfg.Core.AuthenticateKey(sess.Context(), sess.User(), sess.PublicKey()); err != nil {
			ok = false
		}
	}
	if !ok {
		io.WriteString(sess.Stderr(), "not authenticated\n")
		sess.Exit(3)
		return
	}
	ptyReq.Window = clampWindow(ptyReq.Window)
	resize := followWindow(winCh)

	s.log.Info("session started", "user", actor.User, "remote", actor.Remote, "pty", isPty, "exec", sess.RawCommand() != "")
	status := s.guarded(sess, actor, isPty, "session", func() int { return s.runSession(sess, actor, ptyReq, isPty, resize, setupDone) })
	s.log.Info("session ended", "user", actor.User, "remote", actor.Remote, "status", status)
	sess.Exit(status)
}

// followWindow drains the client's window changes, clamped (clampWindow),
// into a channel that holds the latest one. gliderlabs/ssh's window-change
// channel holds one item: drain it continuously or the session hangs: a
// second resize would block its sender. Without a PTY winCh is nil, and
// ranging over it would leak the goroutine.
func followWindow(winCh <-chan ssh.Window) <-chan ssh.Window {
	resize := make(chan ssh.Window, 1)
	if winCh == nil {
		return resize
	}
	go func() {
		for w := range winCh {
			select {
			case <-resize:
			default:
			}
			resize <- clampWindow(w)
		}
	}()
	return resize
}

// runSession runs the session the client asked for: an exec command, an
// interactive terminal (the front-end, or the plain editor), or a stdin
// batch; it returns the exit status. An interactive session calls
// setupDone once its first prompt is on its way (its setup slot).
func (s *Server) runSession(sess ssh.Session, actor backend.Actor, ptyReq ssh.Pty, isPty bool, resize <-chan ssh.Window, setupDone func()) int {
	ctx := sess.Context()
	defer s.cfg.Metrics.SessionStarted(sessionKind(sess.RawCommand() != "", isPty))()
	switch {
	case sess.RawCommand() != "":
		var out io.Writer = sess
		if isPty {
			out = crlfWriter{sess}
		}
		cs := s.cfg.NewSession(ctx, s.cfg.Registry, actor, out, commands.Options{Interactive: isPty, Log: s.log.With("session", "exec")})
		return cs.RunLine(ctx, sess.RawCommand()).ExitStatus()
	case isPty && len(s.cfg.PromptCommand) > 0 && !s.wantsSimpleEditor(ctx, actor):
		status, err := s.promptSession(sess, actor, ptyReq, resize, setupDone)
		if err != nil {
			// No pty or no front-end here: the plain editor still serves.
			s.log.Warn("interactive front-end unavailable; using the plain line editor", "err", err)
			return s.interactive(sess, actor, ptyReq, resize, setupDone)
		}
		return status
	case isPty:
		return s.interactive(sess, actor, ptyReq, resize, setupDone)
	default:
		return s.batch(sess, actor)
	}
}

// sessionKind is the kind of a session in the metrics: exec when the
// client gave a command (with a terminal or not), interactive with a
// terminal, batch (stdin) without.
func sessionKind(exec, isPty bool) string {
	switch {
	case exec:
		return metrics.SessionExec
	case isPty:
		return metrics.SessionInteractive
	}
	return metrics.SessionBatch
}

// batch runs stdin line by line, as a script: no prompt, no echo.
func (s *Server) batch(sess ssh.Session, actor backend.Actor) int {
	cs := s.cfg.NewSession(sess.Context(), s.cfg.Registry, actor, sess, commands.Options{Log: s.log.With("session", "batch")})
	worst := commands.OK
	r := bufio.NewReaderSize(sess, 64*1024)
	ahead := 0 // lines from here on already handed to Prefetch
	for !cs.Exited() {
		if ahead == 0 {
			ahead = readAhead(sess.Context(), cs, r)
		}
		ahead = max(ahead-1, 0)
		line, tooLong, err := readLine(r, maxBatchLine)
		var o commands.Outcome
		switch {
		case tooLong:
			// Refuse the whole line: running a cut-off part of it could act
			// on the wrong objects.
			o = cs.RejectLine(string(line[:64])+"...", fmt.Sprintf("the line is longer than %d bytes; none of it was run", maxBatchLine))
		case len(line) > 0 || err == nil:
			o = cs.RunLine(sess.Context(), string(line))
		}
		if o > worst {
			worst = o
		}
		if err != nil {
			break
		}
	}
	return worst.ExitStatus()
}

// batchReadAhead is how many of a batch's next lines are read ahead at
// once (readAhead).
const batchReadAhead = 256

// readAhead hands the session the complete lines r already holds, up to
// batchReadAhead of them, so that the show commands among them read
// their objects in a few reads (commands.Session.Prefetch), and returns
// how many it handed. It waits for the next line's first byte, as
// readLine would, and for nothing more: a client typing into a pipe is
// not held up.
func readAhead(ctx context.Context, cs *commands.Session, r *bufio.Reader) int {
	if _, err := r.Peek(1); err != nil {
		return 0
	}
	buf, _ := r.Peek(r.Buffered())
	var lines []string
	for len(lines) < batchReadAhead {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		if i <= maxBatchLine {
			lines = append(lines, string(bytes.TrimRight(buf[:i], "\r")))
		} else {
			lines = append(lines, "") // refused when it is run
		}
		buf = buf[i+1:]
	}
	cs.Prefetch(ctx, lines)
	return len(lines)
}

// readLine reads one line without its end (\n or \r\n). A line longer than
// limit is consumed whole but only its first limit bytes are returned, with
// tooLong set. err is io.EOF after the last line (which may lack a newline).
func readLine(r *bufio.Reader, limit int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line) < limit {
			take := min(len(chunk), limit-len(line))
			line = append(line, chunk[:take]...)
			if take < len(chunk) {
				tooLong = true
			}
		} else if len(chunk) > 0 {
			tooLong = true
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		line = bytes.TrimRight(line, "\r\n")
		return line, tooLong, err
	}
}

// interactive runs a terminal session with line editing and history; it
// calls setupDone before its first prompt.
func (s *Server) interactive(sess ssh.Session, actor backend.Actor, pty ssh.Pty, resize <-chan ssh.Window, setupDone func()) int {
	t := term.NewTerminal(&ctrlCClears{ReadWriter: sess}, "OVM> ")
	t.SetSize(pty.Window.Width, pty.Window.Height)
	go func() {
		for {
			select {
			case w := <-resize:
				t.SetSize(w.Width, w.Height)
			case <-sess.Context().Done():
				return
			}
		}
	}()
	tab := &tabCompleter{reg: s.cfg.Registry, names: objectNames(sess.Context(), s.cfg.Core, actor), term: t}
	t.AutoCompleteCallback = tab.callback
	cs := s.cfg.NewSession(sess.Context(), s.cfg.Registry, actor, t, commands.Options{Interactive: true, RememberSettings: true,
		Log: s.log.With("session", "interactive")})
	setupDone()
	for !cs.Exited() {
		line, err := t.ReadLine()
		if err != nil && !errors.Is(err, term.ErrPasteIndicator) {
			// Ctrl-D on an empty line, or a closed channel.
			return 0
		}
		cs.RunLine(sess.Context(), line)
	}
	return 0
}

// ctrlCClears is the session as the plain line editor reads it: Ctrl-C
// arrives as Ctrl-E Ctrl-U (to the end of the line, then erase it), so
// that it clears the line as docs/guide.md (Interactive sessions) says; x/term would report it as the
// end of input and the session would end.
type ctrlCClears struct {
	io.ReadWriter
	pending []byte // translated bytes that did not fit the caller's buffer
}

func (c *ctrlCClears) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	n, err := c.ReadWriter.Read(p)
	if bytes.IndexByte(p[:n], ctrlC) < 0 {
		return n, err
	}
	out := bytes.ReplaceAll(p[:n], []byte{ctrlC}, []byte{ctrlE, ctrlU})
	k := copy(p, out)
	c.pending = append(c.pending, out[k:]...)
	return k, err
}

// The control keys ctrlCClears reads and writes.
const (
	ctrlC = 0x03
	ctrlE = 0x05
	ctrlU = 0x15
)

// crlfWriter turns \n into \r\n for a client terminal in raw mode.
type crlfWriter struct{ w io.Writer }

func (c crlfWriter) Write(p []byte) (int, error) {
	if _, err := c.w.Write(bytes.ReplaceAll(p, []byte("\n"), []byte("\r\n"))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// wantsSimpleEditor reports whether the user chose the plain line editor
// (set lineEditor=simple).
func (s *Server) wantsSimpleEditor(ctx context.Context, actor backend.Actor) bool {
	v, ok := s.cfg.Core.UserSetting(ctx, actor.User, "lineEditor")
	return ok && v == "simple"
}
