package shell

import (
	"fmt"
	"io"
	"runtime/debug"
	"sync"

	"github.com/gliderlabs/ssh"

	"xenmanager/backend"
)

// faultStatus is the exit status of a session that ended on an internal
// fault (a panic in the manager's side of the session, or a front-end
// process that failed).
const faultStatus = 1

// faultNotice is the one line a client is told when its session ends on a
// fault. The cause (the panic and its trace) goes to the manager's log
// only: it is of no use to an operator's script, names the manager's code,
// and may quote a command's data.
const faultNotice = "xenmanager: this session ended on an internal fault; the manager's log has the cause."

// tellFault writes faultNotice to the client: on its terminal for a pty
// session (raw on the client's side, so CR LF, after a CR LF that ends
// whatever line was being drawn), on standard error otherwise.
func tellFault(sess ssh.Session, isPty bool) {
	if isPty {
		io.WriteString(sess, "\r\n"+faultNotice+"\r\n")
		return
	}
	io.WriteString(sess.Stderr(), faultNotice+"\n")
}

// logFault records a panic recovered in a session, with its trace.
func (s *Server) logFault(actor backend.Actor, where string, r any, stack []byte) {
	s.log.Error("session fault: a panic ended the session", "user", actor.User, "remote", actor.Remote,
		"where", where, "panic", fmt.Sprint(r), "stack", string(stack))
}

// guarded runs body, a session served in the calling goroutine (exec,
// batch, the plain editor), and returns its exit status. A panic in body
// ends the session instead of the manager: it is logged with its trace,
// the client is told in one line, and the status is faultStatus.
func (s *Server) guarded(sess ssh.Session, actor backend.Actor, isPty bool, where string, body func() int) (status int) {
	defer func() {
		if r := recover(); r != nil {
			s.logFault(actor, where, r, debug.Stack())
			tellFault(sess, isPty)
			status = faultStatus
		}
	}()
	return body()
}

// faultGuard lets the goroutines that serve a front-end report a panic to
// promptSession, which then ends the session: a panic there must not end
// the manager, and nothing else would end the session.
type faultGuard struct {
	s       *Server
	actor   backend.Actor
	once    sync.Once     // closes faulted once, whichever goroutine faults first
	faulted chan struct{} // closed at the first fault
}

func newFaultGuard(s *Server, actor backend.Actor) *faultGuard {
	return &faultGuard{s: s, actor: actor, faulted: make(chan struct{})}
}

// catch, deferred at the top of a goroutine, recovers a panic of that
// goroutine, logs it with its trace and reports it on faulted.
func (g *faultGuard) catch(where string) {
	r := recover()
	if r == nil {
		return
	}
	g.s.logFault(g.actor, where, r, debug.Stack())
	g.once.Do(func() { close(g.faulted) })
}
