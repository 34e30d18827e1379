package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"xenmanager/backend/metrics"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads /metrics at addr with the Prometheus text parser.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := httpGet(t, "http://"+addr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics on %s: %d\n%s", addr, code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics on %s is not the text format: %v", addr, err)
	}
	return fams
}

// seriesValue is one series of fams (metrics.SeriesValue); -1 when there
// is none.
func seriesValue(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	v, found := metrics.SeriesValue([]*dto.MetricFamily{fams[name]}, name, labels)
	if !found {
		return -1
	}
	return v
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// A manager and an agent started with --metrics-listen serve /metrics and
// /healthz on an address of their own: the manager counts the SSH sessions
// by kind, the commands by verb, type and status, the jobs and its agent
// calls, the servers by state; the agent counts the calls it served and
// shows its domains by state.
func TestOpenSSHMetricsAndHealth(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	agentPort, _, agentMetrics := runAgentMetrics(t, filepath.Join(dir, "agent"), "metrics-secret",
		"--hostname", "watched1", "--metrics-listen", "127.0.0.1:0")
	if agentMetrics == "" {
		t.Fatal("xenagent --metrics-listen did not say where it serves the metrics")
	}
	data := filepath.Join(dir, "data")
	m := startManagerWith(t, data, nil, "--listen", "127.0.0.1:0", "--data", data,
		"--metrics-listen", "127.0.0.1:0", "--heartbeat-interval", "200ms")
	if m.metrics == "" {
		t.Fatalf("xenmanager serve --metrics-listen did not say where it serves the metrics:\n%s", m.stderr)
	}
	for _, addr := range []string{m.metrics, agentMetrics} {
		if code, body := httpGet(t, "http://"+addr+"/healthz"); code != http.StatusOK || body != "ok\n" {
			t.Errorf("GET /healthz on %s: %d %q, want 200 ok", addr, code, body)
		}
	}

	script := fmt.Sprintf(`discoverServer ipAddress=127.0.0.1 port=%s password=metrics-secret
create ServerPool name=watched
add Server name=watched1 to ServerPool name=watched
create Repository name=watchedrepo fsLocation=%s on ServerPool name=watched
create Vm name=web1 repository=watchedrepo memory=512
start Vm name=web1
`, agentPort, filepath.Join(dir, "repo"))
	if out, status := m.ssh(script, false); status != 0 {
		t.Fatalf("batch: exit %d\n%s", status, out)
	}
	if out, status := m.ssh("", false, "show Vm name=nowhere"); status == 0 {
		t.Fatalf("show of a VM that does not exist succeeded:\n%s", out)
	}

	// A batch session counts as open while its client is connected.
	client := m.sshCommand(false, "-T")
	stdin, err := client.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := client.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(stdin, "list Server\n")
	answered := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := false
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Status: Success") {
				ok = true
				break
			}
		}
		answered <- ok
		io.Copy(io.Discard, stdout)
	}()
	select {
	case ok := <-answered:
		if !ok {
			t.Fatal("the batch session ended without answering list Server")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the batch session did not answer list Server within 60 s")
	}
	open := scrape(t, m.metrics)
	stdin.Close()
	if err := client.Wait(); err != nil {
		t.Fatalf("batch session: %v", err)
	}
	if got := seriesValue(open, "xenmanager_sessions", map[string]string{"kind": "batch"}); got != 1 {
		t.Errorf("batch sessions open while one is connected: %v, want 1", got)
	}

	// The heartbeat counts the server Running (its interval is 200 ms).
	deadline := time.Now().Add(30 * time.Second)
	fams := scrape(t, m.metrics)
	for seriesValue(fams, "xenmanager_servers", map[string]string{"state": "Running"}) != 1 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		fams = scrape(t, m.metrics)
	}
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"xenmanager_servers", map[string]string{"state": "Running"}, 1},
		{"xenmanager_sessions_started_total", map[string]string{"kind": "batch"}, 2},
		{"xenmanager_sessions_started_total", map[string]string{"kind": "exec"}, 1},
		{"xenmanager_sessions", map[string]string{"kind": "batch"}, 0},
		{"xenmanager_sessions", map[string]string{"kind": "exec"}, 0},
		{"xenmanager_commands_total", map[string]string{"verb": "discoverServer", "type": "", "status": "ok"}, 1},
		{"xenmanager_commands_total", map[string]string{"verb": "start", "type": "Vm", "status": "ok"}, 1},
		{"xenmanager_commands_total", map[string]string{"verb": "list", "type": "Server", "status": "ok"}, 1},
		{"xenmanager_commands_total", map[string]string{"verb": "show", "type": "Vm", "status": "XM_0404E"}, 1},
		{"xenmanager_job_duration_seconds", map[string]string{"operation": "start Vm", "result": "Success"}, 1},
		{"xenmanager_job_duration_seconds", map[string]string{"operation": "create Vm", "result": "Success"}, 1},
		{"xenmanager_agent_call_duration_seconds", map[string]string{"method": "start_vm", "result": "ok"}, 1},
	}
	for _, tc := range tests {
		if got := seriesValue(fams, tc.name, tc.labels); got != tc.want {
			t.Errorf("manager: %s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if seriesValue(fams, "go_goroutines", nil) <= 0 || seriesValue(fams, "process_open_fds", nil) <= 0 {
		t.Error("the manager's metrics lack the Go runtime's or the process's")
	}

	agent := scrape(t, agentMetrics)
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"xenagent_call_duration_seconds", map[string]string{"method": "start_vm", "result": "ok"}, 1},
		{"xenagent_call_duration_seconds", map[string]string{"method": "discover_server", "result": "ok"}, 1},
		{"xenagent_domains", map[string]string{"state": "running"}, 1},
		{"xenagent_hypervisor_up", nil, 1},
	} {
		if got := seriesValue(agent, tc.name, tc.labels); got != tc.want {
			t.Errorf("agent: %s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if seriesValue(agent, "xenagent_call_duration_seconds", map[string]string{"method": "get_events", "result": "ok"}) < 1 {
		t.Error("the agent counted none of the manager's heartbeats (get_events)")
	}
}
