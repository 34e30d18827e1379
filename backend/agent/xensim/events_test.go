package xensim

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agentapi"
)

func TestStatistics(t *testing.T) {
	clock := newClock(time.Unix(1_700_000_000, 0))
	h := newHost(t, testConfig{MemoryMiB: 8192, CPUs: 4, Now: clock.Now})
	addRepo(t, h, t.TempDir(), "r1")
	st := must(h.GetStatistics())
	if st.Time != 1_700_000_000 || st.CPUPercent != 1.25 || st.MemoryFreeMiB != 7168 || st.VMs == nil || len(st.VMs) != 0 {
		t.Errorf("idle host = %+v, want Domain-0's 1.25 %% and no VMs", st)
	}
	for _, id := range []string{"a", "b"} {
		p := vmParams(1024, 2)
		p["uuid"] = "u-" + id
		mustOK(t, h.CreateVM("r1", id, p))
		mustOK(t, h.StartVM("r1", id))
	}
	clock.Advance(100 * time.Second)
	st1 := must(h.GetStatistics())
	clock.Advance(100 * time.Second)
	st2 := must(h.GetStatistics())
	if len(st2.VMs) != 2 || st2.VMs[0].UUID != "u-a" || st2.MemoryFreeMiB != 5120 {
		t.Fatalf("statistics = %+v", st2)
	}
	if want := (0.05 + 2*2*cpuLoad) / 4 * 100; st2.CPUPercent != round2(want) {
		t.Errorf("host cpu_percent = %v, want %v", st2.CPUPercent, want)
	}
	for i, v := range st2.VMs {
		before := st1.VMs[i]
		g := v.Guest
		switch {
		case v.CPUPercent != 50 || v.MemoryMiB != 1024:
			t.Errorf("%s: cpu %v, memory %d; want 50 %% (2 vCPUs at 25 %%) and 1024", v.UUID, v.CPUPercent, v.MemoryMiB)
		case v.NetRxBytes != 2*before.NetRxBytes || v.DiskWriteBytes != 2*before.DiskWriteBytes || v.NetTxBytes <= before.NetTxBytes || v.DiskReadBytes <= 0:
			t.Errorf("%s: counters do not grow with run time: %+v then %+v", v.UUID, before, v)
		case g.UptimeS != 200 || g.Load1 <= 0 || g.Load1 > 1 || g.Processes < 60 || g.MemUsedMiB <= 0 || g.MemUsedMiB >= 1024:
			t.Errorf("%s: guest = %+v", v.UUID, g)
		case !regexp.MustCompile(`^10\.\d+\.\d+\.\d+$`).MatchString(g.IP):
			t.Errorf("%s: guest ip %q", v.UUID, g.IP)
		}
	}
	if st2.VMs[0].NetRxBytes == st2.VMs[1].NetRxBytes && st2.VMs[0].Guest.IP == st2.VMs[1].Guest.IP {
		t.Errorf("two domains with the same figures: %+v", st2.VMs)
	}
	// Paused domains are listed idle; their counters stop.
	mustOK(t, h.PauseVM("r1", "a"))
	clock.Advance(100 * time.Second)
	st3 := must(h.GetStatistics())
	if a := st3.VMs[0]; a.CPUPercent != 0 || a.NetRxBytes != st2.VMs[0].NetRxBytes {
		t.Errorf("paused domain = %+v", a)
	}
	if st3.CPUPercent != round2((0.05+2*cpuLoad)/4*100) {
		t.Errorf("host cpu with one domain paused = %v", st3.CPUPercent)
	}
}

func console(t *testing.T, h *testHost) (net.Conn, *bufio.Reader) {
	t.Helper()
	client, server := net.Pipe()
	go h.ServeConsole(server)
	t.Cleanup(func() { client.Close() })
	return client, bufio.NewReader(client)
}

// readUntil reads until the output ends with suffix.
func readUntil(t *testing.T, r *bufio.Reader, suffix string) string {
	t.Helper()
	var b strings.Builder
	for !strings.HasSuffix(b.String(), suffix) {
		c, err := r.ReadByte()
		if err != nil {
			t.Fatalf("console output %q ended (%v) before %q", b.String(), err, suffix)
		}
		b.WriteByte(c)
	}
	return b.String()
}

func TestConsole(t *testing.T) {
	clock := newClock(time.Unix(1_700_000_000, 0))
	h := newHost(t, testConfig{Now: clock.Now})
	addRepo(t, h, t.TempDir(), "r1")
	mustOK(t, h.CreateVM("r1", "vm1", vmParams(256, 1)))
	_, err := h.OpenConsole("r1", "vm1")
	wantFault(t, err, agentapi.FaultNotFound, "does not run on this server")
	mustOK(t, h.StartVM("r1", "vm1"))
	token, err := h.OpenConsole("r1", "vm1")
	mustOK(t, err)

	c, r := console(t, h)
	fmt.Fprintf(c, "%s\n", token)
	out := readUntil(t, r, "web login: ")
	if !strings.Contains(out, "Linux version") {
		t.Errorf("boot log = %q", out)
	}
	fmt.Fprint(c, "root\r\n")
	if got := readUntil(t, r, "web login: "); got != "root\r\nweb login: " {
		t.Errorf("echo = %q", got)
	}
	// The session ends with the domain.
	mustOK(t, h.StopVM("r1", "vm1", true))
	if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
		t.Errorf("after the domain stopped: %q, %v; want the connection closed", rest, err)
	}

	// Tokens are single-use and expire.
	mustOK(t, h.StartVM("r1", "vm1"))
	token, err = h.OpenConsole("r1", "vm1")
	mustOK(t, err)
	c, r = console(t, h)
	fmt.Fprintf(c, "%s\n", token)
	readUntil(t, r, "login: ")
	c.Close()
	c, r = console(t, h)
	fmt.Fprintf(c, "%s\n", token)
	if got := readUntil(t, r, "\r\n"); !strings.Contains(got, "invalid, used or expired token") {
		t.Errorf("reused token: %q", got)
	}
	token, err = h.OpenConsole("r1", "vm1")
	mustOK(t, err)
	clock.Advance(hypervisor.ConsoleTokenTTL)
	c, r = console(t, h)
	fmt.Fprintf(c, "%s\n", token)
	if got := readUntil(t, r, "\r\n"); !strings.Contains(got, "invalid, used or expired token") {
		t.Errorf("expired token: %q", got)
	}
	// A token of a domain that ended since is refused.
	token, err = h.OpenConsole("r1", "vm1")
	mustOK(t, err)
	mustOK(t, h.RebootVM("r1", "vm1", 0))
	c, r = console(t, h)
	fmt.Fprintf(c, "%s\n", token)
	if got := readUntil(t, r, "\r\n"); !strings.Contains(got, "VM vm1 no longer runs (domain 2 ended)") {
		t.Errorf("token of an ended domain: %q", got)
	}
}

func TestReset(t *testing.T) {
	h := newHost(t, testConfig{})
	addRepo(t, h, t.TempDir(), "r1")
	mustOK(t, h.CreateVM("r1", "vm1", vmParams(256, 1)))
	mustOK(t, h.StartVM("r1", "vm1"))
	mustOK(t, h.SimSet(map[string]any{SimCrashVM: "vm1", SimHang: true, SimLatencyMS: map[string]any{"list_vms": 600_000}}))
	done := make(chan error, 1)
	go func() { done <- h.BeforeCall(t.Context(), "echo") }()
	waitFor(t, "the call to hang", func() bool { return h.HungCalls() == 1 })
	h.Reset()
	if err := <-done; err != nil {
		t.Errorf("hung call after Reset: %v", err)
	}
	mustOK(t, h.BeforeCall(t.Context(), "list_vms")) // the latency is gone (else this takes ten minutes)
	if len(must(h.ListVMs())) != 0 || h.FreeMemoryMiB() != DefaultMemoryMiB-1024 {
		t.Errorf("domains after Reset: %+v", must(h.ListVMs()))
	}
	if len(h.Repositories()) != 1 || len(h.Events(0).Events) != 1 {
		t.Errorf("Reset lost repositories or events")
	}
}
