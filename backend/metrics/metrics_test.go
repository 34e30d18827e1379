package metrics

import (
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// value reads one series of m; found says whether a series of name has
// those labels.
func value(t *testing.T, m *Manager, name string, labels map[string]string) (v float64, found bool) {
	t.Helper()
	fams, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		for _, s := range f.GetMetric() {
			if f.GetName() == name && hasLabels(s, labels) {
				return m.Value(name, labels), true
			}
		}
	}
	return 0, false
}

func hasLabels(s *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range s.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// A nil *Manager, what the parts get with metrics off, records nothing and
// does not fail.
func TestNilRecordsNothing(t *testing.T) {
	var m *Manager
	m.SessionStarted(SessionExec)()
	m.CommandDone("list", "Vm", StatusOK)
	m.JobDone("start Vm", "Success", time.Second)
	m.ServerStates(map[string]int{"Running": 1}, time.Now())
	if obs := m.AgentCallObserver(); obs != nil {
		t.Error("a nil Manager gives an agent call observer; a client would read the clock for nothing")
	}
}

func TestRecords(t *testing.T) {
	m := NewManager()
	endExec := m.SessionStarted(SessionExec)
	endBatch := m.SessionStarted(SessionBatch)
	m.CommandDone("list", "Vm", StatusOK)
	m.CommandDone("list", "Vm", StatusOK)
	m.CommandDone("start", "Vm", "XM_0404E")
	m.CommandDone("", "", "XM_0001E")
	m.JobDone("start Vm", "Success", 300*time.Millisecond)
	m.JobDone("start Vm", "Failure", time.Second)
	m.AgentCallObserver()("start_vm", "ok", 2*time.Millisecond)
	m.AgentCallObserver()("start_vm", "Busy", time.Millisecond)
	endExec()
	endExec() // a second end changes nothing

	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"xenmanager_sessions", map[string]string{"kind": "exec"}, 0},
		{"xenmanager_sessions", map[string]string{"kind": "batch"}, 1},
		{"xenmanager_sessions_started_total", map[string]string{"kind": "exec"}, 1},
		{"xenmanager_commands_total", map[string]string{"verb": "list", "type": "Vm", "status": "ok"}, 2},
		{"xenmanager_commands_total", map[string]string{"verb": "start", "type": "Vm", "status": "XM_0404E"}, 1},
		{"xenmanager_commands_total", map[string]string{"verb": "", "type": "", "status": "XM_0001E"}, 1},
		{"xenmanager_job_duration_seconds", map[string]string{"operation": "start Vm", "result": "Success"}, 1},
		{"xenmanager_job_duration_seconds", map[string]string{"operation": "start Vm", "result": "Failure"}, 1},
		{"xenmanager_agent_call_duration_seconds", map[string]string{"method": "start_vm", "result": "ok"}, 1},
		{"xenmanager_agent_call_duration_seconds", map[string]string{"method": "start_vm", "result": "Busy"}, 1},
	}
	for _, tc := range tests {
		got, found := value(t, m, tc.name, tc.labels)
		if !found || got != tc.want {
			t.Errorf("%s%v = %v (found %v), want %v", tc.name, tc.labels, got, found, tc.want)
		}
	}
	endBatch()
	if got, _ := value(t, m, "xenmanager_sessions", map[string]string{"kind": "batch"}); got != 0 {
		t.Errorf("batch sessions open after the last ended: %v", got)
	}
}

// A server state that empties reads 0 rather than vanishing, and the
// round's time is kept.
func TestServerStates(t *testing.T) {
	m := NewManager()
	first := time.Unix(1_700_000_000, 0)
	m.ServerStates(map[string]int{"Running": 2, "Unreachable": 1}, first)
	m.ServerStates(map[string]int{"Running": 3}, first.Add(5*time.Second))
	for state, want := range map[string]float64{"Running": 3, "Unreachable": 0} {
		got, found := value(t, m, "xenmanager_servers", map[string]string{"state": state})
		if !found || got != want {
			t.Errorf("xenmanager_servers{state=%q} = %v (found %v), want %v", state, got, found, want)
		}
	}
	if got, _ := value(t, m, "xenmanager_heartbeat_last_round_timestamp_seconds", nil); got != 1_700_000_005 {
		t.Errorf("last round at %v, want 1700000005", got)
	}
}

// The registry is the manager's own, with the Go runtime's and the
// process's collectors, and two managers do not share a series.
func TestRegistryOfItsOwn(t *testing.T) {
	a, b := NewManager(), NewManager()
	a.CommandDone("list", "Vm", StatusOK)
	if _, found := value(t, b, "xenmanager_commands_total", map[string]string{"verb": "list"}); found {
		t.Error("a command of one manager shows in another's metrics")
	}
	fams, err := a.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var goSeen, processSeen bool
	for _, f := range fams {
		goSeen = goSeen || strings.HasPrefix(f.GetName(), "go_")
		processSeen = processSeen || strings.HasPrefix(f.GetName(), "process_")
	}
	if !goSeen || !processSeen {
		t.Errorf("Go runtime metrics %v, process metrics %v; want both", goSeen, processSeen)
	}
}
