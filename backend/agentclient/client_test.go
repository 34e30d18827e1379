package agentclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"xenmanager/backend/agentapi"
)

// fakeAgent answers each request with what respond returns; it stands in for
// an agent only in these unit tests of the client's error handling (the
// integration tests use the real agent).
func fakeAgent(t *testing.T, respond func(body string) (status int, reply string)) (*httptest.Server, Config) {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		if user != agentapi.AgentUser || pass != "secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(r.Body)
		status, reply := respond(string(body))
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		io.WriteString(w, reply)
	}))
	t.Cleanup(srv.Close)
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	return srv, Config{Address: host, Port: p, Password: "secret", PinSHA256: SPKISHA256(srv.Certificate()), Timeout: 5 * time.Second}
}

func response(value string) string {
	return `<?xml version="1.0"?><methodResponse><params><param><value>` + value + `</value></param></params></methodResponse>`
}

func fault(code int, s string) string {
	return fmt.Sprintf(`<?xml version="1.0"?><methodResponse><fault><value><struct>
<member><name>faultCode</name><value><int>%d</int></value></member>
<member><name>faultString</name><value><string>%s</string></value></member>
</struct></value></fault></methodResponse>`, code, s)
}

// callErrorCase is a way a call can fail, and the error it must end in.
type callErrorCase struct {
	name     string
	reply    string
	status   int
	password string
	pin      string
	wantIs   error
	wantCode agentapi.FaultCode
	outcome  string // what Outcome names it, and Observe is told
}

func TestCallErrors(t *testing.T) {
	tests := []callErrorCase{
		{name: "fault becomes typed", reply: fault(1002, "NotFound: no VM 0004fb"), wantCode: agentapi.FaultNotFound, outcome: "NotFound"},
		{name: "insufficient resources", reply: fault(1004, "InsufficientResources: need 4096 MiB"), wantCode: agentapi.FaultInsufficientResources, outcome: "InsufficientResources"},
		{name: "fault of a code the protocol lacks", reply: fault(4242, "Mystery: what"), wantCode: 4242, outcome: OutcomeUnknownFault},
		{name: "wrong password", password: "wrong", wantIs: ErrUnauthorized, outcome: OutcomeUnauthorized},
		{name: "too many wrong passwords", status: 429, reply: "too many wrong passwords from this address; retry later", wantIs: ErrTooManyFailures, outcome: OutcomeTooManyFailures},
		{name: "changed certificate", pin: strings.Repeat("ab", 32), wantIs: ErrCertificateChanged, outcome: OutcomeCertificateChanged},
		{name: "garbage body", reply: "<html>nope</html>", wantIs: ErrProtocol, outcome: OutcomeProtocol},
		{name: "server error status", status: 500, reply: "oops", wantIs: ErrProtocol, outcome: OutcomeProtocol},
		{name: "wrong result type", reply: response("<string>x</string>"), wantIs: ErrProtocol, outcome: OutcomeProtocol},
	}
	// DiscoverHardware is in kolo's codec, GetEvents and ListVMs in
	// xmlrpcwire's: each must end in the same errors.
	callers := []struct {
		method string
		call   func(*Client) error
	}{
		{agentapi.MethodDiscoverHardware, func(c *Client) error { _, err := c.DiscoverHardware(context.Background()); return err }},
		{agentapi.MethodGetEvents, func(c *Client) error { _, err := c.GetEvents(context.Background(), 0); return err }},
		{agentapi.MethodListVMs, func(c *Client) error { _, err := c.ListVMs(context.Background()); return err }},
	}
	for _, tc := range tests {
		for _, caller := range callers {
			t.Run(tc.name+"/"+caller.method, func(t *testing.T) {
				testCallError(t, tc, caller.method, caller.call)
			})
		}
	}
}

func testCallError(t *testing.T, tc callErrorCase, method string, call func(*Client) error) {
	status := tc.status
	if status == 0 {
		status = 200
	}
	_, cfg := fakeAgent(t, func(string) (int, string) { return status, tc.reply })
	if tc.password != "" {
		cfg.Password = tc.password
	}
	if tc.pin != "" {
		cfg.PinSHA256 = tc.pin
	}
	var observed []string
	cfg.Observe = func(method, result string, d time.Duration) {
		observed = append(observed, method+" "+result)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = call(c)
	var ce *CallError
	if !errors.As(err, &ce) || ce.Method != method {
		t.Fatalf("err = %v (%T), want a *CallError for %s", err, err, method)
	}
	if got := Outcome(err); got != tc.outcome {
		t.Errorf("Outcome(%v) = %q, want %q", err, got, tc.outcome)
	}
	if want := []string{method + " " + tc.outcome}; !slices.Equal(observed, want) {
		t.Errorf("Observe was told %q, want %q", observed, want)
	}
	if tc.wantCode != 0 {
		f, ok := agentapi.AsFault(err)
		if !ok || f.Code != tc.wantCode {
			t.Fatalf("err = %v, want fault %d", err, tc.wantCode)
		}
		if strings.HasPrefix(f.Message, f.Code.Kind()) {
			t.Fatalf("fault message %q still carries its kind prefix", f.Message)
		}
		return
	}
	if !errors.Is(err, tc.wantIs) {
		t.Fatalf("err = %v, want errors.Is %v", err, tc.wantIs)
	}
	if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "wrong") && tc.password != "" {
		t.Fatalf("error %q shows the password", err)
	}
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	var observed []string
	c, _ := New(Config{Address: "127.0.0.1", Port: port, Password: "x", Timeout: 2 * time.Second,
		Observe: func(method, result string, d time.Duration) { observed = append(observed, method+" "+result) }})
	_, err = c.Echo(context.Background(), "hi")
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	if want := []string{"echo unreachable"}; !slices.Equal(observed, want) {
		t.Errorf("Observe was told %q, want %q", observed, want)
	}
}

// A call that is answered is observed as ok, and a call that does not fit
// its method (nothing is sent) as invalid_call, under a method label that
// stays within the protocol's methods.
func TestObserveOKAndInvalidCalls(t *testing.T) {
	_, cfg := fakeAgent(t, func(string) (int, string) { return 200, response("<string>hi</string>") })
	var observed []string
	var took time.Duration
	cfg.Observe = func(method, result string, d time.Duration) {
		observed = append(observed, method+" "+result)
		took += d
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Echo(ctx, "hi"); err != nil {
		t.Fatal(err)
	}
	if err := c.Call(ctx, agentapi.MethodEcho, nil, 1, 2); !errors.Is(err, ErrInvalidCall) {
		t.Fatalf("echo with two integers: %v, want ErrInvalidCall", err)
	}
	if err := c.Call(ctx, "drop_all_tables", nil); !errors.Is(err, ErrInvalidCall) {
		t.Fatalf("a method outside the protocol: %v, want ErrInvalidCall", err)
	}
	want := []string{"echo ok", "echo invalid_call", "unknown invalid_call"}
	if !slices.Equal(observed, want) {
		t.Errorf("Observe was told %q, want %q", observed, want)
	}
	if took <= 0 {
		t.Errorf("the observed durations add up to %v; the answered call took some time", took)
	}
}

// After an answer that cannot be decoded (kolo's client used to shut down
// for good then) the next calls work.
func TestClientRecreatedAfterDecodeError(t *testing.T) {
	var calls atomic.Int32
	_, cfg := fakeAgent(t, func(string) (int, string) {
		if calls.Add(1) == 1 {
			return 200, `<?xml version="1.0"?><methodResponse><params><param><value><struct><member>`
		}
		return 200, response("<string>hi</string>")
	})
	cfg.Conns = 1
	c, _ := New(cfg)
	defer c.Close()
	if _, err := c.Echo(context.Background(), "hi"); !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrUnreachable) {
		t.Fatalf("first call err = %v, want a protocol error", err)
	}
	for i := 0; i < 3; i++ {
		got, err := c.Echo(context.Background(), "hi")
		if err != nil || got != "hi" {
			t.Fatalf("call %d after decode error = %q, %v; want hi", i+2, got, err)
		}
	}
}

func TestLenientIntegers(t *testing.T) {
	_, cfg := fakeAgent(t, func(string) (int, string) {
		return 200, response(`<struct>
<member><name>total_memory_mib</name><value><i8>8589934592</i8></value></member>
<member><name>free_memory_mib</name><value><string>4096</string></value></member>
<member><name>cpu_sockets</name><value><int>2</int></value></member>
<member><name>future_field</name><value><string>ignored</string></value></member>
</struct>`)
	})
	c, _ := New(cfg)
	defer c.Close()
	hw, err := c.DiscoverHardware(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if hw.TotalMemoryMiB != 8589934592 || hw.FreeMemoryMiB != 4096 || hw.CPUSockets != 2 {
		t.Fatalf("hardware = %+v", hw)
	}
}

func TestFirstContactRecordsPin(t *testing.T) {
	srv, cfg := fakeAgent(t, func(string) (int, string) { return 200, response("<string>x</string>") })
	want := cfg.PinSHA256
	cfg.PinSHA256 = ""
	c, _ := New(cfg)
	defer c.Close()
	if _, err := c.Echo(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	if got := c.SeenPin(); got != want {
		t.Fatalf("SeenPin = %s, want %s (cert of %s)", got, want, srv.URL)
	}
}

func TestCancelledContext(t *testing.T) {
	release := make(chan struct{})
	_, cfg := fakeAgent(t, func(string) (int, string) { <-release; return 200, response("<string>x</string>") })
	defer close(release)
	c, _ := New(cfg)
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Echo(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// The watcher's calls (xmlrpcwire's codec) read an answer only up to
// maxAnswer, end on their context, and decode what they are given.
func TestDirectCalls(t *testing.T) {
	var huge atomic.Bool
	release := make(chan struct{})
	_, cfg := fakeAgent(t, func(body string) (int, string) {
		switch {
		case huge.Load():
			return 200, response("<string>" + strings.Repeat("x", maxAnswer) + "</string>")
		case strings.Contains(body, "<int>7</int>"):
			<-release
		}
		return 200, response(`<struct><member><name>next</name><value><i8>9</i8></value></member>
<member><name>instance</name><value><string>i1</string></value></member>
<member><name>events</name><value><array><data><value><struct>
<member><name>seq</name><value><int>8</int></value></member>
<member><name>kind</name><value><string>vm_crashed</string></value></member>
<member><name>vm_uuid</name><value><string>0004fb</string></value></member>
</struct></value></data></array></value></member></struct>`)
	})
	defer close(release)
	c, _ := New(cfg)
	defer c.Close()
	evs, err := c.GetEvents(context.Background(), 0)
	want := agentapi.Events{Next: 9, Instance: "i1", Events: []agentapi.Event{{Seq: 8, Kind: agentapi.EventVMCrashed, VMUUID: "0004fb"}}}
	if err != nil || fmt.Sprint(evs) != fmt.Sprint(want) {
		t.Fatalf("GetEvents = %+v, %v; want %+v", evs, err, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.GetEvents(ctx, 7); !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GetEvents of an agent that does not answer before ctx ends: %v, want unreachable, deadline exceeded", err)
	}
	huge.Store(true)
	if _, err := c.GetEvents(context.Background(), 0); !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("GetEvents answered with more than %d bytes: %v, want a protocol error", maxAnswer, err)
	}
}
