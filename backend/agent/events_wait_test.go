package agent

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
)

// TestGetEventsWaitParameters: get_events takes its wait as an optional
// second parameter; the agent lists the extension; a wait outside 0 to
// MaxEventsWaitMS, or of another type, is refused with a fault that says
// the bound; one parameter still answers as the Oracle VM Agent API's.
func TestGetEventsWaitParameters(t *testing.T) {
	a := startAgent(t, Config{})
	c := a.client(t)
	var ver agentapi.VersionInfo
	mustCall(t, c, agentapi.MethodGetAPIVersion, nil, &ver)
	if !ver.Has(agentapi.ExtEventsWait) {
		t.Fatalf("extensions %v lack %s", ver.Extensions, agentapi.ExtEventsWait)
	}
	tests := []struct {
		name    string
		args    []any
		wantErr string // "" when the call must answer
	}{
		{"no wait", []any{0}, ""},
		{"wait 0", []any{0, 0}, ""},
		{"a wait from an old cursor", []any{99, 20_000}, ""}, // another process's cursor: at once
		{"negative", []any{0, -1}, "get_events: wait_ms must be from 0 to 30000 (30 s), got -1"},
		{"beyond the bound", []any{0, agentapi.MaxEventsWaitMS + 1}, "wait_ms must be from 0 to 30000 (30 s), got 30001"},
		{"not an int", []any{0, true}, "parameter 2 (wait_ms) must be a int"},
		{"three parameters", []any{0, 1, 2}, "get_events takes 1 to 2 parameters (since int, [wait_ms int]), got 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev agentapi.Events
			err := c.Call(agentapi.MethodGetEvents, tt.args, &ev)
			if tt.wantErr != "" {
				wantFault(t, err, agentapi.FaultInvalidArgument, tt.wantErr)
				return
			}
			if err != nil || ev.Instance == "" {
				t.Fatalf("get_events%v = %+v, %v", tt.args, ev, err)
			}
		})
	}
}

// TestHeldGetEventsTakesNoSlot: a get_events the agent holds takes the
// client's held slot, not one of its Conns: with a single slot, other
// calls go through while it waits (a crash injected by one of them wakes
// it, with the event); and a held call whose caller leaves frees the
// agent's goroutine at once, not at the wait's end.
func TestHeldGetEventsTakesNoSlot(t *testing.T) {
	a := startAgent(t, Config{SimControl: true})
	host, port, _ := net.SplitHostPort(a.addr.String())
	p, _ := strconv.Atoi(port)
	c, err := agentclient.New(agentclient.Config{Address: host, Port: p, Password: testPassword,
		PinSHA256: a.SPKISHA256(), Conns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.CreateRepository(ctx, t.TempDir(), "/OVS/Repositories/r1", "r1", "repo"); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateVM(ctx, "r1", "a", agentapi.VMParams{"name": "a", "uuid": "u-a", "memory": int64(256), "vcpus": int64(1)}); err != nil {
		t.Fatal(err)
	}
	if err := c.StartVM(ctx, "r1", "a"); err != nil {
		t.Fatal(err)
	}
	first, err := c.GetEvents(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}

	wait := agentapi.MaxEventsWaitMS * time.Millisecond
	type answer struct {
		ev  agentapi.Events
		err error
	}
	done := make(chan answer, 1)
	go func() {
		ev, err := c.GetEventsWait(ctx, first.Next, wait)
		done <- answer{ev, err}
	}()
	waitFor(t, "the agent to hold the call", func() bool { return a.Host().EventWaiters() == 1 })
	if _, err := c.Echo(ctx, "beside the held call"); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-done:
		t.Fatalf("the held call answered (%+v, %v) before any event: the echo waited for it", got.ev, got.err)
	default:
	}
	if err := c.Call(ctx, agentapi.MethodSimSet, nil, map[string]any{"crash_vm": "u-a"}); err != nil {
		t.Fatal(err)
	}
	got := <-done
	if got.err != nil || len(got.ev.Events) != 1 || got.ev.Events[0].Kind != agentapi.EventVMCrashed {
		t.Fatalf("held call = %+v, %v; want the crash", got.ev, got.err)
	}

	// The caller leaves: the agent's call ends with the connection.
	hctx, cancel := context.WithCancel(ctx)
	go func() {
		_, err := c.GetEventsWait(hctx, got.ev.Next, wait)
		done <- answer{err: err}
	}()
	waitFor(t, "the agent to hold the call", func() bool { return a.Host().EventWaiters() == 1 })
	cancel()
	if got := <-done; got.err == nil {
		t.Fatal("a held call whose context ended answered without an error")
	}
	waitFor(t, "the agent to let the call go", func() bool { return a.Host().EventWaiters() == 0 })
	if got := a.Host().EventWaiters(); got != 0 {
		t.Fatalf("%d calls wait", got)
	}
}

// TestWithoutEventsWait: an agent told to act as one from before the wait
// does not list it and refuses a wait as that agent would, while a
// get_events without one answers.
func TestWithoutEventsWait(t *testing.T) {
	a := startAgent(t, Config{WithoutEventsWait: true})
	c := a.client(t)
	var ver agentapi.VersionInfo
	mustCall(t, c, agentapi.MethodGetAPIVersion, nil, &ver)
	if ver.Has(agentapi.ExtEventsWait) || !ver.Has(agentapi.ExtHALeases) {
		t.Fatalf("extensions %v: want every one but %s", ver.Extensions, agentapi.ExtEventsWait)
	}
	var ev agentapi.Events
	wantFault(t, c.Call(agentapi.MethodGetEvents, []any{0, 1000}, &ev), agentapi.FaultInvalidArgument,
		"get_events takes 1 parameters (since int), got 2")
	mustCall(t, c, agentapi.MethodGetEvents, []any{0}, &ev)
}
