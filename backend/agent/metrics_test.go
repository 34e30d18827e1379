package agent

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agent/xensim"
	"xenmanager/backend/agentapi"
)

// metricValue reads one series of m: a counter's or a gauge's value, a
// histogram's count; found is false when no series of name has every label
// of labels.
func metricValue(t *testing.T, m *Metrics, name string, labels map[string]string) (v float64, found bool) {
	t.Helper()
	fams, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, s := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range s.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue series
				}
			}
			switch {
			case s.Counter != nil:
				return s.Counter.GetValue(), true
			case s.Gauge != nil:
				return s.Gauge.GetValue(), true
			case s.Histogram != nil:
				return float64(s.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// The calls an agent serves count under their method and result, with
// methods outside the protocol and calls that do not decode under labels
// of their own; refused credentials count apart; the domains show by state.
func TestMetricsOfCallsAndDomains(t *testing.T) {
	mx := NewMetrics()
	a := startAgent(t, Config{Metrics: mx})
	c := a.typed(t)
	ctx := t.Context()
	withRepoVM(t, c, 256)
	must(t, c.StartVM(ctx, "r1", "vm1"))
	if err := c.StartVM(ctx, "r1", "vm1"); err == nil {
		t.Fatal("a second start of a running VM succeeded")
	}
	raw := a.client(t)
	if err := raw.Call("drop_all_tables", nil, new(bool)); err == nil {
		t.Fatal("a method outside the protocol succeeded")
	}
	post := func(password, body string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, a.url(password, agentapi.Path), strings.NewReader(body))
		must(t, err)
		resp, err := (&http.Client{Transport: pinnedTransport(a.SPKISHA256())}).Do(req)
		must(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(testPassword, "<methodCall><methodName>echo"); code != http.StatusOK {
		t.Fatalf("a malformed call: HTTP %d, want a fault with 200", code)
	}
	if code := post("wrong-password", "<methodCall/>"); code != http.StatusUnauthorized {
		t.Fatalf("a wrong password: HTTP %d, want 401", code)
	}

	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"xenagent_call_duration_seconds", map[string]string{"method": agentapi.MethodStartVM, "result": "ok"}, 1},
		{"xenagent_call_duration_seconds", map[string]string{"method": agentapi.MethodStartVM, "result": "InvalidState"}, 1},
		{"xenagent_call_duration_seconds", map[string]string{"method": agentapi.MethodCreateVM, "result": "ok"}, 1},
		{"xenagent_call_duration_seconds", map[string]string{"method": methodUnknown, "result": "InvalidArgument"}, 1},
		{"xenagent_call_duration_seconds", map[string]string{"method": methodMalformed, "result": "InvalidArgument"}, 1},
		{"xenagent_unauthorized_requests_total", nil, 1},
		{"xenagent_hypervisor_up", nil, 1},
		{"xenagent_domains", map[string]string{"state": agentapi.StateRunning}, 1},
		{"xenagent_domains", map[string]string{"state": agentapi.StatePaused}, 0},
		{"xenagent_domains", map[string]string{"state": "other"}, 0},
	}
	for _, tc := range tests {
		got, found := metricValue(t, mx, tc.name, tc.labels)
		if !found || got != tc.want {
			t.Errorf("%s%v = %v (found %v), want %v", tc.name, tc.labels, got, found, tc.want)
		}
	}
	if _, found := metricValue(t, mx, "xenagent_call_duration_seconds", map[string]string{"method": "drop_all_tables"}); found {
		t.Error("a method name a client sent became a label")
	}

	must(t, c.PauseVM(ctx, "r1", "vm1"))
	if got, _ := metricValue(t, mx, "xenagent_domains", map[string]string{"state": agentapi.StatePaused}); got != 1 {
		t.Errorf("paused domains after pause_vm: %v, want 1 (read at the scrape)", got)
	}

	// A Metrics serves one agent: a second agent on it is refused.
	_, err := New(Config{DataDir: t.TempDir(), Password: "pw", Hostname: "second", Metrics: mx})
	if err == nil || !strings.Contains(err.Error(), "one Metrics serves one agent") {
		t.Errorf("a second agent on one Metrics: %v", err)
	}
}

// ailingDomains is the simulated host whose list of domains fails or hangs
// on demand: a hypervisor daemon that went away, or stopped answering.
type ailingDomains struct {
	*xensim.Sim
	fail  atomic.Bool
	hang  atomic.Pointer[chan struct{}] // when set, Domains waits until it closes
	calls atomic.Int32
}

func (d *ailingDomains) Domains() ([]agentapi.Domain, error) {
	d.calls.Add(1)
	if h := d.hang.Load(); h != nil {
		<-*h
	}
	if d.fail.Load() {
		return nil, errors.New("libvirtd: connection refused")
	}
	return d.Sim.Domains()
}

// Health is nil while the host is up and its hypervisor lists its domains;
// otherwise its Reason is a short line without the cause, which its Error
// keeps for the log.
func TestHealth(t *testing.T) {
	var drv *ailingDomains
	mx := NewMetrics()
	a := startAgent(t, Config{Metrics: mx, RebootDelay: 10 * time.Millisecond, Driver: func(env hypervisor.Env) (hypervisor.Driver, error) {
		sim, err := xensim.New(xensim.Config{}, env)
		drv = &ailingDomains{Sim: sim}
		return drv, err
	}})
	ctx := t.Context()
	reason := func(err error) string {
		var r interface{ Reason() string }
		if !errors.As(err, &r) {
			t.Fatalf("Health failed without a Reason: %v", err)
		}
		return r.Reason()
	}
	must(t, a.Health(ctx))

	drv.fail.Store(true)
	err := a.Health(ctx)
	if err == nil || reason(err) != "hypervisor not answering" || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Health with the hypervisor failing = %v, want reason %q and the cause in the error", err, "hypervisor not answering")
	}
	if up, _ := metricValue(t, mx, "xenagent_hypervisor_up", nil); up != 0 {
		t.Errorf("xenagent_hypervisor_up = %v with the hypervisor failing, want 0", up)
	}
	if _, found := metricValue(t, mx, "xenagent_domains", nil); found {
		t.Error("domain counts shown while the hypervisor cannot list its domains")
	}
	drv.fail.Store(false)
	must(t, a.Health(ctx))

	// A hypervisor that hangs: each check gives up at its deadline, and
	// the checks meanwhile share the one question in flight.
	hang := make(chan struct{})
	drv.hang.Store(&hang)
	before := drv.calls.Load()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			errs[i] = a.Health(cctx)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err == nil || reason(err) != "hypervisor not answering" {
			t.Errorf("Health with the hypervisor hung = %v, want %q", err, "hypervisor not answering")
		}
	}
	if n := drv.calls.Load() - before; n != 1 {
		t.Errorf("the hypervisor was asked %d times by four checks during one hang, want once", n)
	}
	drv.hang.Store(nil)
	close(hang)
	waitFor(t, "a check to pass after the hang", func() bool { return a.Health(ctx) == nil })

	// A simulated reboot: the host is down until it comes back.
	hold := make(chan struct{})
	a.mu.Lock()
	a.rebootHold = hold
	a.mu.Unlock()
	c := a.typed(t)
	must(t, c.SysReboot(ctx))
	if err := a.Health(ctx); err == nil || reason(err) != "host is down" {
		t.Errorf("Health during a reboot = %v, want %q", err, "host is down")
	}
	close(hold)
	waitBack(t, c)
	must(t, a.Health(ctx))
}
