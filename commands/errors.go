package commands

import (
	"errors"
	"fmt"

	"xenmanager/backend"
)

// Code is a stable error code shown after "Error Msg:". Each code has one
// meaning; scripts may match on it. The table is in the generated reference.
type Code string

// Parse codes: the command could not be understood (exit status 2, whether
// the parser found the fault or, after parsing, the command's handler).
const (
	CodeUnknownCommand   Code = "XM_0001E"
	CodeUnknownType      Code = "XM_0002E"
	CodeSyntax           Code = "XM_0003E"
	CodeUnknownAttribute Code = "XM_0004E"
	CodeMissingAttribute Code = "XM_0005E"
	CodeInvalidValue     Code = "XM_0006E"
	CodeMissingInstance  Code = "XM_0007E"
	CodeClause           Code = "XM_0008E"
)

// Run-time codes: the command was understood and failed (exit status 1).
const (
	CodeInvalidArgument       Code = "XM_0400E"
	CodePermission            Code = "XM_0403E"
	CodeNotFound              Code = "XM_0404E"
	CodeAmbiguous             Code = "XM_0300E"
	CodeConflict              Code = "XM_0409E"
	CodeInvalidState          Code = "XM_0412E"
	CodeInsufficientResources Code = "XM_0507E"
	CodeAgentUnreachable      Code = "XM_0503E"
	CodeAgentAuth             Code = "XM_0401E"
	CodeAgentCertificate      Code = "XM_0495E"
	CodeAgentFault            Code = "XM_0502E"
	CodeInternal              Code = "XM_0500E"
	CodeTimeout               Code = "XM_0408E"
	CodeNotSupported          Code = "XM_0501E"
	CodeJobFailed             Code = "XM_0424E"
)

// CodeInfo describes a code for the reference.
type CodeInfo struct {
	Code    Code
	Meaning string
	Parse   bool // a parse error (exit status 2) rather than a failure (1)
}

// outcome is how a command that failed with code c ends, whoever found the
// fault: refused (exit status 3) for a permission error, unparsable (2) for
// a parse code, failed (1) otherwise. One code has one exit status, so that
// the reference's table holds whether the parser or a handler (set without
// attributes, showcustomcmds without a type, help of an unknown verb)
// reports the code.
func (c Code) outcome() Outcome {
	switch {
	case c == CodePermission:
		return Denied
	case c.isParse():
		return ParseFailed
	}
	return Failed
}

// isParse reports whether c is a parse code (Codes marks them).
func (c Code) isParse() bool {
	for _, ci := range Codes {
		if ci.Code == c {
			return ci.Parse
		}
	}
	return false
}

// ExitStatus is the exit status of a session whose worst command ended with
// this code.
func (ci CodeInfo) ExitStatus() int { return ci.Code.outcome().ExitStatus() }

// Codes lists every code with its meaning, in the order of the reference.
var Codes = []CodeInfo{
	{CodeUnknownCommand, "unknown command (verb)", true},
	{CodeUnknownType, "unknown or unsupported object type for the verb", true},
	{CodeSyntax, "malformed command: unterminated quote, stray word, control character, line too long", true},
	{CodeUnknownAttribute, "unknown attribute for the command", true},
	{CodeMissingAttribute, "a required attribute is missing", true},
	{CodeInvalidValue, "an attribute's value is not of its type, range or enumeration", true},
	{CodeMissingInstance, "the object instance (id= or name=) is missing or malformed", true},
	{CodeClause, "the on/to/from clause is missing, misplaced or names the wrong type", true},
	{CodeAmbiguous, "a name matches several objects; use id=", false},
	{CodeInvalidArgument, "a value was understood but refused (bad name, path, address)", false},
	{CodeAgentAuth, "the server's agent refused the password", false},
	{CodePermission, "not allowed, or wrong user name or password", false},
	{CodeNotFound, "no such object", false},
	{CodeConflict, "the object exists already, is in use, or is busy", false},
	{CodeInvalidState, "the object is in the wrong state for the operation", false},
	{CodeAgentCertificate, "the server's agent presented a certificate other than the pinned one", false},
	{CodeTimeout, "the command did not finish within commandTimeout; its job goes on (show Job, wait Job)", false},
	{CodeInternal, "internal error; the manager's log has the cause", false},
	{CodeNotSupported, "the request is understood but not supported by this version", false},
	{CodeJobFailed, "the job waited for ended Failure or Aborted", false},
	{CodeAgentFault, "the server's agent refused the operation or answered outside the protocol", false},
	{CodeAgentUnreachable, "the server's agent does not answer", false},
	{CodeInsufficientResources, "no server has the memory or CPUs the operation needs", false},
}

// ParseError says which word of a command is wrong and what is accepted there.
type ParseError struct {
	Code Code
	Pos  int    // byte offset of the word in the command
	Word string // the word, when one is at fault
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Msg) }

func parseErrorf(code Code, t *token, format string, args ...any) *ParseError {
	e := &ParseError{Code: code, Msg: fmt.Sprintf(format, args...)}
	if t != nil {
		e.Pos, e.Word = t.pos, t.raw
	}
	return e
}

// codeFor translates a backend error into its code, once, at this boundary.
func codeFor(err error) Code {
	switch backend.KindOf(err) {
	case backend.KindInvalidArgument:
		return CodeInvalidArgument
	case backend.KindNotFound:
		return CodeNotFound
	case backend.KindAmbiguous:
		return CodeAmbiguous
	case backend.KindConflict:
		return CodeConflict
	case backend.KindInvalidState:
		return CodeInvalidState
	case backend.KindInsufficientResources:
		return CodeInsufficientResources
	case backend.KindAgentUnreachable:
		return CodeAgentUnreachable
	case backend.KindAgentAuth:
		return CodeAgentAuth
	case backend.KindAgentCertificate:
		return CodeAgentCertificate
	case backend.KindAgentFault:
		return CodeAgentFault
	case backend.KindPermission:
		return CodePermission
	case backend.KindStillRunning:
		return CodeTimeout
	}
	return CodeInternal
}

// cmdError is a failure decided in this package (not by the backend), with
// its own code.
type cmdError struct {
	code Code
	msg  string
}

func (e *cmdError) Error() string { return string(e.code) + ": " + e.msg }

func failf(code Code, format string, args ...any) error {
	return &cmdError{code: code, msg: fmt.Sprintf(format, args...)}
}

// describeError returns the code and the operator's message for err.
func describeError(err error) (Code, string) {
	var ce *cmdError
	if errors.As(err, &ce) {
		return ce.code, ce.msg
	}
	return codeFor(err), backend.Message(err)
}
