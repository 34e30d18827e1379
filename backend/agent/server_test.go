package agent

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentapi/xmlrpcwire"
)

// startBoundedAgent serves an agent whose server bounds bound changes
// before it serves (nil keeps them).
func startBoundedAgent(t *testing.T, bound func(*serverBounds)) (*Agent, string) {
	t.Helper()
	a, err := New(Config{DataDir: t.TempDir(), Password: testPassword, Hostname: "xen-test", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if bound != nil {
		bound(&a.bounds)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- a.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return a, l.Addr().String()
}

// rawClient is a TLS connection to the agent on which a test writes
// requests byte for byte and reads the answers.
type rawClient struct {
	c  *tls.Conn
	br *bufio.Reader
}

func dialAgent(t *testing.T, addr string) *rawClient {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // a test of the framing, not of the pin
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{c: c, br: bufio.NewReader(c)}
}

func (rc *rawClient) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(rc.c, s); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// answer reads one answer and its body.
func (rc *rawClient) answer(t *testing.T) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read answer's body: %v", err)
	}
	return resp, string(body)
}

// closed reports whether the agent closed the connection (the next read
// ends without data).
func (rc *rawClient) closed() bool {
	_, err := rc.br.ReadByte()
	return err != nil
}

var rightAuth = "Basic " + base64.StdEncoding.EncodeToString([]byte(agentapi.AgentUser+":"+testPassword))

// echoCall is the XML of an echo of msg.
func echoCall(msg string) string {
	return "<?xml version=\"1.0\"?><methodCall><methodName>echo</methodName><params><param><value><string>" +
		msg + "</string></value></param></params></methodCall>"
}

// rawRequest is an HTTP request for the agent: line is the request line,
// fields the header lines (each with its CRLF), body the body.
func rawRequest(line, fields, body string) string {
	return line + "\r\n" + fields + "\r\n" + body
}

// callRequest is a well-formed call of method with one string.
func callRequest(method, msg string) string {
	return postRequest(strings.Replace(echoCall(msg), "<methodName>echo<", "<methodName>"+method+"<", 1))
}

// postRequest is a well-formed POST of body with the right credentials.
func postRequest(body string) string {
	return rawRequest("POST "+agentapi.Path+" HTTP/1.1",
		fmt.Sprintf("Host: agent\r\nAuthorization: %s\r\nContent-Length: %d\r\n", rightAuth, len(body)), body)
}

// echoRequest is a well-formed echo call with the right credentials and
// more header lines.
func echoRequest(msg, more string) string {
	body := echoCall(msg)
	return rawRequest("POST "+agentapi.Path+" HTTP/1.1",
		fmt.Sprintf("Host: agent\r\nAuthorization: %s\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n%s", rightAuth, len(body), more), body)
}

// TestServerFraming sends the agent's own server well-formed, odd and
// hostile requests on a raw TLS connection and checks each answer, whether
// the connection is kept, and, when kept, that the next call is served.
func TestServerFraming(t *testing.T) {
	_, addr := startBoundedAgent(t, nil)
	body := echoCall("hi")
	chunked := fmt.Sprintf("%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n", 10, body[:10], len(body)-10, body[10:])
	tests := []struct {
		name     string
		send     string
		status   int    // 0: no answer at all
		contains string // in the answer's body
		kept     bool   // the connection serves the next call
	}{
		{"echo", echoRequest("hi", ""), http.StatusOK, "<string>hi</string>", true},
		{"RPC2 path", strings.Replace(echoRequest("hi", ""), agentapi.Path, agentapi.PathRPC2, 1), http.StatusOK, "hi", true},
		{"client asks to close", echoRequest("hi", "Connection: close\r\n"), http.StatusOK, "hi", false},
		{"HTTP/1.0", strings.Replace(echoRequest("hi", ""), "HTTP/1.1", "HTTP/1.0", 1), http.StatusOK, "hi", false},
		{"HTTP/1.0 keep-alive", strings.Replace(echoRequest("hi", "Connection: keep-alive\r\n"), "HTTP/1.1", "HTTP/1.0", 1), http.StatusOK, "hi", true},
		{"chunked body", rawRequest("POST "+agentapi.Path+" HTTP/1.1",
			"Host: agent\r\nAuthorization: "+rightAuth+"\r\nTransfer-Encoding: chunked\r\n", chunked), http.StatusOK, "hi", true},
		{"100-continue", echoRequest("hi", "Expect: 100-continue\r\n"), http.StatusOK, "hi", true},
		{"other Expect", echoRequest("hi", "Expect: 200-ok\r\n"), http.StatusExpectationFailed, "Expect", false},
		{"no body", rawRequest("POST "+agentapi.Path+" HTTP/1.1", "Host: agent\r\nAuthorization: "+rightAuth+"\r\n", ""),
			http.StatusOK, "malformed XML-RPC call", true},
		{"malformed XML", rawRequest("POST "+agentapi.Path+" HTTP/1.1",
			"Host: agent\r\nAuthorization: "+rightAuth+"\r\nContent-Length: 12\r\n", "<methodCall>"), http.StatusOK, "malformed XML-RPC call", true},
		{"other path", strings.Replace(echoRequest("hi", ""), agentapi.Path, "/api/2/", 1), http.StatusNotFound, "not found", true},
		{"GET", rawRequest("GET "+agentapi.Path+" HTTP/1.1", "Host: agent\r\nAuthorization: "+rightAuth+"\r\n", ""),
			http.StatusMethodNotAllowed, "POSTed", true},
		{"HEAD", rawRequest("HEAD "+agentapi.Path+" HTTP/1.1", "Host: agent\r\n", ""), http.StatusMethodNotAllowed, "", true},
		{"no credentials", rawRequest("POST "+agentapi.Path+" HTTP/1.1", fmt.Sprintf("Host: agent\r\nContent-Length: %d\r\n", len(body)), body),
			http.StatusUnauthorized, "", true},
		{"no Host", rawRequest("POST "+agentapi.Path+" HTTP/1.1", fmt.Sprintf("Authorization: %s\r\nContent-Length: %d\r\n", rightAuth, len(body)), body),
			http.StatusBadRequest, "Host", false},
		{"two Hosts", echoRequest("hi", "Host: other\r\n"), http.StatusBadRequest, "malformed", false},
		{"garbage line", "GARBAGE\r\n\r\n", http.StatusBadRequest, "malformed", false},
		{"HTTP/2 line", strings.Replace(echoRequest("hi", ""), "HTTP/1.1", "HTTP/2.0", 1), http.StatusHTTPVersionNotSupported, "version", false},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", http.StatusHTTPVersionNotSupported, "version", false},
		{"length not a number", rawRequest("POST "+agentapi.Path+" HTTP/1.1", "Host: agent\r\nContent-Length: ten\r\n", "0123456789"),
			http.StatusBadRequest, "malformed", false},
		{"two lengths", echoRequest("hi", "Content-Length: 3\r\n"), http.StatusBadRequest, "malformed", false},
		{"unknown transfer encoding", rawRequest("POST "+agentapi.Path+" HTTP/1.1", "Host: agent\r\nTransfer-Encoding: gzip\r\n", "x"),
			http.StatusBadRequest, "malformed", false},
		{"space in a field name", echoRequest("hi", "Bad Name: x\r\n"), http.StatusBadRequest, "invalid header name", false},
		{"colon only", echoRequest("hi", ": x\r\n"), http.StatusBadRequest, "malformed", false},
		{"control byte in a value", echoRequest("hi", "X-Note: a\x01b\r\n"), http.StatusBadRequest, "malformed", false},
		// The bound counts from the request's first read (4 kB of the
		// connection's buffer are read before it), as net/http's.
		{"header too large", echoRequest("hi", "X-Pad: "+strings.Repeat("p", maxHeaderBytes+2*headerSlack)+"\r\n"),
			http.StatusRequestHeaderFieldsTooLarge, "too large", false},
		{"many fields", echoRequest("hi", strings.Repeat("X-A: b\r\n", (maxHeaderBytes+2*headerSlack)/8+1)),
			http.StatusRequestHeaderFieldsTooLarge, "too large", false},
		{"bare LF lines", "POST " + agentapi.Path + " HTTP/1.1\nHost: agent\nAuthorization: " + rightAuth +
			fmt.Sprintf("\nContent-Length: %d\n\n", len(body)) + body, http.StatusOK, "hi", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := dialAgent(t, addr)
			rc.send(t, tt.send)
			if tt.name == "100-continue" {
				resp, _ := rc.answer(t)
				if resp.StatusCode != http.StatusContinue {
					t.Fatalf("status %d before the body, want 100", resp.StatusCode)
				}
			}
			resp, got := rc.answer(t)
			if resp.StatusCode != tt.status || !strings.Contains(got, tt.contains) {
				t.Fatalf("answer %d %q, want %d with %q", resp.StatusCode, got, tt.status, tt.contains)
			}
			if resp.ContentLength != int64(len(got)) && !(tt.name == "HEAD" && got == "") {
				t.Errorf("Content-Length %d for a body of %d bytes", resp.ContentLength, len(got))
			}
			if resp.Header.Get("Date") == "" {
				t.Errorf("no Date field")
			}
			if !tt.kept {
				if !resp.Close {
					t.Errorf("the answer does not say the connection closes")
				}
				if !rc.closed() {
					t.Errorf("the connection was kept")
				}
				return
			}
			if resp.Close {
				t.Fatalf("the answer closes the connection, want it kept")
			}
			rc.send(t, echoRequest("again", ""))
			if resp, got := rc.answer(t); resp.StatusCode != http.StatusOK || !strings.Contains(got, "again") {
				t.Errorf("next call: %d %q, want its echo", resp.StatusCode, got)
			}
		})
	}
}

// TestPowerCallSaysItCloses: the answer of sys_reboot and sys_shutdown
// says that the connection closes, and it does: a client that kept the
// connection for its next call met a reset (seen in CI on a real host's
// agent, whose power calls keep the agent up).
func TestPowerCallSaysItCloses(t *testing.T) {
	for _, method := range []string{agentapi.MethodSysReboot, agentapi.MethodSysShutdown} {
		t.Run(method, func(t *testing.T) {
			_, addr := startBoundedAgent(t, nil)
			rc := dialAgent(t, addr)
			rc.send(t, postRequest("<?xml version=\"1.0\"?><methodCall><methodName>"+method+"</methodName><params></params></methodCall>"))
			resp, got := rc.answer(t)
			if resp.StatusCode != http.StatusOK || strings.Contains(got, "fault") {
				t.Fatalf("answer %d %q, want its success", resp.StatusCode, got)
			}
			if !resp.Close {
				t.Errorf("the answer does not say the connection closes")
			}
			if !rc.closed() {
				t.Errorf("the connection was kept")
			}
		})
	}
}

// TestServerPipelined: calls written back to back before any answer are
// answered in order on the connection, whether they arrive in one write
// or the next arrives while a call that watches its connection runs.
func TestServerPipelined(t *testing.T) {
	a, addr := startBoundedAgent(t, nil)
	rc := dialAgent(t, addr)
	var all strings.Builder
	for i := range 5 {
		all.WriteString(echoRequest(fmt.Sprintf("call-%d", i), ""))
	}
	rc.send(t, all.String())
	for i := range 5 {
		if resp, got := rc.answer(t); resp.StatusCode != http.StatusOK || !strings.Contains(got, fmt.Sprintf("call-%d", i)) {
			t.Fatalf("answer %d: %d %q", i, resp.StatusCode, got)
		}
	}
	// A method that asks for its context starts the background read,
	// which takes the first byte of a request written during the call;
	// that request is still served, whole.
	entered := make(chan struct{})
	a.methods["ctx_echo"] = method{sig: a.methods[agentapi.MethodEcho].sig, fn: func(c *call) (any, error) {
		ctx := c.context()
		close(entered)
		waitFor(t, "the background read to take a byte", func() bool { return len(c.conn.watchDone) == 1 })
		if err := ctx.Err(); err != nil {
			return nil, err // a pipelined request must not end the call's context
		}
		return c.params[0], nil
	}}
	rc.send(t, callRequest("ctx_echo", "watched"))
	<-entered
	rc.send(t, echoRequest("behind", ""))
	for _, want := range []string{"watched", "behind"} {
		if resp, got := rc.answer(t); resp.StatusCode != http.StatusOK || !strings.Contains(got, want) {
			t.Fatalf("answer: %d %q, want %q", resp.StatusCode, got, want)
		}
	}
}

// TestServerClientGone: a call that asked for its context sees it end
// when its client closes the connection.
func TestServerClientGone(t *testing.T) {
	a, addr := startBoundedAgent(t, nil)
	ended := make(chan error, 1)
	a.methods["wait_gone"] = method{sig: a.methods[agentapi.MethodEcho].sig, fn: func(c *call) (any, error) {
		<-c.context().Done()
		ended <- c.context().Err()
		return nil, c.context().Err()
	}}
	rc := dialAgent(t, addr)
	rc.send(t, callRequest("wait_gone", "x"))
	rc.c.Close()
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Errorf("the call's context ended with %v, want canceled", err)
	}
}

// TestServerOversizedBody: a body beyond xmlrpcwire.MaxCallBytes is
// refused with a fault and the connection closed, not read to its end.
func TestServerOversizedBody(t *testing.T) {
	_, addr := startBoundedAgent(t, nil)
	rc := dialAgent(t, addr)
	n := xmlrpcwire.MaxCallBytes + maxDrainBytes + 1<<20
	rc.send(t, rawRequest("POST "+agentapi.Path+" HTTP/1.1",
		fmt.Sprintf("Host: agent\r\nAuthorization: %s\r\nContent-Length: %d\r\n", rightAuth, 2*n), ""))
	go func() { // the agent stops reading; its answer is read meanwhile
		_, _ = rc.c.Write(make([]byte, n))
	}()
	resp, got := rc.answer(t)
	if resp.StatusCode != http.StatusOK || !strings.Contains(got, "larger than") {
		t.Fatalf("answer %d %q, want a fault for the size", resp.StatusCode, got)
	}
	if !rc.closed() {
		t.Errorf("the connection was kept after an oversized body")
	}
}

// TestServerSlowClients: a client that stops half-way through a header,
// one that stops half-way through a body, one that stays idle and one
// that never finishes its TLS handshake are cut by the server's bounds
// (shortened here; the test waits for the close, it does not time it).
func TestServerSlowClients(t *testing.T) {
	_, addr := startBoundedAgent(t, func(b *serverBounds) {
		b.headerTimeout, b.readTimeout, b.idleTimeout = 200*time.Millisecond, 400*time.Millisecond, 300*time.Millisecond
	})
	full := echoRequest("slow", "")
	head, _, _ := strings.Cut(full, "\r\n\r\n")
	line, _, _ := strings.Cut(full, "\r\n")
	tests := []struct {
		name string
		send string
		want string // in what the agent sends before it closes
	}{
		{"header stops between fields", line + "\r\nHost: agent\r\n", ""},
		// A line cut short is taken for the whole line, as net/http does:
		// it is refused at once.
		{"header stops mid-line", full[:20], "400 Bad Request"},
		{"body stops", head + "\r\n\r\n<?xml", "malformed XML-RPC call"},
		{"idle after a call", full, "<string>slow</string>"},
		{"idle from the start", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := dialAgent(t, addr)
			rc.send(t, tt.send)
			_ = rc.c.SetReadDeadline(time.Now().Add(time.Minute)) // only so that a failure does not hang the test
			got, err := io.ReadAll(rc.br)
			if isTimeout(err) {
				t.Fatalf("the agent did not close the connection: %v", err)
			}
			if !strings.Contains(string(got), tt.want) || (tt.want == "" && len(got) > 0) {
				t.Errorf("the agent sent %q before closing, want %q", got, tt.want)
			}
		})
	}
	t.Run("handshake stops", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write([]byte{0x16, 0x03, 0x01}) // the start of a ClientHello record
		_ = c.SetReadDeadline(time.Now().Add(time.Minute))
		if _, err := io.ReadAll(c); isTimeout(err) {
			t.Errorf("a stalled handshake was not cut: %v", err)
		}
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestServerShutdownWaitsForCalls: Shutdown closes idle connections at
// once and lets a call in flight finish and answer before it returns.
func TestServerShutdownWaitsForCalls(t *testing.T) {
	a, err := New(Config{DataDir: t.TempDir(), Password: testPassword, Hostname: "xen-test", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- a.Serve(l) }()
	addr := l.Addr().String()
	entered, release := make(chan struct{}), make(chan struct{})
	a.methods["slow"] = method{sig: a.methods[agentapi.MethodEcho].sig, fn: func(*call) (any, error) {
		close(entered)
		<-release
		return "done", nil
	}}
	idle, busy := dialAgent(t, addr), dialAgent(t, addr)
	idle.send(t, echoRequest("x", ""))
	idle.answer(t)
	busy.send(t, callRequest("slow", "x"))
	<-entered
	shut := make(chan error, 1)
	go func() { shut <- a.Shutdown(context.Background()) }()
	if !idle.closed() {
		t.Errorf("an idle connection stayed open during Shutdown")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a call in flight", err)
	default:
	}
	close(release)
	if resp, got := busy.answer(t); resp.StatusCode != http.StatusOK || !strings.Contains(got, "done") {
		t.Errorf("the call in flight: %d %q", resp.StatusCode, got)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
