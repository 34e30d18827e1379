package backend_test

import (
	"context"
	"testing"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/managertest"
	"xenmanager/backend/metrics"
)

// Jobs count under their operation and result, never a VM's name, and the
// manager's agent calls under their method and outcome.
func TestMetricsOfJobsAndAgentCalls(t *testing.T) {
	mx := metrics.NewManager()
	c := managertest.Ready(t, managertest.Options{Agents: 1, Metrics: mx})
	ctx := c.Admin()
	if _, err := c.Manager.CreateVM(ctx, backend.CreateVMRequest{Name: "web1", Repository: backend.Ref{Name: managertest.Repo},
		MemoryMiB: 256, CPUCount: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Manager.StartVM(ctx, backend.Ref{Name: "web1"}); err != nil {
		t.Fatal(err)
	}
	// The agent fails the next stop_vm: the job fails on the agent's
	// fault.
	if err := c.AgentClient(0).Call(context.Background(), agentapi.MethodSimSet, nil,
		map[string]any{"fail_next": map[string]any{agentapi.MethodStopVM: "disk on fire"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Manager.StopVM(ctx, backend.Ref{Name: "web1"}); err == nil {
		t.Fatal("stop Vm succeeded on an agent told to fail it")
	}

	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"xenmanager_job_duration_seconds", map[string]string{"operation": "create Vm", "result": "Success"}, 1},
		{"xenmanager_job_duration_seconds", map[string]string{"operation": "start Vm", "result": "Success"}, 1},
		{"xenmanager_job_duration_seconds", map[string]string{"operation": "stop Vm", "result": "Failure"}, 1},
		{"xenmanager_job_duration_seconds", map[string]string{"operation": "discoverServer", "result": "Success"}, 1},
		{"xenmanager_agent_call_duration_seconds", map[string]string{"method": agentapi.MethodStartVM, "result": "ok"}, 1},
		{"xenmanager_agent_call_duration_seconds", map[string]string{"method": agentapi.MethodStopVM, "result": "InternalError"}, 1},
	}
	for _, tc := range tests {
		if got := mx.Value(tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if got := mx.Value("xenmanager_job_duration_seconds", map[string]string{"operation": "start Vm web1"}); got != 0 {
		t.Errorf("a job counts under a label that names its VM")
	}
}

// After each heartbeat round the metrics count the servers per state: a
// server whose agent hangs moves from Running to Unreachable there.
func TestMetricsOfServerStates(t *testing.T) {
	mx := metrics.NewManager()
	c := managertest.Ready(t, managertest.Options{Agents: 2, Metrics: mx})
	ctx := context.Background()
	servers := func(state string) float64 {
		return mx.Value("xenmanager_servers", map[string]string{"state": state})
	}
	before := time.Now()
	c.Manager.Beat(ctx, 5*time.Second)
	if servers(backend.ServerRunning) != 2 || servers(backend.ServerUnreachable) != 0 {
		t.Fatalf("after a round with both agents up: Running %v, Unreachable %v; want 2 and 0",
			servers(backend.ServerRunning), servers(backend.ServerUnreachable))
	}
	if at := mx.Value("xenmanager_heartbeat_last_round_timestamp_seconds", nil); at < float64(before.Unix()) {
		t.Errorf("last round at %v, before the round began (%v)", at, before.Unix())
	}

	if err := c.AgentClient(1).Call(ctx, agentapi.MethodSimSet, nil, map[string]any{"hang": true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.AgentClient(1).Call(context.Background(), agentapi.MethodSimSet, nil, map[string]any{"hang": false})
	})
	for range 3 { // three misses in a row make a server Unreachable
		c.Manager.Beat(ctx, 300*time.Millisecond)
	}
	if servers(backend.ServerRunning) != 1 || servers(backend.ServerUnreachable) != 1 {
		t.Fatalf("after three rounds with ovs2 hung: Running %v, Unreachable %v; want 1 and 1",
			servers(backend.ServerRunning), servers(backend.ServerUnreachable))
	}
	if got := mx.Value("xenmanager_agent_call_duration_seconds", map[string]string{"method": agentapi.MethodGetEvents, "result": "unreachable"}); got != 3 {
		t.Errorf("get_events unreachable %v times, want 3", got)
	}
}
