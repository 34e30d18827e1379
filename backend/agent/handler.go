package agent

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentapi/xmlrpcwire"
)

// ServeHTTP serves one XML-RPC call: POST on the protocol's paths, basic
// auth, then decode, dispatch and encode. Failures after authentication are
// XML-RPC faults with HTTP 200, as XML-RPC wants.
func (a *Agent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.isDown() {
		panic(http.ErrAbortHandler) // a host that is down answers nothing
	}
	if r.URL.Path != agentapi.Path && r.URL.Path != agentapi.PathRPC2 {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "XML-RPC calls are POSTed", http.StatusMethodNotAllowed)
		return
	}
	// The back-off's source is worked out only when the back-off holds an
	// address or the password is wrong: parsing the remote address was 2
	// of an echo's 17 allocations.
	var source string
	if !a.authFailures.idle() {
		source = sourceOf(r.RemoteAddr)
		if d := a.authFailures.wait(source); d > 0 {
			// Unchecked, so that a right guess cannot show (authBackoff).
			w.Header().Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
			http.Error(w, "too many wrong passwords from this address; retry later", http.StatusTooManyRequests)
			return
		}
	}
	if !a.authorized(r) {
		if a.metrics != nil {
			a.metrics.unauthorized.Inc()
		}
		if _, _, given := r.BasicAuth(); given && a.authFailures.fail(sourceOf(r.RemoteAddr)) {
			a.log.Warn("agent calls from this address refused for a while: too many wrong passwords", "remote", r.RemoteAddr)
		}
		a.log.Warn("agent call refused: wrong credentials", "remote", r.RemoteAddr)
		w.Header().Set("WWW-Authenticate", `Basic realm="xenagent"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if source != "" {
		a.authFailures.succeed(source)
	}
	// The call's duration goes to its log line and the metrics; without
	// either the clock is not read.
	logCall := a.log.Enabled(r.Context(), slog.LevelDebug)
	var start time.Time
	if logCall || a.metrics != nil {
		start = time.Now()
	}
	c := &call{req: r, boot: a.bootContext}
	defer c.end()
	method, params, err := xmlrpcwire.DecodeCall(http.MaxBytesReader(w, r.Body, xmlrpcwire.MaxCallBytes))
	decoded := err == nil
	var result any
	if err != nil {
		err = agentapi.Errorf(agentapi.FaultInvalidArgument, "malformed XML-RPC call: %v", err)
	} else {
		c.method, c.params = method, params
		result, err = a.dispatch(c)
	}
	buf := responseBuffers.Get().(*[]byte)
	defer putResponseBuffer(buf)
	body := (*buf)[:0]
	if err == nil {
		var encErr error
		if body, encErr = xmlrpcwire.AppendResponse(body, result); encErr != nil {
			a.log.Error("agent cannot encode a result", "method", method, "err", encErr)
			err = agentapi.Errorf(agentapi.FaultInternalError, "cannot encode the result of %s (see the agent log)", method)
		}
	}
	code := 0
	if err != nil {
		f, ok := agentapi.AsFault(err)
		if !ok {
			a.log.Error("agent call failed unexpectedly", "method", method, "err", err)
			f = agentapi.Errorf(agentapi.FaultInternalError, "%v", err)
		}
		code = int(f.Code)
		body = xmlrpcwire.AppendFault(body[:0], code, f.FaultString())
	}
	*buf = body
	if a.metrics != nil {
		a.metrics.callDone(a.methodLabel(method, decoded), err, time.Since(start))
	}
	if logCall {
		a.log.Debug("agent call", "method", method, "fault", code, "remote", r.RemoteAddr, "duration", time.Since(start))
	}
	if c.after == nil && a.isDown() {
		panic(http.ErrAbortHandler) // the host went down during the call
	}
	h := w.Header()
	h["Content-Type"] = xmlContentType
	if len(body) > ownLengthAnswer || c.after != nil { // after's Flush comes before the handler returns
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
	}
	writeAnswer(w, r, body)
	if c.after != nil {
		// The whole answer (its length is known) must be on the wire
		// before after cuts the connections.
		_ = http.NewResponseController(w).Flush()
		c.after()
	}
}

// methodLabel is a call's method as the metrics label it: a method of the
// table, or methodUnknown, or methodMalformed for a call that did not
// decode, so that no name a client sends becomes a label.
func (a *Agent) methodLabel(method string, decoded bool) string {
	if !decoded {
		return methodMalformed
	}
	if _, ok := a.methods[method]; ok {
		return method
	}
	return methodUnknown
}

// xmlContentType is the Content-Type of every answer, one slice for all:
// net/http only reads a header's values.
var xmlContentType = []string{"text/xml; charset=utf-8"}

// ownLengthAnswer is the largest answer whose Content-Length net/http
// works out by itself: one that fits the response's 2 kB buffer is
// written whole when the handler returns, with its length. A larger one
// gets it from the handler, or net/http would send it chunked.
const ownLengthAnswer = 2000

// heldAnswer is the size from which an answer is sent through
// heldConn.hold: beyond about 4 kB with its header, net/http would write it
// in two pieces.
const heldAnswer = 3 << 10

// writeAnswer writes body, the whole answer, in one send on the connection.
// A client gone away is not the agent's problem: errors are ignored.
func writeAnswer(w http.ResponseWriter, r *http.Request, body []byte) {
	hc, ok := r.Context().Value(heldConnKey{}).(*heldConn)
	if !ok || len(body) < heldAnswer {
		_, _ = w.Write(body) // fits net/http's buffer with the header
		return
	}
	hc.hold()
	defer hc.release()
	_, _ = w.Write(body)
	_ = http.NewResponseController(w).Flush()
}

// responseBuffers holds the buffers answers are encoded into, for reuse;
// one that grew beyond maxPooledResponse is dropped instead.
var responseBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

const maxPooledResponse = 256 << 10

func putResponseBuffer(b *[]byte) {
	if cap(*b) <= maxPooledResponse {
		responseBuffers.Put(b)
	}
}

// authorized checks basic auth in constant time; comparing hashes makes the
// comparison independent of the lengths too. Every call is checked: the
// header Go's and Python's clients write for the right credentials
// (basicAuthHeader) is recognised by its hash alone, one SHA-256 of about
// 40 bytes and no allocation; any other header, right or wrong, is decoded
// and its user and password compared by their hashes, as before. The
// first way takes no longer for a wrong header than for a right one, and
// which way a header took tells nothing about the password.
func (a *Agent) authorized(r *http.Request) bool {
	if h := r.Header["Authorization"]; len(h) == 1 {
		sum := sha256.Sum256([]byte(h[0]))
		if subtle.ConstantTimeCompare(sum[:], a.headerSum[:]) == 1 {
			return true
		}
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	return subtle.ConstantTimeCompare(u[:], a.userSum[:])&subtle.ConstantTimeCompare(p[:], a.passwordSum[:]) == 1
}

// basicAuthHeader is the Authorization header of basic auth for user and
// password, as net/http's and Python's clients write it.
func basicAuthHeader(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// dispatch checks the call against the method table and runs it. A panic in
// a method is logged and becomes an InternalError fault, so that one bad
// call cannot take the agent down.
func (a *Agent) dispatch(c *call) (result any, err error) {
	m, ok := a.methods[c.method]
	if !ok {
		return nil, agentapi.Errorf(agentapi.FaultInvalidArgument, "unknown method %s", c.method)
	}
	if err := m.check(c); err != nil {
		return nil, err
	}
	if !ungated[c.method] {
		// A server whose HA lease lapsed fences before it answers: an
		// agent resumed after SIGSTOP must not show or touch copies of
		// VMs that a peer has restarted by now.
		a.host.HAGate()
	}
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("agent method panicked", "method", c.method, "panic", p, "stack", string(debug.Stack()))
			result, err = nil, agentapi.Errorf(agentapi.FaultInternalError, "internal error in %s (see the agent log)", c.method)
		}
	}()
	if a.sim != nil {
		if err := a.sim.BeforeCall(c.context(), c.method); err != nil {
			return nil, err
		}
	}
	return m.fn(c)
}

// ungated are the calls answered without the HA gate: they say nothing
// about domains, and ha_status must tell about a lapsed lease as it is.
var ungated = map[string]bool{
	agentapi.MethodGetAPIVersion: true,
	agentapi.MethodEcho:          true,
	agentapi.MethodHAStatus:      true,
}

// call is one decoded call on its way through dispatch. It is used by the
// goroutine serving the call only.
type call struct {
	req    *http.Request
	boot   func() context.Context // the simulated host's life (Agent.bootContext)
	ctx    context.Context        // see context; nil until asked for
	stop   func()                 // ends ctx
	method string
	params []any
	// after, when a method sets it, runs once the answer is sent
	// (sys_reboot and sys_shutdown go down then).
	after func()
}

// context is the call's context: it ends with the connection, at
// Shutdown, or when the simulated host goes down. It is made when a method
// first asks for it: most calls end before anything could wait on it, and
// making it for each (a cancel func and a callback on the host's life)
// was a few per cent of a short call's CPU.
func (c *call) context() context.Context {
	if c.ctx == nil {
		ctx, cancel := context.WithCancel(c.req.Context())
		stopAfter := context.AfterFunc(c.boot(), cancel)
		c.ctx, c.stop = ctx, func() {
			stopAfter()
			cancel()
		}
	}
	return c.ctx
}

// end releases the call's context, if one was made.
func (c *call) end() {
	if c.stop != nil {
		c.stop()
	}
}

// localHost is the address the client reached the agent at, without port.
func (c *call) localHost() string {
	addr, ok := c.req.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return ""
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}
