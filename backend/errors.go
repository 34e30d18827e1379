// Package backend is the manager core: pools, servers, repositories and VMs,
// placement, and the calls to the agents that carry them out. It records the
// configuration through store and speaks to agents through agentclient; it
// knows nothing of SSH or of the command language.
package backend

import (
	"errors"
	"fmt"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
	"xenmanager/store"
)

// Kind classifies a backend failure; the command layer maps each kind to one
// stable error code.
type Kind int

// The kinds of failure an operation reports.
const (
	KindInternal              Kind = iota // a bug or an unexpected fault
	KindInvalidArgument                   // the request itself is wrong
	KindNotFound                          // no such object (or not visible)
	KindAmbiguous                         // a name matches several objects
	KindConflict                          // exists already, or in use
	KindInvalidState                      // wrong state for the operation
	KindInsufficientResources             // nothing has room
	KindAgentUnreachable                  // the agent does not answer
	KindAgentAuth                         // the agent refused the password
	KindAgentCertificate                  // the agent's certificate changed
	KindAgentFault                        // the agent refused the operation
	KindPermission                        // the user may not do this
	KindStillRunning                      // the wait ended; the job goes on
)

// Error is the error every exported operation returns: a kind, a message
// an operator can act on, and the underlying cause for the log.
type Error struct {
	Kind  Kind
	Msg   string
	Cause error
	JobID string // for KindStillRunning: the job that goes on
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Msg + ": " + e.Cause.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Cause }

func errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of err, KindInternal for errors not made here.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// Message returns what the operator should read for err: the backend's own
// message, without internal causes, but for the database's refusals an
// operator can act on (storeRefusal).
func Message(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Msg + storeRefusal(err)
	}
	return "internal error (see the manager's log)"
}

// storeRefusal says why the database refused a write, when it is for a
// reason the operator can act on: a full disk, or the command's audit
// record that could not be written (the change was then not made).
func storeRefusal(err error) string {
	switch {
	case errors.Is(err, store.ErrDiskFull):
		return ": the manager's database could not be written: its disk is full"
	case errors.Is(err, store.ErrAudit):
		return ": the command's audit record could not be written, so its change was not made (see the manager's log)"
	}
	return ""
}

// agentError translates an agent call's failure into a backend error once,
// at this boundary. what names the operation for the operator ("start Vm
// web1 on ovs2").
func agentError(what, server string, err error) *Error {
	if f, ok := agentapi.AsFault(err); ok {
		kind := KindAgentFault
		switch f.Code {
		case agentapi.FaultInsufficientResources:
			kind = KindInsufficientResources
		case agentapi.FaultInvalidState:
			kind = KindInvalidState
		case agentapi.FaultNotFound:
			kind = KindNotFound
		case agentapi.FaultInvalidArgument:
			kind = KindInvalidArgument
		}
		return &Error{Kind: kind, Msg: fmt.Sprintf("%s: server %s refused: %s", what, server, f.Message), Cause: err}
	}
	switch {
	case errors.Is(err, agentclient.ErrUnauthorized):
		return &Error{Kind: KindAgentAuth, Msg: fmt.Sprintf("%s: the agent on %s refused the password", what, server), Cause: err}
	case errors.Is(err, agentclient.ErrTooManyFailures):
		return &Error{Kind: KindAgentAuth, Msg: fmt.Sprintf("%s: the agent on %s refuses calls from this manager for a while after wrong passwords; check the server's password and try again", what, server), Cause: err}
	case errors.Is(err, agentclient.ErrCertificateChanged):
		return &Error{Kind: KindAgentCertificate, Msg: fmt.Sprintf("%s: the agent on %s presented a certificate other than the one pinned at discovery; rediscover the server to accept it", what, server), Cause: err}
	case errors.Is(err, agentclient.ErrUnreachable):
		return &Error{Kind: KindAgentUnreachable, Msg: fmt.Sprintf("%s: the agent on %s does not answer", what, server), Cause: err}
	case errors.Is(err, agentclient.ErrProtocol):
		return &Error{Kind: KindAgentFault, Msg: fmt.Sprintf("%s: the agent on %s answered outside the protocol", what, server), Cause: err}
	}
	return &Error{Kind: KindInternal, Msg: what + " failed", Cause: err}
}
