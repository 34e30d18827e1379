package agentclient

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"xenmanager/backend/agentapi"
)

// marker is text a hostile agent puts in its answers: no error but a
// fault's message may show it.
const marker = "AGENT-TEXT-7f3a"

// TestCallFailures: every way an answer can be wrong ends, in each codec
// and on both transports, in a clear error of the package's kinds that
// quotes nothing of the answer.
func TestCallFailures(t *testing.T) {
	huge := strings.Repeat("x", maxAnswer)
	deep := "<array><data>" + strings.Repeat("<value><array><data>", 100_000) + strings.Repeat("</data></array></value>", 100_000) + "</data></array>"
	tests := []struct {
		name string
		// handle answers the call; arrived is closed when it is in.
		handle    func(w http.ResponseWriter, r *http.Request)
		cancelCtx bool // the test cancels the call's context once it arrived
		wantIs    []error
		wantText  string
		wantFault agentapi.FaultCode
		// needsResult: only a call that decodes a result can fail so.
		needsResult bool
	}{
		{name: "oversized answer", handle: func(w http.ResponseWriter, r *http.Request) {
			body := response("<string>" + huge + marker + "</string>")
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			io.WriteString(w, body)
		}, wantIs: []error{ErrProtocol}, wantText: "longer than"},
		{name: "oversized answer without a length", handle: func(w http.ResponseWriter, r *http.Request) {
			w.(http.Flusher).Flush() // chunked: the length is not announced
			for range 9 {
				io.WriteString(w, huge[:1<<20]+marker)
			}
		}, wantIs: []error{ErrProtocol}, wantText: "longer than"},
		{name: "malformed value", handle: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, response("<int>"+marker+"</int>"))
		}, wantIs: []error{ErrProtocol}, wantText: "not a methodResponse"},
		{name: "value of the wrong kind", handle: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, response(`<struct><member><name>total_memory_mib</name><value><string>`+marker+`</string></value></member>
<member><name>next</name><value><string>`+marker+`</string></value></member></struct>`))
		}, wantIs: []error{ErrProtocol}, wantText: "does not fit", needsResult: true},
		{name: "headers too long", handle: func(w http.ResponseWriter, r *http.Request) {
			conn, buf, _ := w.(http.Hijacker).Hijack()
			defer conn.Close()
			buf.WriteString("HTTP/1.1 200 OK\r\nX-Filler: " + strings.Repeat(marker, maxAnswerHeader/len(marker)+1) + "\r\n\r\n")
			buf.Flush()
		}, wantIs: []error{ErrProtocol}, wantText: "headers are longer than"},
		{name: "not XML-RPC", handle: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "<html><value><string>"+marker+"</string></value></html>")
		}, wantIs: []error{ErrProtocol}, wantText: "not a methodResponse"},
		{name: "truncated", handle: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `<?xml version="1.0"?><methodResponse><params><param><value><string>`+marker)
		}, wantIs: []error{ErrProtocol}, wantText: "not a methodResponse"},
		{name: "nested too deep", handle: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, response(deep))
		}, wantIs: []error{ErrProtocol}, wantText: "not a methodResponse"},
		{name: "not HTTP", handle: func(w http.ResponseWriter, r *http.Request) {
			conn, buf, _ := w.(http.Hijacker).Hijack()
			defer conn.Close()
			buf.WriteString("HTTP/1.1 2x0 " + marker + "\r\n\r\n")
			buf.Flush()
		}, wantIs: []error{ErrProtocol}, wantText: "not HTTP"},
		{name: "connection closed mid-answer", handle: func(w http.ResponseWriter, r *http.Request) {
			conn, buf, _ := w.(http.Hijacker).Hijack()
			defer conn.Close()
			buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 1000\r\n\r\n<methodResponse>" + marker)
			buf.Flush()
		}, wantIs: []error{ErrUnreachable}, wantText: "closed before the answer was complete"},
		{name: "fault", handle: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, fault(1002, "NotFound: "+marker+strings.Repeat("y", 2*maxFaultMessage)))
		}, wantFault: agentapi.FaultNotFound},
		{name: "slow agent", handle: func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done() // answers nothing before the client gives up
		}, wantIs: []error{ErrUnreachable}, wantText: "no answer within"},
		{name: "context cancelled", handle: func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}, cancelCtx: true, wantIs: []error{ErrUnreachable, context.Canceled}},
	}
	// DiscoverHardware is in kolo's codec, GetEvents and ListVMs in
	// xmlrpcwire's, CopyFile in kolo's on a transport of its own without
	// the client's timeout (its slow agent is ended by ctx).
	callers := []struct {
		method    string
		call      func(context.Context, *Client) error
		noTimeout bool
		noResult  bool
	}{
		{agentapi.MethodDiscoverHardware, func(ctx context.Context, c *Client) error { _, err := c.DiscoverHardware(ctx); return err }, false, false},
		{agentapi.MethodGetEvents, func(ctx context.Context, c *Client) error { _, err := c.GetEvents(ctx, 0); return err }, false, false},
		{agentapi.MethodListVMs, func(ctx context.Context, c *Client) error { _, err := c.ListVMs(ctx); return err }, false, false},
		{agentapi.MethodCopyFile, func(ctx context.Context, c *Client) error {
			return c.CopyFile(ctx, "/r/a", "/r/b", agentapi.CopyOption{Mode: agentapi.CopyModes[0]})
		}, true, true},
	}
	for _, tc := range tests {
		for _, caller := range callers {
			if tc.needsResult && caller.noResult {
				continue
			}
			t.Run(tc.name+"/"+caller.method, func(t *testing.T) {
				arrived := make(chan struct{}, 1)
				srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					io.Copy(io.Discard, r.Body)
					arrived <- struct{}{}
					w.Header().Set("Content-Type", "text/xml")
					tc.handle(w, r)
				}))
				t.Cleanup(srv.Close)
				t.Cleanup(srv.CloseClientConnections)
				host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
				p, _ := strconv.Atoi(port)
				timeout := 30 * time.Second // none of these calls waits for it
				if tc.name == "slow agent" {
					timeout = 100 * time.Millisecond
				}
				c, err := New(Config{Address: host, Port: p, Password: "secret", PinSHA256: SPKISHA256(srv.Certificate()), Timeout: timeout})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				wantIs := tc.wantIs
				if tc.name == "slow agent" && caller.noTimeout {
					// Only its context ends a call that lasts as
					// long as its work.
					go func() { <-arrived; cancel() }()
					wantIs = []error{ErrUnreachable, context.Canceled}
				}
				if tc.cancelCtx {
					go func() { <-arrived; cancel() }()
				}
				err = caller.call(ctx, c)
				var ce *CallError
				if !errors.As(err, &ce) || ce.Method != caller.method {
					t.Fatalf("err = %v (%T), want a *CallError of %s", err, err, caller.method)
				}
				if tc.wantFault != 0 {
					f, ok := agentapi.AsFault(err)
					if !ok || f.Code != tc.wantFault {
						t.Fatalf("err = %v, want fault %d", err, tc.wantFault)
					}
					if !strings.HasPrefix(f.Message, marker) || len(f.Message) > maxFaultMessage+len(" [cut]") {
						t.Fatalf("fault message of %d bytes (%.40q...), want the agent's, cut to %d", len(f.Message), f.Message, maxFaultMessage)
					}
					return
				}
				for _, w := range wantIs {
					if !errors.Is(err, w) {
						t.Errorf("err = %v, want errors.Is %v", err, w)
					}
				}
				if tc.wantText != "" && !strings.Contains(err.Error(), tc.wantText) && !(tc.name == "slow agent" && caller.noTimeout) {
					t.Errorf("err = %v, want it to say %q", err, tc.wantText)
				}
				if strings.Contains(err.Error(), marker) {
					t.Errorf("err = %v quotes the agent's answer", err)
				}
			})
		}
	}
}

// TestCheckDepth: the nesting bound counts elements, not declarations,
// comments or empty elements.
func TestCheckDepth(t *testing.T) {
	tests := []struct {
		data string
		max  int
		ok   bool
	}{
		{`<?xml version="1.0"?><a><b><c/></b></a>`, 2, true},
		{`<a><b><c></c></b></a>`, 2, false},
		{`<a><!-- <b><c> --></a>`, 1, false}, // a comment's tags count: refused, never let through
		{`<a></a><a></a><a></a>`, 1, true},
		{`<a><b x="1>2"></b></a>`, 2, true},
		{`<a`, 0, true}, // left to the decoder
		{strings.Repeat("<v>", 300) + strings.Repeat("</v>", 300), maxTagDepth, false},
	}
	for _, tc := range tests {
		if err := checkDepth([]byte(tc.data), tc.max); (err == nil) != tc.ok {
			t.Errorf("checkDepth(%.40q, %d) = %v, want ok %v", tc.data, tc.max, err, tc.ok)
		}
	}
}

// TestConnectionReuse: sequential calls share one keep-alive connection;
// one the agent closed while idle is noticed and replaced, not failed on;
// Close keeps none.
func TestConnectionReuse(t *testing.T) {
	var opened atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, response("<string>hi</string>"))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	c, err := New(Config{Address: host, Port: p, Password: "secret", PinSHA256: SPKISHA256(srv.Certificate())})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for range 10 {
		if got, err := c.Echo(ctx, "hi"); err != nil || got != "hi" {
			t.Fatalf("Echo = %q, %v", got, err)
		}
	}
	if n := opened.Load(); n != 1 {
		t.Fatalf("10 calls one after another opened %d connections, want 1", n)
	}
	srv.CloseClientConnections() // the agent drops its idle connections
	for range 3 {
		if got, err := c.Echo(ctx, "hi"); err != nil || got != "hi" {
			t.Fatalf("Echo after the agent closed the idle connection = %q, %v", got, err)
		}
	}
	if n := opened.Load(); n != 2 {
		t.Fatalf("calls after the agent closed the connection opened %d connections in all, want 2", n)
	}
	c.Close()
	c.pool.mu.Lock()
	defer c.pool.mu.Unlock()
	if n := len(c.pool.idle); n != 0 || !c.pool.closed {
		t.Fatalf("after Close the client keeps %d idle connections (closed %v)", n, c.pool.closed)
	}
}
