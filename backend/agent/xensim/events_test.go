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

	"xenmanager/backend/agentapi"
)

func TestEvents(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	h := newHost(t, Config{Now: clock.Now})
	addRepo(t, h, t.TempDir(), "r1")
	for _, id := range []string{"a", "b"} {
		p := vmParams(256, 1)
		p["uuid"] = "u-" + id
		mustOK(t, h.CreateVM("r1", id, p))
		mustOK(t, h.StartVM("r1", id))
	}
	if ev := h.Events(0); ev.Next != 0 || len(ev.Events) != 0 {
		t.Fatalf("events of calls: %+v, want none", ev)
	}
	mustOK(t, h.StopVM("r1", "b", false)) // caused by a call: no event
	mustOK(t, h.StartVM("r1", "b"))
	mustOK(t, h.SimSet(map[string]any{SimCrashVM: "u-a"}))
	clock.Advance(time.Second)
	mustOK(t, h.SimSet(map[string]any{SimGuestShutdown: "b"}))
	wantFault(t, h.SimSet(map[string]any{SimGuestShutdown: "a"}), agentapi.FaultInvalidState, "domain a is crashed")
	wantFault(t, h.SimSet(map[string]any{SimGuestShutdown: "b"}), agentapi.FaultNotFound, "no live domain b")

	ev := h.Events(0)
	want := []agentapi.Event{
		{Seq: 1, Time: 1_700_000_000, Kind: agentapi.EventVMCrashed, VMUUID: "u-a", RepoID: "r1", State: agentapi.StateCrashed, Detail: "the guest crashed (simulated)"},
		{Seq: 2, Time: 1_700_000_001, Kind: agentapi.EventVMShutdown, VMUUID: "u-b", RepoID: "r1", State: agentapi.StateShutdown, Detail: "the guest powered itself off"},
	}
	if ev.Next != 2 || fmt.Sprint(ev.Events) != fmt.Sprint(want) {
		t.Errorf("events = %+v, want next 2 and %+v", ev, want)
	}
	if _, err := h.ListVM("r1", "b"); err == nil {
		t.Error("a guest that shut itself down is still a domain")
	}
	if ev := h.Events(1); len(ev.Events) != 1 || ev.Events[0].Seq != 2 {
		t.Errorf("events since 1 = %+v", ev)
	}
	if ev := h.Events(2); len(ev.Events) != 0 || ev.Next != 2 {
		t.Errorf("events since 2 = %+v", ev)
	}
	if ev := h.Events(99); len(ev.Events) != 2 {
		t.Errorf("a cursor from another process must get everything held, got %+v", ev)
	}

	// The ring keeps the newest maxEvents.
	for range maxEvents + 5 {
		h.events.add(agentapi.Event{Kind: "test"})
	}
	ev = h.Events(0)
	if len(ev.Events) != maxEvents || ev.Events[0].Seq != 8 || ev.Next != maxEvents+7 {
		t.Errorf("after overflow: %d events from seq %d, next %d", len(ev.Events), ev.Events[0].Seq, ev.Next)
	}
}

func TestStatistics(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	h := newHost(t, Config{MemoryMiB: 8192, CPUs: 4, Now: clock.Now})
	addRepo(t, h, t.TempDir(), "r1")
	st := h.GetStatistics()
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
	st1 := h.GetStatistics()
	clock.Advance(100 * time.Second)
	st2 := h.GetStatistics()
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
	st3 := h.GetStatistics()
	if a := st3.VMs[0]; a.CPUPercent != 0 || a.NetRxBytes != st2.VMs[0].NetRxBytes {
		t.Errorf("paused domain = %+v", a)
	}
	if st3.CPUPercent != round2((0.05+2*cpuLoad)/4*100) {
		t.Errorf("host cpu with one domain paused = %v", st3.CPUPercent)
	}
}

func TestDiscoverNetwork(t *testing.T) {
	dir := t.TempDir()
	h := newHost(t, Config{DataDir: dir})
	nets := h.DiscoverNetwork("192.0.2.7")
	if len(nets) != 1 {
		t.Fatalf("networks = %+v", nets)
	}
	n := nets[0]
	if n.Name != "xenbr0" || n.Device != "eth0" || n.Address != "192.0.2.7" || n.MTU != 1500 ||
		!regexp.MustCompile(`^02(:[0-9a-f]{2}){5}$`).MatchString(n.MAC) {
		t.Errorf("bridge = %+v", n)
	}
	if again := newHost(t, Config{DataDir: dir}).DiscoverNetwork(""); again[0].MAC != n.MAC {
		t.Errorf("MAC changed across a restart: %s -> %s", n.MAC, again[0].MAC)
	}
	if other := newHost(t, Config{}).DiscoverNetwork(""); other[0].MAC == n.MAC {
		t.Errorf("two hosts share the MAC %s", n.MAC)
	}
}

// console connects a client to h.ServeConsole over an in-memory pipe.
func console(t *testing.T, h *Host) (net.Conn, *bufio.Reader) {
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
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	h := newHost(t, Config{Now: clock.Now})
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
	clock.Advance(ConsoleTokenTTL)
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
	h := newHost(t, Config{})
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
	if len(h.ListVMs()) != 0 || h.FreeMemoryMiB() != DefaultMemoryMiB-1024 {
		t.Errorf("domains after Reset: %+v", h.ListVMs())
	}
	if len(h.Repositories()) != 1 || len(h.Events(0).Events) != 1 {
		t.Errorf("Reset lost repositories or events")
	}
}
