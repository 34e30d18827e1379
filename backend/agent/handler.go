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

// answer is what serveCall sends for a request: an HTTP status, header
// fields (name, value...) and a body of type ctype in the buffer from
// answerHeadroom on; or nothing (abort), the connection cut.
type answer struct {
	status  int
	ctype   string
	fields  []string
	closing bool   // the connection closes after the answer
	abort   bool   // nothing is sent; the connection is cut
	after   func() // runs once the answer is sent (call.after)
}

// serveCall serves one call read from cc and sends its answer; false
// closes the connection.
func (a *Agent) serveCall(cc *agentConn, r *request) bool {
	buf := responseBuffers.Get().(*[]byte)
	defer putResponseBuffer(buf)
	ans := a.answer(cc, r, buf)
	if ans.abort {
		return false
	}
	// A call with something to run after its answer closes its connection
	// once the answer is sent, and says so: a client that kept the
	// connection for its next call would meet a reset.
	closing := r.close || ans.closing || ans.after != nil
	if !closing && !r.http11 {
		ans.fields = append(ans.fields, "Connection", "keep-alive") // HTTP/1.0 asked to keep it
	}
	sent := cc.writeAnswer(*buf, ans.status, ans.ctype, closing, ans.fields...)
	if ans.after != nil {
		// The whole answer is on the wire (one write); after cuts the
		// connections.
		ans.after()
		return false
	}
	return sent && !closing
}

// answer serves one XML-RPC call: POST on the protocol's paths, basic
// auth, then decode, dispatch and encode, the answer's body into *buf
// after answerHeadroom bytes. Failures after authentication are XML-RPC
// faults with HTTP 200, as XML-RPC wants.
func (a *Agent) answer(cc *agentConn, r *request, buf *[]byte) answer {
	if r.path != agentapi.Path && r.path != agentapi.PathRPC2 {
		return textAnswer(buf, http.StatusNotFound, "404 page not found")
	}
	if r.method != http.MethodPost {
		ans := textAnswer(buf, http.StatusMethodNotAllowed, "XML-RPC calls are POSTed")
		ans.fields = []string{"Allow", http.MethodPost}
		if r.method == http.MethodHead {
			*buf = (*buf)[:answerHeadroom]
		}
		return ans
	}
	// The back-off's source is worked out only when the back-off holds an
	// address or the password is wrong: parsing the remote address was 2
	// of an echo's 17 allocations.
	var source string
	if !a.authFailures.idle() {
		source = sourceOf(cc.remoteAddr())
		if d := a.authFailures.wait(source); d > 0 {
			// Unchecked, so that a right guess cannot show (authBackoff).
			ans := textAnswer(buf, http.StatusTooManyRequests, "too many wrong passwords from this address; retry later")
			ans.fields = []string{"Retry-After", strconv.Itoa(int((d + time.Second - 1) / time.Second))}
			return ans
		}
	}
	if !a.authorized(r) {
		if a.metrics != nil {
			a.metrics.unauthorized.Inc()
		}
		if _, _, given := basicAuth(r.auth); given && a.authFailures.fail(sourceOf(cc.remoteAddr())) {
			a.log.Warn("agent calls from this address refused for a while: too many wrong passwords", "remote", cc.remoteAddr())
		}
		a.log.Warn("agent call refused: wrong credentials", "remote", cc.remoteAddr())
		*buf = (*buf)[:answerHeadroom]
		return answer{status: http.StatusUnauthorized, fields: []string{"WWW-Authenticate", `Basic realm="xenagent"`}}
	}
	if source != "" {
		a.authFailures.succeed(source)
	}
	if r.expect { // 100-continue (checkRequest)
		if !cc.sendContinue() {
			return answer{abort: true}
		}
	}
	// The call's duration goes to its log line and the metrics; without
	// either the clock is not read.
	logCall := a.log.Enabled(a.base, slog.LevelDebug)
	var start time.Time
	if logCall || a.metrics != nil {
		start = time.Now()
	}
	c := &call{conn: cc, base: a.base, boot: a.bootContext}
	defer c.end()
	method, params, err := xmlrpcwire.DecodeCall(r.body)
	decoded := err == nil
	var result any
	if err != nil {
		err = agentapi.Errorf(agentapi.FaultInvalidArgument, "malformed XML-RPC call: %v", err)
	} else {
		c.method, c.params = method, params
		result, err = a.dispatch(c)
	}
	body := (*buf)[:answerHeadroom]
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
		body = xmlrpcwire.AppendFault(body[:answerHeadroom], code, f.FaultString())
	}
	*buf = body
	if a.metrics != nil {
		a.metrics.callDone(a.methodLabel(method, decoded), err, time.Since(start))
	}
	if logCall {
		a.log.Debug("agent call", "method", method, "fault", code, "remote", cc.remoteAddr(), "duration", time.Since(start))
	}
	if c.after == nil && a.isDown() {
		return answer{abort: true} // the host went down during the call
	}
	return answer{status: http.StatusOK, ctype: xmlContentTypeText, after: c.after}
}

// textAnswer is an answer of status with a line of text.
func textAnswer(buf *[]byte, status int, text string) answer {
	b := append((*buf)[:answerHeadroom], text...)
	*buf = append(b, '\n')
	return answer{status: status, ctype: "text/plain; charset=utf-8"}
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

// xmlContentTypeText is the Content-Type of every XML-RPC answer.
const xmlContentTypeText = "text/xml; charset=utf-8"

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
func (a *Agent) authorized(r *request) bool {
	if r.nAuth == 1 {
		sum := sha256.Sum256(r.auth)
		if subtle.ConstantTimeCompare(sum[:], a.headerSum[:]) == 1 {
			return true
		}
	}
	if r.nAuth == 0 {
		return false
	}
	user, pass, ok := basicAuth(r.auth)
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
	conn   *agentConn             // the connection it came on
	base   context.Context        // the agent's life (Agent.base)
	boot   func() context.Context // the simulated host's life (Agent.bootContext)
	ctx    context.Context        // see context; nil until asked for
	stop   func()                 // ends ctx
	method string
	params []any
	// after, when a method sets it, runs once the answer is sent
	// (sys_reboot and sys_shutdown go down then).
	after func()
}

// context is the call's context: it ends with the connection (the client
// going away, or readTimeout from the request's first byte, as under
// net/http), at Shutdown, or when the simulated host goes down. It is made
// when a method first asks for it: most calls end before anything could
// wait on it, and making it for each (a cancel func, a callback on the
// host's life and a background read of the connection) was a few per cent
// of a short call's CPU.
func (c *call) context() context.Context {
	if c.ctx == nil {
		ctx, cancel := context.WithCancel(c.base)
		if c.conn != nil {
			c.conn.watch(cancel)
		}
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
		if c.conn != nil {
			c.conn.stopWatch()
		}
	}
}

// localHost is the address the client reached the agent at, without port.
func (c *call) localHost() string {
	if c.conn == nil || c.conn.raw == nil {
		return ""
	}
	addr := c.conn.localAddr()
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}
