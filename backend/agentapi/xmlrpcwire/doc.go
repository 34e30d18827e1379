// Package xmlrpcwire is the server side of XML-RPC (xmlrpc.com spec), which
// github.com/kolo/xmlrpc does not provide: it decodes a methodCall into
// generic Go values and encodes responses and faults by reflection. The agent
// uses it; nothing in it knows about the agent's methods. The manager's
// client encodes with it the calls it makes of every server at every
// heartbeat and reconciliation, and decodes their answers (DecodeResponse),
// at a fraction of kolo's cost; kolo's codec serves its other calls.
package xmlrpcwire

// MaxCallBytes bounds the size of a methodCall DecodeCall accepts, so that a
// client cannot make the agent buffer an unbounded body.
const MaxCallBytes = 32 << 20

// MaxDepth bounds how deeply values (arrays and structs) may nest in a call,
// so that a hostile body cannot exhaust the stack.
const MaxDepth = 64

// MaxResponseBytes bounds the size of a methodResponse DecodeResponse
// accepts: an agent's list_vms of a full server is some tens of kB.
const MaxResponseBytes = 8 << 20
