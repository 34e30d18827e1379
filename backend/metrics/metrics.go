// Package metrics is the manager's Prometheus metrics: a registry of its
// own (never the process-wide default, so that two managers in one test
// binary do not share counters) with the collectors of the manager's
// sessions, commands, jobs, agent calls and heartbeats, and the Go runtime's
// and the process's.
//
// The parts of the manager record through a *Manager handed to them in
// their configuration. A nil *Manager, what they get when --metrics-listen
// is off, records nothing: every method is a no-op on nil, so that no part
// tests whether metrics are on.
//
// Every label value comes from a fixed set (the command registry's verbs
// and types, error codes, job operations named in the code, the protocol's
// methods, fault kinds and server states): never a name, an address or
// anything a client typed, so that the number of series stays bounded
// however large the fleet or however hostile the input.
package metrics

import (
	dto "github.com/prometheus/client_model/go"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Session kinds, the values of the label kind of the session metrics.
const (
	SessionInteractive = "interactive" // a terminal at the OVM> prompt
	SessionExec        = "exec"        // a command given to ssh
	SessionBatch       = "batch"       // commands read from stdin, no terminal
)

// StatusOK is the status label of a command that succeeded.
const StatusOK = "ok"

// Manager holds the manager's collectors and the registry they are in.
type Manager struct {
	reg             *prometheus.Registry
	sessions        *prometheus.GaugeVec
	sessionsStarted *prometheus.CounterVec
	commands        *prometheus.CounterVec
	jobs            *prometheus.HistogramVec
	agentCalls      *prometheus.HistogramVec
	servers         *prometheus.GaugeVec
	lastBeat        prometheus.Gauge
	leader          prometheus.Gauge
	recovered       *prometheus.CounterVec

	mu          sync.Mutex      // guards statesShown
	statesShown map[string]bool // server states ever given to ServerStates
}

// Buckets of the duration histograms, in seconds. Jobs run from a few
// milliseconds (a rename) to minutes (an import, a migration); agent calls
// from under a millisecond on loopback to the 30 s the client allows.
var (
	jobBuckets       = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800}
	agentCallBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
)

// NewManager makes the manager's collectors in a registry of their own.
func NewManager() *Manager {
	m := &Manager{
		reg: prometheus.NewRegistry(),
		sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "xenmanager_sessions",
			Help: "SSH sessions open now, by kind: interactive, exec or batch.",
		}, []string{"kind"}),
		sessionsStarted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xenmanager_sessions_started_total",
			Help: "SSH sessions started since the manager started, by kind: interactive, exec or batch.",
		}, []string{"kind"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xenmanager_commands_total",
			Help: "Commands run, by verb, object type (empty for a verb without one, and both empty for a line the parser refused) and status: ok, or the error code (XM_0404E).",
		}, []string{"verb", "type", "status"}),
		jobs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "xenmanager_job_duration_seconds",
			Help:    "How long jobs took from their record to their end, lock waits included, by operation (start Vm) and result: Success, Failure or Aborted.",
			Buckets: jobBuckets,
		}, []string{"operation", "result"}),
		agentCalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "xenmanager_agent_call_duration_seconds",
			Help:    "How long the manager's calls to agents took, by protocol method and result: ok, a fault kind of the agent (NotFound), or unreachable, unauthorized, too_many_failures, certificate_changed, protocol, invalid_call.",
			Buckets: agentCallBuckets,
		}, []string{"method", "result"}),
		servers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "xenmanager_servers",
			Help: "Servers by recorded state (Running, Unreachable, Stopped ...), as of the last heartbeat round.",
		}, []string{"state"}),
		lastBeat: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "xenmanager_heartbeat_last_round_timestamp_seconds",
			Help: "When the last heartbeat round ended, in seconds since the Unix epoch.",
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "xenmanager_leader",
			Help: "1 while this manager leads the fleet-wide work (heartbeats, HA, the recovery of dead managers' jobs), else 0.",
		}),
		recovered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xenmanager_jobs_recovered_total",
			Help: "Jobs of dead managers this manager ended as leader, by result: Success (finished by the leader) or Failure.",
		}, []string{"result"}),
		statesShown: map[string]bool{},
	}
	m.reg.MustRegister(m.sessions, m.sessionsStarted, m.commands, m.jobs, m.agentCalls, m.servers, m.lastBeat, m.leader, m.recovered,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Gatherer is what /metrics serves: the registry of m.
func (m *Manager) Gatherer() prometheus.Gatherer { return m.reg }

// SessionStarted counts a session of kind that starts now; the session
// calls the function it returns when it ends.
func (m *Manager) SessionStarted(kind string) (ended func()) {
	if m == nil {
		return func() {}
	}
	m.sessionsStarted.WithLabelValues(kind).Inc()
	open := m.sessions.WithLabelValues(kind)
	open.Inc()
	var once sync.Once
	return func() { once.Do(open.Dec) }
}

// CommandDone counts a command of verb and type (as the registry spells
// them) that ended with status: StatusOK or an error code.
func (m *Manager) CommandDone(verb, typ, status string) {
	if m == nil {
		return
	}
	m.commands.WithLabelValues(verb, typ, status).Inc()
}

// JobDone records a job of operation that ended with result (the job's
// status) after d.
func (m *Manager) JobDone(operation, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.jobs.WithLabelValues(operation, result).Observe(d.Seconds())
}

// AgentCallObserver returns the function an agent client calls after each
// call with its method, result and duration (agentclient.Config.Observe),
// or nil when m is nil, so that a client without metrics does not even
// read the clock.
func (m *Manager) AgentCallObserver() func(method, result string, d time.Duration) {
	if m == nil {
		return nil
	}
	return func(method, result string, d time.Duration) {
		m.agentCalls.WithLabelValues(method, result).Observe(d.Seconds())
	}
}

// ServerStates records how many servers are in each state after a
// heartbeat round, and when it ended. A state that had servers before and
// has none now reads 0, rather than vanishing, so that a graph of it drops
// to zero.
func (m *Manager) ServerStates(counts map[string]int, at time.Time) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for state := range counts {
		m.statesShown[state] = true
	}
	for state := range m.statesShown {
		m.servers.WithLabelValues(state).Set(float64(counts[state]))
	}
	m.lastBeat.Set(float64(at.UnixNano()) / 1e9)
}

// Leading records whether this manager leads the fleet-wide work.
func (m *Manager) Leading(leads bool) {
	if m == nil {
		return
	}
	v := 0.0
	if leads {
		v = 1
	}
	m.leader.Set(v)
}

// JobRecovered counts a dead manager's job this manager ended as leader,
// with result (Success or Failure).
func (m *Manager) JobRecovered(result string) {
	if m == nil {
		return
	}
	m.recovered.WithLabelValues(result).Inc()
}

// Value reads one series of m as a scrape would see it (SeriesValue); 0
// when there is none. Tests read the metrics with it.
func (m *Manager) Value(name string, labels map[string]string) float64 {
	fams, err := m.reg.Gather()
	if err != nil {
		return 0
	}
	v, _ := SeriesValue(fams, name, labels)
	return v
}

// SeriesValue is one series of fams, gathered from a registry or parsed
// from a scrape: a counter's or a gauge's value, a histogram's count of
// observations, of the first series of name that has every label of
// labels (it may have more; a label a series lacks is the empty value, as
// in Prometheus); found is false when there is none.
func SeriesValue(fams []*dto.MetricFamily, name string, labels map[string]string) (v float64, found bool) {
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
