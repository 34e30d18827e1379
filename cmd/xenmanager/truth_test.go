package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// showField returns the value of "Key = value" in show's Verbose output.
func showField(out, key string) string {
	m := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(key) + ` = (.*)$`).FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[1]
}

// An agent process killed and started again on the same data directory
// (its simulated host, rebooted, runs none of the VMs it ran) is seen for
// what it is within a few heartbeats: while it is down its server is
// Unreachable and its VMs show Unknown and refuse to be stopped; once it
// answers as a new process the manager reconciles it at once, and every VM
// it ran is Stopped with a VmLost event, beside an AgentRestarted event of
// the server.
func TestOpenSSHAgentRestartLosesItsVMs(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	agentData := filepath.Join(dir, "agent")
	agent := startAgentProcess(t, agentData, "restart-secret", "--hostname", "ovsr", "--memory-mib", "4096", "--cpus", "2",
		"--metrics-listen", "127.0.0.1:0")
	port := agent.port
	data := filepath.Join(dir, "data")
	const beat = 500 * time.Millisecond
	m := startManagerWith(t, data, nil, "--listen", "127.0.0.1:0", "--data", data, "--demo", "0", "--heartbeat-interval", beat.String())
	script := fmt.Sprintf(`discoverServer ipAddress=127.0.0.1 port=%s password=restart-secret
create ServerPool name=rp
add Server name=ovsr to ServerPool name=rp
create Repository name=rr fsLocation=%s on ServerPool name=rp
create Vm name=r1 repository=rr memory=256
create Vm name=r2 repository=rr memory=256
start Vm name=r1
start Vm name=r2
`, port, filepath.Join(dir, "repo"))
	if out, status := m.ssh(script, false); status != 0 {
		t.Fatalf("setup: exit %d\n%s", status, out)
	}
	run := func(cmd string) string {
		t.Helper()
		out, status := m.ssh("", false, cmd)
		if status != 0 {
			t.Fatalf("%s: exit %d\n%s", cmd, status, out)
		}
		return out
	}
	// A bounded wait: generous beside the heartbeat, so that a loaded
	// machine does not fail it; what is asserted is what happens, not how
	// fast.
	within := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(40 * beat)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("not within %v: %s\n%s", 40*beat, what, run("getEvents"))
			}
			time.Sleep(beat / 2)
		}
	}

	// The manager has heard from this agent process: a second heartbeat
	// call (get_events) comes only after the first answer was taken in.
	within("two heartbeats of the manager at the agent", func() bool {
		return seriesValue(scrape(t, agent.metrics), "xenagent_call_duration_seconds", map[string]string{"method": "get_events", "result": "ok"}) >= 2
	})
	if err := agent.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-agent.waited
	within("the server Unreachable", func() bool { return showField(run("show Server name=ovsr"), "Status") == "Unreachable" })
	if st := showField(run("show Vm name=r1"), "Status"); st != "Unknown" {
		t.Errorf("a VM of the dead agent's server is %s, want Unknown", st)
	}
	if out := run("list Vm status=Unknown"); !strings.Contains(out, "name:r1") || !strings.Contains(out, "name:r2") {
		t.Errorf("list Vm status=Unknown:\n%s", out)
	}
	out, status := m.ssh("", false, "stop Vm name=r1")
	if status == 0 || !strings.Contains(out, "its server ovsr is unreachable") || !strings.Contains(out, "stop Vm name=r1 force=Yes") {
		t.Errorf("stop of an Unknown VM: exit %d\n%s", status, out)
	}

	startAgentProcess(t, agentData, "restart-secret", "--hostname", "ovsr", "--memory-mib", "4096", "--cpus", "2", "--listen", "127.0.0.1:"+port)
	within("both VMs Stopped with a VmLost event each, and the server's AgentRestarted", func() bool {
		events := run("getEvents")
		return showField(run("show Vm name=r1"), "Status") == "Stopped" && showField(run("show Vm name=r2"), "Status") == "Stopped" &&
			strings.Count(events, "name:VmLost") == 2 && strings.Contains(events, "name:AgentRestarted")
	})
	if st := showField(run("show Server name=ovsr"), "Status"); st != "Running" {
		t.Errorf("the server is %s after its agent answers again", st)
	}
	if st := showField(run("start Vm name=r1; show Vm name=r1"), "Status"); st != "Running" {
		t.Errorf("r1 after start on the restarted agent: %s", st)
	}
}
