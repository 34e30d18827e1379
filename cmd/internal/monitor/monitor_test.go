package monitor

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The server answers /metrics in the Prometheus text format and /healthz
// with the check's verdict, saying only a check's Reason (or "unhealthy")
// when it fails, and nothing else.
func TestServer(t *testing.T) {
	reg := prometheus.NewRegistry()
	hits := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_hits_total", Help: "Hits."})
	reg.MustRegister(hits)
	hits.Add(3)
	var verdict atomic.Pointer[error]
	check := func(context.Context) error {
		if e := verdict.Load(); e != nil {
			return *e
		}
		return nil
	}
	set := func(err error) { verdict.Store(&err) }
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := Start(l, reg, check, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(stop)
	base := "http://" + l.Addr().String()

	get := func(method, path string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	code, body := get("GET", "/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("GET /metrics is not the text format: %v\n%s", err, body)
	}
	if f := fams["test_hits_total"]; f == nil || f.GetMetric()[0].GetCounter().GetValue() != 3 {
		t.Errorf("test_hits_total: %v, want 3", f)
	}

	tests := []struct {
		name       string
		verdict    error
		method     string
		path       string
		wantCode   int
		wantBody   string // exact, when not ""
		mustNotSay string
	}{
		{name: "healthy", method: "GET", path: "/healthz", wantCode: 200, wantBody: "ok\n"},
		{name: "healthy HEAD", method: "HEAD", path: "/healthz", wantCode: 200},
		{name: "unhealthy with a reason", verdict: Unhealthy("store not answering", errors.New("sql: database is closed")),
			method: "GET", path: "/healthz", wantCode: 503, wantBody: "store not answering\n", mustNotSay: "sql"},
		{name: "unhealthy without a reason", verdict: errors.New("open /var/lib/xenmanager/manager.db: permission denied"),
			method: "GET", path: "/healthz", wantCode: 503, wantBody: "unhealthy\n", mustNotSay: "/var/lib"},
		{name: "wrapped reason", verdict: errors.Join(errors.New("first"), Unhealthy("shutting down", nil)),
			method: "GET", path: "/healthz", wantCode: 503, wantBody: "shutting down\n"},
		{name: "other path", method: "GET", path: "/debug/pprof/", wantCode: 404},
		{name: "POST", method: "POST", path: "/metrics", wantCode: 405},
		{name: "DELETE", method: "DELETE", path: "/healthz", wantCode: 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set(tc.verdict)
			code, body := get(tc.method, tc.path)
			if code != tc.wantCode || tc.wantBody != "" && body != tc.wantBody {
				t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, code, body, tc.wantCode, tc.wantBody)
			}
			if tc.mustNotSay != "" && strings.Contains(body, tc.mustNotSay) {
				t.Errorf("%s %s says %q: %q", tc.method, tc.path, tc.mustNotSay, body)
			}
		})
	}
}

// The server has the timeouts a listener open to the network needs: a
// client that sends its request slowly, or never reads the answer, is cut.
func TestServerTimeouts(t *testing.T) {
	s := New(prometheus.NewRegistry(), func(context.Context) error { return nil }, nil)
	for name, d := range map[string]int64{"ReadHeaderTimeout": int64(s.srv.ReadHeaderTimeout), "ReadTimeout": int64(s.srv.ReadTimeout),
		"WriteTimeout": int64(s.srv.WriteTimeout), "IdleTimeout": int64(s.srv.IdleTimeout), "MaxHeaderBytes": int64(s.srv.MaxHeaderBytes)} {
		if d <= 0 {
			t.Errorf("%s is not set", name)
		}
	}
}

// Listen names the flag when the address cannot be had.
func TestListenNamesTheFlag(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if _, err := Listen(busy.Addr().String()); err == nil || !strings.Contains(err.Error(), "--metrics-listen "+busy.Addr().String()) {
		t.Errorf("Listen on a busy address: %v", err)
	}
}
