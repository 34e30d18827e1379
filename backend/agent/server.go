package agent

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// The agent serves its one kind of request, a POSTed XML-RPC call with its
// length, on keep-alive TLS connections in a loop of its own rather than
// through net/http's server: net/http read each request into header maps,
// ran a background read per request (a goroutine, two read deadlines and a
// condition variable) so that the handler's context could end when the
// client went away, and wrote the answer through its response writer and
// two buffers. Here the common request is parsed in place from the
// connection's buffer (parseCommon, request.go) and any other by net/http
// (http.ReadRequest, which validates the request line, the header fields
// and the body's framing, then checkRequest); the connection's reads set a
// deadline only when they reach the network, the background read runs only for a call that asked for its
// context (call.context), and the answer, header and body, is built in one
// buffer and written in one TLS write. The bounds are those net/http had:
// readHeaderTimeout, readTimeout, idleTimeout, maxHeaderBytes, the TLS
// handshake within readHeaderTimeout, no write timeout.

// serverBounds are the bounds of the HTTPS server: readHeaderTimeout,
// readTimeout, idleTimeout and maxHeaderBytes unless a test shortens them.
type serverBounds struct {
	headerTimeout, readTimeout, idleTimeout time.Duration
	maxHeaderBytes                          int64
}

// headerSlack is how much a request's header may exceed maxHeaderBytes, as
// net/http allows (its initialReadLimitSize).
const headerSlack = 4096

// idleSlack is how much earlier than idleTimeout an idle connection may be
// cut: the idle deadline is set again only when the one set is more than
// idleSlack older than it would be now, not once per request.
const idleSlack = time.Second

// maxDrainBytes is how much of a request body the handler did not read is
// read and dropped so that the connection can serve the next request (as
// net/http's server does); a connection with more is closed.
const maxDrainBytes = 256 << 10

// tlsRecordBytes is the most a TLS record carries: an answer longer than
// this goes out in several records, held and sent in one write (heldConn).
const tlsRecordBytes = 16 << 10

// answerHeadroom is the room left before an answer's body in its buffer
// for its status line and header fields, so that both go out from one
// buffer without a copy of the body.
const answerHeadroom = 192

// errServerClosed is what Serve returns on a closed listener once Shutdown
// or close was called; Serve turns it into nil.
var errServerClosed = errors.New("agent: server closed")

// aLongTimeAgo is a read deadline in the past: it ends a pending read at
// once.
var aLongTimeAgo = time.Unix(1, 0)

// connState is where a connection is in its loop, for Shutdown.
const (
	connActive int32 = iota // reading or serving a request
	connIdle                // waiting for the first byte of the next request
	connClosed              // closed by Shutdown while idle
)

// agentConn is one accepted TLS connection and its serving loop. Its fields
// are used by the goroutine serving it only, but for state (Shutdown reads
// and changes it) and the background read's (watch).
type agentConn struct {
	a     *Agent
	raw   net.Conn // the TCP connection
	held  *heldConn
	tls   *tls.Conn
	cr    connReader
	br    *bufio.Reader
	state atomic.Int32
	// remote is raw.RemoteAddr().String(), made when first needed.
	remote string
	// date caches the Date field of the answers for the second dateSec.
	dateSec int64
	date    [len(http.TimeFormat)]byte
	// t0 is when the current request's first byte was seen.
	t0 time.Time
	// req and body are the current request when parseCommon read it.
	req  request
	body io.LimitedReader
	// watching is set while a background read (watch) waits on the
	// connection; watchDone then receives its outcome.
	watching  bool
	watchDone chan watchResult
	gone      bool // the background read saw the client go away
}

type watchResult struct {
	n   int
	err error
}

// connReader is what a connection's bufio.Reader reads from: the TLS
// connection, with the read deadline of the request's phase set only when
// a read reaches the network, the byte a background read took, and the
// bound of a request's header.
type connReader struct {
	conn net.Conn
	// want is the deadline the current phase wants and slack how much
	// earlier than want the deadline set on conn (set) may be.
	want, set time.Time
	slack     time.Duration
	// limited bounds the bytes read to remain; hitLimit records that a
	// read was refused for it.
	limited  bool
	remain   int64
	hitLimit bool
	hasByte  bool
	byteBuf  [1]byte
}

func (r *connReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if r.limited {
		if r.remain <= 0 {
			r.hitLimit = true
			return 0, io.EOF
		}
		if int64(len(p)) > r.remain {
			p = p[:r.remain]
		}
	}
	if r.hasByte {
		p[0] = r.byteBuf[0]
		r.hasByte = false
		r.remain--
		return 1, nil
	}
	if r.set.After(r.want) || r.set.Before(r.want.Add(-r.slack)) {
		if err := r.conn.SetReadDeadline(r.want); err != nil {
			return 0, err
		}
		r.set = r.want
	}
	n, err := r.conn.Read(p)
	r.remain -= int64(n)
	return n, err
}

// phase makes the connection's reads from now on use deadline d, set late
// by up to slack.
func (r *connReader) phase(d time.Time, slack time.Duration) { r.want, r.slack = d, slack }

// Serve accepts TLS connections on l and serves calls, concurrently and with
// keep-alive, until Shutdown; it then returns nil.
func (a *Agent) Serve(l net.Listener) error {
	if host, _, err := net.SplitHostPort(l.Addr().String()); err == nil {
		a.mu.Lock()
		a.listenHost = host
		a.mu.Unlock()
	}
	a.mu.Lock()
	if a.shutting.Load() {
		a.mu.Unlock()
		l.Close()
		return nil
	}
	a.listener = l
	a.mu.Unlock()
	cfg := &tls.Config{
		Certificates: []tls.Certificate{a.cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
		// Full-size records from a connection's first answer: crypto/tls
		// otherwise sends its first 128 kB in records of a packet each (a
		// 13.8 kB list_vms in ten). Same ciphers, same strength.
		DynamicRecordSizingDisabled: true,
	}
	a.log.Info("agent serving", "address", l.Addr().String(), "hostname", a.cfg.Hostname, "spki_sha256", a.spki)
	gl := gateListener{l, a}
	var backoff time.Duration
	for {
		raw, err := gl.Accept()
		if err != nil {
			if a.shutting.Load() {
				return nil
			}
			if temporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				a.log.Warn("agent accept failed; retrying", "err", err, "delay", backoff)
				t := time.NewTimer(backoff)
				select {
				case <-t.C:
				case <-a.base.Done():
					t.Stop()
				}
				continue
			}
			return err
		}
		backoff = 0
		held := &heldConn{Conn: raw}
		cc := &agentConn{a: a, raw: raw, held: held, tls: tls.Server(held, cfg)}
		if !a.addConn(cc) {
			raw.Close()
			continue
		}
		go cc.serve()
	}
}

// temporary reports whether err is one an accept loop should wait out
// (too many open files and the like), as net/http's does.
func temporary(err error) bool {
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary()
}

// addConn records cc among the open connections, unless the server is
// shutting down.
func (a *Agent) addConn(cc *agentConn) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.shutting.Load() {
		return false
	}
	a.conns[cc] = struct{}{}
	return true
}

// removeConn forgets cc; the last one gone after Shutdown ends its wait.
func (a *Agent) removeConn(cc *agentConn) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.conns, cc)
	if len(a.conns) == 0 && a.drained != nil {
		close(a.drained)
		a.drained = nil
	}
}

// closeServer stops accepting and closes every connection, calls in flight
// included (net/http's Server.Close): for sys_shutdown.
func (a *Agent) closeServer() {
	a.mu.Lock()
	a.shutting.Store(true)
	l := a.listener
	a.mu.Unlock()
	if l != nil {
		l.Close()
	}
	a.closeConns()
}

// shutdownServer stops accepting, closes the idle connections and waits
// for the others to finish their call (they close after it), or for ctx to
// end (net/http's Server.Shutdown).
func (a *Agent) shutdownServer(ctx context.Context) error {
	a.mu.Lock()
	a.shutting.Store(true)
	l := a.listener
	var idle []*agentConn
	for cc := range a.conns {
		if cc.state.CompareAndSwap(connIdle, connClosed) {
			idle = append(idle, cc)
		}
	}
	var drained chan struct{}
	if len(a.conns) > 0 {
		if a.drained == nil {
			a.drained = make(chan struct{})
		}
		drained = a.drained
	}
	a.mu.Unlock()
	if l != nil {
		l.Close()
	}
	for _, cc := range idle {
		cc.raw.Close()
	}
	if drained == nil {
		return nil
	}
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// closeConns closes every open connection of the HTTPS server.
func (a *Agent) closeConns() {
	a.mu.Lock()
	conns := make([]*agentConn, 0, len(a.conns))
	for c := range a.conns {
		conns = append(conns, c)
	}
	a.mu.Unlock()
	for _, c := range conns {
		c.raw.Close()
	}
}

// serve runs the connection's TLS handshake and then its requests, one
// after the other, until the client closes, a bound or an error ends the
// connection, or the server shuts down.
func (cc *agentConn) serve() {
	a := cc.a
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("agent connection failed", "remote", cc.remoteAddr(), "panic", p)
		}
		cc.stopWatch()
		cc.raw.Close()
		a.removeConn(cc)
	}()
	dl := time.Now().Add(a.bounds.headerTimeout)
	_ = cc.raw.SetDeadline(dl)
	if err := cc.tls.HandshakeContext(a.base); err != nil {
		a.log.Debug("agent TLS handshake failed", "remote", cc.remoteAddr(), "err", err)
		return
	}
	_ = cc.raw.SetWriteDeadline(time.Time{})
	cc.cr = connReader{conn: cc.tls, set: dl}
	cc.br = bufio.NewReaderSize(&cc.cr, 4<<10)
	for {
		if !cc.next() {
			return
		}
	}
}

// next waits for a request, reads and answers it; false ends the
// connection.
func (cc *agentConn) next() bool {
	a := cc.a
	// Idle: the deadline is idleTimeout from now, give or take idleSlack.
	cc.state.Store(connIdle)
	// Shutdown stores shutting before it looks for idle connections: it
	// either sees this one idle or is seen here.
	if a.shutting.Load() && cc.state.CompareAndSwap(connIdle, connClosed) {
		return false
	}
	cc.cr.phase(time.Now().Add(a.bounds.idleTimeout), min(idleSlack, a.bounds.idleTimeout/2))
	if _, err := cc.br.Peek(1); err != nil {
		return false
	}
	if !cc.state.CompareAndSwap(connIdle, connActive) {
		return false // Shutdown closed it
	}
	if a.isDown() {
		return false // a host that is down answers nothing
	}
	cc.t0 = time.Now()
	req := cc.readRequest()
	if req == nil {
		return false
	}
	keep := cc.a.serveCall(cc, req)
	if !keep || cc.gone {
		return false
	}
	// What the handler left of the body is read and dropped, within a
	// bound, so that the next request can be read.
	n, err := io.CopyN(io.Discard, req.body, maxDrainBytes+1)
	if err != io.EOF || n > maxDrainBytes {
		return false
	}
	return !req.close
}

// readRequest reads the request whose first byte has arrived: the common
// one from the buffer (parseCommon), any other with http.ReadRequest,
// which net/http's server used, within the header's bounds. It answers
// and returns nil for a request it refuses.
func (cc *agentConn) readRequest() *request {
	a := cc.a
	buffered, _ := cc.br.Peek(cc.br.Buffered())
	if n, length := parseCommon(buffered, &cc.req); n > 0 {
		_, _ = cc.br.Discard(n)
		cc.body = io.LimitedReader{R: cc.br, N: length}
		cc.req.body = &cc.body
		cc.cr.phase(cc.t0.Add(a.bounds.readTimeout), 0)
		return &cc.req
	}
	cc.cr.phase(cc.t0.Add(a.bounds.headerTimeout), 0)
	cc.cr.limited, cc.cr.remain, cc.cr.hitLimit = true, a.bounds.maxHeaderBytes+headerSlack, false
	req, err := http.ReadRequest(cc.br)
	cc.cr.limited = false
	if err != nil {
		cc.refuse(requestError(err, cc.cr.hitLimit))
		return nil
	}
	cc.cr.phase(cc.t0.Add(a.bounds.readTimeout), 0)
	if ans, bad := checkRequest(req); bad {
		cc.refuse(ans)
		return nil
	}
	return fromHTTP(req)
}

// remoteAddr is the client's address, host:port.
func (cc *agentConn) remoteAddr() string {
	if cc.remote == "" {
		cc.remote = cc.raw.RemoteAddr().String()
	}
	return cc.remote
}

// localAddr is the address the client reached the agent at.
func (cc *agentConn) localAddr() net.Addr { return cc.raw.LocalAddr() }

// refusal is an HTTP answer to a request that is not served: its status,
// its header fields and a short text.
type refusal struct {
	status int
	fields []string // name, value, name, value...
	text   string
}

// requestError is the answer to a request http.ReadRequest could not read:
// 431 beyond the header's bound, 400 otherwise; none when the connection
// ended (the client went away or was idle too long).
func requestError(err error, hitLimit bool) refusal {
	if hitLimit {
		return refusal{status: http.StatusRequestHeaderFieldsTooLarge, text: "request header too large"}
	}
	var ne net.Error
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne) {
		return refusal{} // nothing to answer, or no one to answer to
	}
	return refusal{status: http.StatusBadRequest, text: "malformed HTTP request"}
}

// checkRequest refuses what net/http's server refuses of a request
// http.ReadRequest read: another major version, a missing Host in
// HTTP/1.1, a field name that is not a token (textproto lets spaces
// through), an Expect other than 100-continue.
func checkRequest(req *http.Request) (refusal, bool) {
	if req.ProtoMajor != 1 {
		return refusal{status: http.StatusHTTPVersionNotSupported, text: "unsupported protocol version"}, true
	}
	for name := range req.Header {
		if !validFieldName(name) {
			return refusal{status: http.StatusBadRequest, text: "invalid header name"}, true
		}
	}
	// http.ReadRequest refuses two Host fields and takes the one out of
	// the header.
	if req.ProtoAtLeast(1, 1) && req.Host == "" {
		return refusal{status: http.StatusBadRequest, text: "missing required Host header"}, true
	}
	if e := req.Header["Expect"]; len(e) > 0 && (len(e) > 1 || !strings.EqualFold(e[0], "100-continue")) {
		return refusal{status: http.StatusExpectationFailed, text: "unsupported Expect"}, true
	}
	return refusal{}, false
}

// validFieldName reports whether name is an HTTP token (RFC 9110 5.1).
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// refuse answers r, when it has a status, and closes the connection
// gently: what the client sent after is read and dropped for a moment, so
// that the answer is not lost to a reset.
func (cc *agentConn) refuse(r refusal) {
	if r.status == 0 {
		return
	}
	b := cc.appendHead(nil, r.status, "text/plain; charset=utf-8", len(r.text)+1, true, r.fields...)
	b = append(b, r.text...)
	b = append(b, '\n')
	cc.closeAfter(b)
}

// closeAfter writes the answer b and closes the connection gently.
func (cc *agentConn) closeAfter(b []byte) {
	if _, err := cc.tls.Write(b); err != nil {
		return
	}
	_ = cc.tls.CloseWrite()
	if tc, ok := cc.raw.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
	}
	_ = cc.raw.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	_, _ = io.Copy(io.Discard, io.LimitReader(cc.raw, maxDrainBytes))
}

// appendHead appends the status line and header fields of an answer whose
// body has n bytes of type ctype; fields are more (name, value...).
func (cc *agentConn) appendHead(b []byte, status int, ctype string, n int, closing bool, fields ...string) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\n"...)
	for i := 0; i+1 < len(fields); i += 2 {
		b = append(b, fields[i]...)
		b = append(b, ": "...)
		b = append(b, fields[i+1]...)
		b = append(b, "\r\n"...)
	}
	if closing {
		b = append(b, "Connection: close\r\n"...)
	}
	if ctype != "" {
		b = append(b, "Content-Type: "...)
		b = append(b, ctype...)
		b = append(b, "\r\n"...)
		if strings.HasPrefix(ctype, "text/plain") {
			b = append(b, "X-Content-Type-Options: nosniff\r\n"...)
		}
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, "\r\nDate: "...)
	b = append(b, cc.dateField()...)
	return append(b, "\r\n\r\n"...)
}

// dateField is the Date of an answer sent now, formatted once a second.
func (cc *agentConn) dateField() []byte {
	now := time.Now()
	if s := now.Unix(); s != cc.dateSec {
		cc.dateSec = s
		now.UTC().AppendFormat(cc.date[:0], http.TimeFormat)
	}
	return cc.date[:]
}

// writeAnswer sends an answer: its status line and header fields
// (appendHead) and its body, which starts at answerHeadroom in buf, in one
// write on the TCP connection. It reports whether the write went through.
func (cc *agentConn) writeAnswer(buf []byte, status int, ctype string, closing bool, fields ...string) bool {
	body := buf[answerHeadroom:]
	var head [answerHeadroom]byte
	h := cc.appendHead(head[:0], status, ctype, len(body), closing, fields...)
	var out []byte
	if len(h) <= answerHeadroom {
		out = buf[answerHeadroom-len(h):]
		copy(out, h)
	} else {
		out = append(h, body...) // more fields than the headroom: not an answer of the hot path
	}
	if len(out) <= tlsRecordBytes {
		_, err := cc.tls.Write(out)
		return err == nil
	}
	// Several TLS records: held and sent in one write (heldConn).
	cc.held.hold()
	_, err := cc.tls.Write(out)
	if rerr := cc.held.release(); err == nil {
		err = rerr
	}
	return err == nil
}

// sendContinue answers a request's Expect: 100-continue before its body
// is read; false when the client is gone.
func (cc *agentConn) sendContinue() bool {
	if cc.tls == nil {
		return true
	}
	_, err := cc.tls.Write([]byte("HTTP/1.1 100 Continue\r\n\r\n"))
	return err == nil
}

// watch starts the background read that ends cancel's context when the
// client goes away during a call, as net/http's did for every request; it
// runs only for the calls that ask for their context. The read's deadline
// is the request's (readTimeout from its first byte), as under net/http.
func (cc *agentConn) watch(cancel context.CancelFunc) {
	if cc.watching || cc.tls == nil {
		return
	}
	cc.watching = true
	if cc.watchDone == nil {
		cc.watchDone = make(chan watchResult, 1)
	}
	if !cc.cr.set.Equal(cc.cr.want) {
		_ = cc.tls.SetReadDeadline(cc.cr.want)
		cc.cr.set = cc.cr.want
	}
	done := cc.watchDone
	go func() {
		n, err := cc.tls.Read(cc.cr.byteBuf[:])
		if n == 0 && err != nil {
			cancel() // the client went away, or the request's time is up
		}
		done <- watchResult{n, err}
	}()
}

// stopWatch ends the background read, if one runs, and keeps the byte it
// read (the start of a pipelined request).
func (cc *agentConn) stopWatch() {
	if !cc.watching {
		return
	}
	cc.watching = false
	_ = cc.tls.SetReadDeadline(aLongTimeAgo)
	r := <-cc.watchDone
	cc.cr.set = aLongTimeAgo // the next read sets its own
	if r.n == 1 {
		cc.cr.hasByte = true
		return
	}
	var ne net.Error
	if !(errors.As(r.err, &ne) && ne.Timeout()) {
		cc.gone = true
	}
}
