package agent

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"xenmanager/backend/agentapi"
)

// Metrics are the agent's Prometheus metrics, in a registry of their own
// (never the process-wide default): the calls it served, by method, result
// and duration; the domains it runs, by state, read from the hypervisor at
// each scrape; and the Go runtime's and the process's. One Metrics serves
// one agent (Config.Metrics); nil serves none.
//
// Label values come from fixed sets: the protocol's methods (a call of
// another method counts as "unknown", one that did not decode as
// "malformed"), "ok" or a fault kind, the protocol's domain states.
type Metrics struct {
	reg          *prometheus.Registry
	calls        *prometheus.HistogramVec
	unauthorized prometheus.Counter
}

// Method labels of calls that name no method of the protocol.
const (
	methodUnknown   = "unknown"
	methodMalformed = "malformed"
)

// callBuckets are the buckets of the call durations, in seconds: most
// calls end in a millisecond, a clean stop may wait for its guest.
var callBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// NewMetrics makes the agent's collectors in a registry of their own; the
// agent adds its domains when New is given them.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		calls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "xenagent_call_duration_seconds",
			Help:    "How long the calls the agent served took, from decoding to the answer, by protocol method and result: ok or the fault kind (NotFound ...).",
			Buckets: callBuckets,
		}, []string{"method", "result"}),
		unauthorized: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xenagent_unauthorized_requests_total",
			Help: "Requests refused for wrong or missing credentials.",
		}),
	}
	m.reg.MustRegister(m.calls, m.unauthorized,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Gatherer is what /metrics serves: the registry of m.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// callDone records a call of method that ended in err after d.
func (m *Metrics) callDone(method string, err error, d time.Duration) {
	result := "ok"
	if err != nil {
		result = agentapi.FaultInternalError.Kind()
		if f, ok := agentapi.AsFault(err); ok && f.Code.Known() {
			result = f.Code.Kind()
		}
	}
	m.calls.WithLabelValues(method, result).Observe(d.Seconds())
}

// domainStates are the states xenagent_domains always shows, 0 or not;
// a state a driver reports outside them counts as "other".
var domainStates = []string{agentapi.StateRunning, agentapi.StateBlocked, agentapi.StatePaused,
	agentapi.StateSuspended, agentapi.StateShutdown, agentapi.StateCrashed}

// domainCollector reads the agent's domains from the hypervisor at each
// scrape: the counts are never older than the scrape.
type domainCollector struct {
	a       *Agent
	domains *prometheus.Desc
	up      *prometheus.Desc
}

func newDomainCollector(a *Agent) *domainCollector {
	return &domainCollector{a: a,
		domains: prometheus.NewDesc("xenagent_domains",
			"Domains on this host by state (running, blocked, paused, suspended, shutdown, crashed, other), as the hypervisor reports them at the scrape.",
			[]string{"state"}, nil),
		up: prometheus.NewDesc("xenagent_hypervisor_up",
			"1 when the hypervisor answered the scrape's list of domains in time, 0 when it did not (the domain counts are then left out).",
			nil, nil),
	}
}

func (c *domainCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.domains
	ch <- c.up
}

func (c *domainCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	doms, err := c.a.probe.domains(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	counts := map[string]int{}
	for _, d := range doms {
		counts[d.State]++
	}
	other := len(doms)
	for _, st := range domainStates {
		other -= counts[st]
		ch <- prometheus.MustNewConstMetric(c.domains, prometheus.GaugeValue, float64(counts[st]), st)
	}
	ch <- prometheus.MustNewConstMetric(c.domains, prometheus.GaugeValue, float64(other), "other")
}

// probeTimeout bounds how long a scrape or a health check waits for the
// hypervisor's list of domains.
const probeTimeout = 5 * time.Second

// domainProbe asks the hypervisor for its domains on behalf of scrapes and
// health checks, one question at a time: a question asked while another is
// in flight waits for that one's answer, so that a hypervisor that hangs
// holds one goroutine, not one per probe. (A libvirt call ends within the
// driver's call timeout; the simulated host answers at once.)
type domainProbe struct {
	list func() ([]agentapi.Domain, error) // the driver's Domains

	mu       sync.Mutex   // guards inflight
	inflight *probeAnswer // the question in flight, nil when none
}

// probeAnswer is one question to the hypervisor; done closes when doms and
// err are set.
type probeAnswer struct {
	done chan struct{}
	doms []agentapi.Domain
	err  error
}

// errProbeTimeout is a probe that got no answer within its context.
var errProbeTimeout = errors.New("the hypervisor did not list its domains in time")

// domains returns the hypervisor's domains, or an error when it fails to
// list them or does not before ctx ends.
func (p *domainProbe) domains(ctx context.Context) ([]agentapi.Domain, error) {
	p.mu.Lock()
	q := p.inflight
	if q == nil {
		q = &probeAnswer{done: make(chan struct{})}
		p.inflight = q
		go func() {
			q.doms, q.err = p.list()
			p.mu.Lock()
			p.inflight = nil
			p.mu.Unlock()
			close(q.done)
		}()
	}
	p.mu.Unlock()
	select {
	case <-q.done:
		return q.doms, q.err
	case <-ctx.Done():
		return nil, errProbeTimeout
	}
}

// healthError is a failed Health: reason is what a prober is told, cause
// the detail for the log.
type healthError struct {
	reason string
	cause  error
}

func (e *healthError) Reason() string { return e.reason }
func (e *healthError) Unwrap() error  { return e.cause }
func (e *healthError) Error() string {
	if e.cause == nil {
		return e.reason
	}
	return e.reason + ": " + e.cause.Error()
}

// Health reports whether the agent can serve calls: nil when the host is
// up and the hypervisor lists its domains before ctx ends (probeTimeout at
// most). A failure's Reason() is a short line for /healthz ("host is down",
// "hypervisor not answering"); its Error() adds the cause, for the log.
func (a *Agent) Health(ctx context.Context) error {
	if a.isDown() {
		return &healthError{reason: "host is down"}
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if _, err := a.probe.domains(ctx); err != nil {
		return &healthError{reason: "hypervisor not answering", cause: err}
	}
	return nil
}
