package agentclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kolo/xmlrpc"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentapi/xmlrpcwire"
)

// maxAnswer bounds the answer a call reads: list_vms of a full server is
// some tens of kB; an agent that sends more is not believed.
const maxAnswer = xmlrpcwire.MaxResponseBytes

// maxFaultMessage bounds the part of a fault's text kept in its error: the
// agent's messages are a line; more is cut.
const maxFaultMessage = 4 << 10

// maxTagDepth bounds how deeply the elements of an answer decoded by kolo
// may nest (checkDepth): a value is three elements deeper than the one that
// holds it (<value><array><data>, <value><struct><member>), as deep as
// xmlrpcwire allows, below <methodResponse><params><param>.
const maxTagDepth = 3 + 3*xmlrpcwire.MaxDepth + 1

// wireMethods are the methods whose call and answer go through xmlrpcwire
// (the agent's own codec) rather than kolo's: the calls the watcher makes
// of every server at every beat or reconciliation, where kolo's reflection
// over encoding/xml's tokens was most of the manager's CPU
// (docs/performance.md, figure 6).
var wireMethods = map[string]bool{
	agentapi.MethodGetEvents: true,
	agentapi.MethodListVMs:   true,
}

// errNotResponse is the error of an answer that is not a methodResponse of
// XML-RPC: it quotes nothing of it.
var errNotResponse = errors.New("the answer is not a methodResponse of XML-RPC")

// callWay is how a call takes its slot and its connection (call).
type callWay int

const (
	// pooled: a slot among Conns, a keep-alive connection of the pool.
	pooled callWay = iota
	// fresh: a slot among Conns, a connection of its own, closed after.
	fresh
	// held: the held slot, beside the Conns (GetEventsWait), and a
	// keep-alive connection of the pool: a call the agent holds never
	// keeps another call waiting for a slot.
	held
)

// call is the one way every method is called, whatever its codec: it
// checks the arguments, takes its slot (way: among Conns, or the held
// one), writes the call on a keep-alive connection of the pool (fresh,
// and closed after, for way fresh) in the caller's goroutine, bounded by ctx and, when timeout is not
// zero, that timeout, reads the answer's headers up to maxAnswerHeader and
// its body up to maxAnswer, and decodes it into result (a pointer, or nil
// to discard it). Ending ctx ends the call at once and closes its
// connection, which the agent sees. The error, when not nil, is a
// *CallError.
func (c *Client) call(ctx context.Context, way callWay, timeout time.Duration, method string, result any, args []any) error {
	sem := c.sem
	if way == held {
		sem = c.heldSem
	}
	if err := c.acquire(ctx, sem, method, args); err != nil {
		return err
	}
	defer func() { <-sem }()
	one := way == fresh
	fail := func(err error) error { return &CallError{method, c.Address(), err} }
	buf := getBuffer()
	defer putBuffer(buf)
	body, err := encodeCall((*buf)[:0], method, args)
	if err != nil {
		return fail(fmt.Errorf("%w: %w", ErrInvalidCall, err))
	}
	*buf = body
	rctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	// ended says why a call that failed on the way failed: ctx's own end,
	// the call's timeout, or the connection's error.
	ended := func(err error) error {
		switch {
		case ctx.Err() != nil:
			return fail(fmt.Errorf("%w: %w", ErrUnreachable, ctx.Err()))
		case rctx.Err() != nil:
			return fail(fmt.Errorf("%w: no answer within %s", ErrUnreachable, timeout))
		}
		return fail(classifyTransportError(err))
	}
	var cn *conn
	if !one {
		cn = c.pool.get()
	}
	if cn == nil {
		if cn, err = c.dial(rctx); err != nil {
			return ended(err)
		}
	}
	// keep says whether cn goes back to the pool: only after an answer
	// read to its end, with nothing after it.
	keep := false
	defer func() {
		if keep && !one {
			c.pool.put(cn)
		} else {
			cn.raw.Close()
		}
	}()
	stop := context.AfterFunc(rctx, func() { cn.raw.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if !stop() && keep {
			keep = false // the deadline in the past is set, or about to be
		}
	}()

	head := c.head + strconv.Itoa(len(body)) + "\r\n\r\n"
	cn.bw.WriteString(head)
	cn.bw.Write(body)
	if err := cn.bw.Flush(); err != nil {
		return ended(err)
	}
	cn.lim.n = maxAnswerHeader
	resp, err := http.ReadResponse(cn.br, nil)
	switch {
	case errors.Is(err, errTooLong):
		return fail(fmt.Errorf("%w: the answer's headers are longer than %d bytes", ErrProtocol, maxAnswerHeader))
	case err != nil:
		return ended(err)
	}
	// The body's framing (chunks) may add to its length, not double it.
	cn.lim.n = 2*maxAnswer + int64(cn.br.Size())
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return fail(ErrUnauthorized)
	case resp.StatusCode == http.StatusTooManyRequests:
		return fail(ErrTooManyFailures)
	case resp.StatusCode < 200 || resp.StatusCode >= 300:
		return fail(fmt.Errorf("%w: HTTP status %d", ErrProtocol, resp.StatusCode))
	case resp.ContentLength > maxAnswer:
		return fail(fmt.Errorf("%w: the answer is longer than %d bytes", ErrProtocol, maxAnswer))
	}
	// The call is written: its buffer takes the answer.
	data, err := readAnswer(body[:0], resp.Body, resp.ContentLength)
	*buf = data
	switch {
	case errors.Is(err, errTooLong):
		return fail(fmt.Errorf("%w: the answer is longer than %d bytes", ErrProtocol, maxAnswer))
	case err != nil:
		return ended(err)
	}
	keep = !resp.Close && cn.br.Buffered() == 0
	raw, err := decodeAnswer(method, data)
	var fault *xmlrpcwire.Fault
	switch {
	case errors.As(err, &fault):
		return fail(agentapi.ParseFaultString(agentapi.FaultCode(fault.Code), capFault(fault.String)))
	case err != nil:
		return fail(fmt.Errorf("%w: %w", ErrProtocol, errNotResponse))
	}
	if result == nil {
		return nil
	}
	if err := agentapi.Decode(raw, result); err != nil {
		// agentapi.Decode's error may quote the value it was given.
		return fail(fmt.Errorf("%w: the answer does not fit a %T", ErrProtocol, result))
	}
	return nil
}

// encodeCall appends method's call with args to b, in the method's codec.
func encodeCall(b []byte, method string, args []any) ([]byte, error) {
	if wireMethods[method] {
		w := bytes.NewBuffer(b)
		err := xmlrpcwire.EncodeCall(w, method, args...)
		return w.Bytes(), err
	}
	body, err := xmlrpc.EncodeMethodCall(method, args...)
	return append(b, body...), err
}

// decodeAnswer decodes a methodResponse in method's codec into the generic
// values agentapi.Decode reads; a fault is a *xmlrpcwire.Fault.
func decodeAnswer(method string, data []byte) (any, error) {
	if wireMethods[method] {
		return xmlrpcwire.DecodeResponse(data)
	}
	// kolo takes the first <value> of anything as the answer: hold it to
	// a methodResponse, and its recursive decoder to a bounded depth.
	if !bytes.Contains(data, []byte("<methodResponse>")) {
		return nil, errNotResponse
	}
	if err := checkDepth(data, maxTagDepth); err != nil {
		return nil, err
	}
	resp := xmlrpc.Response(data)
	if err := resp.Err(); err != nil {
		var f xmlrpc.FaultError
		if errors.As(err, &f) {
			return nil, &xmlrpcwire.Fault{Code: int64(f.Code), String: f.String}
		}
		return nil, errNotResponse
	}
	var raw any
	if err := resp.Unmarshal(&raw); err != nil {
		return nil, errNotResponse
	}
	return raw, nil
}

// checkDepth fails if the elements of data nest deeper than max: kolo's
// decoder recurses once per level, and a hostile answer of 8 MiB could
// otherwise nest hundreds of thousands of levels. Declarations, comments
// and CDATA (<? and <!) are not counted; anything odd enough to be
// miscounted is not what an agent writes, and at worst is refused.
func checkDepth(data []byte, max int) error {
	depth := 0
	for i := 0; ; {
		j := bytes.IndexByte(data[i:], '<')
		if j < 0 || i+j+1 >= len(data) {
			return nil
		}
		i += j + 1
		switch data[i] {
		case '/':
			depth--
			continue
		case '?', '!':
			continue
		}
		k := bytes.IndexByte(data[i:], '>')
		if k < 0 {
			return nil // unterminated: the decoder says so
		}
		if k > 0 && data[i+k-1] == '/' { // <empty/>
			i += k + 1
			continue
		}
		if depth++; depth > max {
			return fmt.Errorf("elements nested deeper than %d", max)
		}
		i += k + 1
	}
}

// capFault cuts a fault's text to maxFaultMessage bytes, on a character
// boundary.
func capFault(s string) string {
	if len(s) <= maxFaultMessage {
		return s
	}
	s = s[:maxFaultMessage]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + " [cut]"
}

var errTooLong = errors.New("answer too long")

// readAnswer reads r to its end into b, at most maxAnswer bytes (more is
// errTooLong); size, when not negative, is the length the answer
// announced.
func readAnswer(b []byte, r io.Reader, size int64) ([]byte, error) {
	if size >= 0 && int64(cap(b)) < size+1 {
		b = make([]byte, 0, size+1) // +1: the read that finds the end
	}
	lr := io.LimitedReader{R: r, N: maxAnswer + 1}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if len(b) > maxAnswer {
			return b, errTooLong
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// buffers holds the buffers calls encode into and read answers into: the
// decoded values never point into them.
var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

func getBuffer() *[]byte { return buffers.Get().(*[]byte) }

// putBuffer keeps buffers of up to 256 kB (a list_vms of a full server is
// well under it); larger ones go to the collector.
func putBuffer(b *[]byte) {
	if cap(*b) <= 256<<10 {
		*b = (*b)[:0]
		buffers.Put(b)
	}
}

// classifyTransportError turns an error of the HTTP round trip into the
// package's: the pin's error as verify made it, ErrUnreachable for the
// network, TLS and a connection that broke off. The transport's own text
// of an answer that is not HTTP quotes the answer; that is not repeated.
func classifyTransportError(err error) error {
	if pinErr := findPinError(err); pinErr != nil {
		return pinErr
	}
	inner := err
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		inner = urlErr.Err
	}
	var netErr net.Error
	var alert tls.AlertError
	var recordErr tls.RecordHeaderError
	var certErr *tls.CertificateVerificationError
	var x509Err x509.CertificateInvalidError
	switch text := inner.Error(); {
	case strings.Contains(text, "malformed HTTP") || strings.Contains(text, "malformed MIME") || strings.Contains(text, `"`):
		// net/http quotes the line it could not read.
		return fmt.Errorf("%w: the answer is not HTTP", ErrProtocol)
	case errors.As(inner, &netErr), errors.As(inner, &alert), errors.As(inner, &recordErr),
		errors.As(inner, &certErr), errors.As(inner, &x509Err):
		return fmt.Errorf("%w: %w", ErrUnreachable, inner)
	case errors.Is(inner, io.EOF), errors.Is(inner, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: the connection closed before the answer was complete", ErrUnreachable)
	case urlErr != nil:
		return fmt.Errorf("%w: the connection failed", ErrUnreachable)
	}
	return fmt.Errorf("%w: the call failed", ErrProtocol)
}

// findPinError returns the error made by verify (which names both
// fingerprints) from the chain the HTTP client wrapped it in, or nil.
func findPinError(err error) error {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if errors.Unwrap(e) == ErrCertificateChanged {
			return e
		}
	}
	return nil
}
