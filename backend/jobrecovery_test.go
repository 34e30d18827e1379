package backend_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/managertest"
	"xenmanager/backend/metrics"
	"xenmanager/store"
)

// The leader ends a dead manager's job by the step it recorded before its
// agent call: it asks the agents how far the call got, ends the job
// Success with the VM recorded where the call left it, or Failure with the
// VM recorded as before it, and leaves the VM as recorded when a server
// does not answer. Each case is a VM, its domain on the agents (started
// behind the manager), what the store says, and the dead job's step.
func TestLeaderFinishesOrUndoesADeadManagersJobByItsStep(t *testing.T) {
	mx := metrics.NewManager()
	c := managertest.Ready(t, managertest.Options{Agents: 3, Metrics: mx})
	ctx := c.Admin()
	servers := map[string]backend.Server{}
	for _, name := range []string{"ovs1", "ovs2", "ovs3"} {
		s, err := c.Manager.Server(ctx, backend.Ref{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		servers[name] = s
	}
	agents := map[string]int{"ovs1": 0, "ovs2": 1, "ovs3": 2}
	type state struct{ server, status string }
	cases := []struct {
		name     string
		domainOn string // the agent where the VM's domain runs, "" for none
		recorded state  // before the leader
		call     string
		from, to string // the step's servers
		fault    string // the agent whose list_vm fails once
		status   string // the job's end
		says     string // in its result or error
		want     state  // the VM after the leader
	}{
		{name: "start reached the agent", domainOn: "ovs1", recorded: state{"", backend.VMStopped}, call: agentapi.MethodStartVM, from: "ovs1",
			status: backend.JobSuccess, says: "(start_vm sent to server ovs1); Vm s-done runs there", want: state{"ovs1", backend.VMRunning}},
		{name: "start never ran", recorded: state{"", backend.VMStopped}, call: agentapi.MethodStartVM, from: "ovs1",
			status: backend.JobFailure, says: "(start_vm sent to server ovs1); Vm s-undone does not run there: it stays as recorded before the start", want: state{"", backend.VMStopped}},
		{name: "stop reached the agent", recorded: state{"ovs1", backend.VMRunning}, call: agentapi.MethodStopVM, from: "ovs1",
			status: backend.JobSuccess, says: "no longer runs there: it is Stopped", want: state{"", backend.VMStopped}},
		{name: "stop never ran", domainOn: "ovs2", recorded: state{"ovs2", backend.VMRunning}, call: agentapi.MethodStopVM, from: "ovs2",
			status: backend.JobFailure, says: "(stop_vm sent to server ovs2); Vm t-undone still runs there", want: state{"ovs2", backend.VMRunning}},
		{name: "migration done", domainOn: "ovs2", recorded: state{"ovs1", backend.VMRunning}, call: agentapi.MethodMigrateVM, from: "ovs1", to: "ovs2",
			status: backend.JobSuccess, says: "(migrate_vm sent to server ovs1, to server ovs2); Vm m-done runs on ovs2", want: state{"ovs2", backend.VMRunning}},
		{name: "migration never ran", domainOn: "ovs1", recorded: state{"ovs1", backend.VMRunning}, call: agentapi.MethodMigrateVM, from: "ovs1", to: "ovs2",
			status: backend.JobFailure, says: "Vm m-undone still runs on ovs1", want: state{"ovs1", backend.VMRunning}},
		{name: "the server does not answer", domainOn: "ovs3", recorded: state{"", backend.VMStopped}, call: agentapi.MethodStartVM, from: "ovs3", fault: "ovs3",
			status: backend.JobFailure, says: "server ovs3 does not answer, so the VM stays as recorded until it does",
			// The reconciliation after the take-over then finds it running.
			want: state{"ovs3", backend.VMRunning}},
		{name: "no step", recorded: state{"", backend.VMStopped},
			status: backend.JobFailure, says: "has not been heard from for more than 3s while the job ran; the leader ended the job", want: state{"", backend.VMStopped}},
	}
	vmNames := []string{"s-done", "s-undone", "t-done", "t-undone", "m-done", "m-undone", "silent", "nostep"}
	jobIDs := make([]string, len(cases))
	vmIDs := make([]string, len(cases))
	for i, tc := range cases {
		v, err := c.Manager.CreateVM(ctx, backend.CreateVMRequest{Name: vmNames[i], Repository: backend.Ref{Name: managertest.Repo},
			MemoryMiB: 256, CPUCount: 1})
		if err != nil {
			t.Fatal(err)
		}
		vmIDs[i] = v.ID
		if tc.domainOn != "" {
			if err := c.AgentClient(agents[tc.domainOn]).StartVM(context.Background(), v.Repository.ID, v.ID); err != nil {
				t.Fatal(err)
			}
		}
		if tc.fault != "" {
			err := c.AgentClient(agents[tc.fault]).Call(context.Background(), agentapi.MethodSimSet, nil,
				map[string]any{"fail_next": map[string]any{agentapi.MethodListVM: "injected"}})
			if err != nil {
				t.Fatal(err)
			}
		}
		jobIDs[i] = "j-" + vmNames[i]
	}
	err := c.Store.Write(context.Background(), func(q *store.Queries) error {
		now, err := q.Now(context.Background())
		if err != nil {
			return err
		}
		if err := q.RenewMember(ctx, store.Member{ID: "dead", Hostname: "gone-host", PID: 99, Started: now.Add(-2 * time.Hour)}, now.Add(-time.Hour)); err != nil {
			return err
		}
		for i, tc := range cases {
			serverID := ""
			if tc.recorded.server != "" {
				serverID = servers[tc.recorded.server].ID
			}
			if err := q.SetVMState(ctx, vmIDs[i], serverID, tc.recorded.status); err != nil {
				return err
			}
			j := store.Job{ID: jobIDs[i], ManagerID: "dead", Summary: "a job on " + vmNames[i], User: "admin", Status: backend.JobRunning,
				Objects: vmIDs[i], CreatedAt: now}
			if err := q.InsertJob(ctx, j); err != nil {
				return err
			}
			if tc.call == "" {
				continue
			}
			step := `{"call":"` + tc.call + `","vm":"` + vmIDs[i] + `","server":"` + servers[tc.from].ID + `"`
			if tc.to != "" {
				step += `,"to":"` + servers[tc.to].ID + `"`
			}
			if err := q.SetJobStep(ctx, j.ID, step+"}"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	runMember(t, c, backend.MemberConfig{Hostname: "mgr1"}) // its take-over ends the dead manager's jobs
	if v := mx.Value("xenmanager_leader", nil); v != 1 {
		t.Errorf("xenmanager_leader = %v; want 1 on the leader", v)
	}
	want := map[string]float64{backend.JobSuccess: 0, backend.JobFailure: 0}
	for _, tc := range cases {
		want[tc.status]++
	}
	for result, n := range want {
		if v := mx.Value("xenmanager_jobs_recovered_total", map[string]string{"result": result}); v != n {
			t.Errorf("xenmanager_jobs_recovered_total{result=%q} = %v; want %v", result, v, n)
		}
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			jb, err := c.Manager.Job(ctx, jobIDs[i])
			if err != nil {
				t.Fatal(err)
			}
			said := jb.Result + jb.Error
			if jb.Status != tc.status || !strings.Contains(said, tc.says) || !strings.Contains(said, "manager dead (gone-host, pid 99)") {
				t.Errorf("job: %s %q; want %s saying %q", jb.Status, said, tc.status, tc.says)
			}
			v, err := c.Manager.VM(ctx, backend.Ref{ID: vmIDs[i]})
			if err != nil {
				t.Fatal(err)
			}
			if v.Status != tc.want.status || v.Server.Name != tc.want.server {
				t.Errorf("VM: %s on %q; want %s on %q", v.Status, v.Server.Name, tc.want.status, tc.want.server)
			}
		})
	}
}

// Each verb that puts a VM somewhere or takes it away records its agent
// call as the job's step before making it: the call, the VM and the
// server called (and a migration's destination).
func TestJobsRecordTheirStep(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 2})
	ctx := c.Admin()
	v, err := c.Manager.CreateVM(ctx, backend.CreateVMRequest{Name: "stepper", Repository: backend.Ref{Name: managertest.Repo},
		MemoryMiB: 256, CPUCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	ref := backend.Ref{Name: "stepper"}
	where := func() string {
		got, err := c.Manager.VM(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		return got.Server.ID
	}
	var from string
	for _, tc := range []struct {
		verb string
		run  func() error
		call string
	}{
		{"start", func() error { _, err := c.Manager.StartVM(ctx, ref); return err }, agentapi.MethodStartVM},
		{"pause", func() error { _, err := c.Manager.PauseVM(ctx, ref); return err }, agentapi.MethodPauseVM},
		{"unpause", func() error { _, err := c.Manager.UnpauseVM(ctx, ref); return err }, agentapi.MethodUnpauseVM},
		{"migrate", func() error { from = where(); _, _, err := c.Manager.MigrateVM(ctx, ref, backend.Ref{}); return err }, agentapi.MethodMigrateVM},
		{"kill", func() error { _, err := c.Manager.KillVM(ctx, ref); return err }, agentapi.MethodStopVM},
	} {
		before := where()
		if err := tc.run(); err != nil {
			t.Fatalf("%s: %v", tc.verb, err)
		}
		job, err := newestJob(c.Store, tc.verb+" Vm")
		if err != nil {
			t.Fatalf("%s: the newest job: %v", tc.verb, err)
		}
		server, to := before, ""
		switch tc.verb {
		case "start":
			server = where()
		case "migrate":
			server, to = from, where()
		}
		want := `{"call":"` + tc.call + `","vm":"` + v.ID + `","server":"` + server + `"`
		if to != "" {
			want += `,"to":"` + to + `"`
		}
		if want += "}"; job.Step != want {
			t.Errorf("%s recorded step %s; want %s", tc.verb, job.Step, want)
		}
	}
}

// A manager whose membership has gone unrenewed for nearly the member
// timeout makes no further agent call for its jobs: the leader may take it
// for dead and end them by what the agents report. A manager alone on its
// database (SQLite, Sole) cannot be taken for dead and goes on. (Joined
// but never run, the membership is renewed by no one.)
func TestAManagerThatMayBeTakenForDeadMakesNoAgentCall(t *testing.T) {
	for _, tc := range []struct {
		engine  string
		opts    managertest.Options
		sole    bool
		refused bool
	}{
		{"sqlite alone", managertest.Options{Agents: 1}, true, false},
		{"postgres", managertest.Options{Agents: 1, Postgres: true}, false, true},
	} {
		t.Run(tc.engine, func(t *testing.T) {
			c := managertest.Ready(t, tc.opts)
			ctx := c.Admin()
			if _, err := c.Manager.CreateVM(ctx, backend.CreateVMRequest{Name: "late", Repository: backend.Ref{Name: managertest.Repo},
				MemoryMiB: 256, CPUCount: 1}); err != nil {
				t.Fatal(err)
			}
			const renew, timeout = 100 * time.Millisecond, 300 * time.Millisecond
			cfg := backend.MemberConfig{Hostname: "mgr1", Renew: renew, Timeout: timeout, Lease: timeout, Sole: tc.sole}
			if _, err := c.Manager.Join(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			// No renewal comes: the condition is time itself, past what
			// checkAlive allows.
			time.Sleep(timeout)
			_, err := c.Manager.StartVM(ctx, backend.Ref{Name: "late"})
			domains, lerr := c.AgentClient(0).ListVMs(context.Background())
			if lerr != nil {
				t.Fatal(lerr)
			}
			if !tc.refused {
				if err != nil || len(domains) != 1 {
					t.Fatalf("start of a manager alone on its database: %v, domains %v; want it started", err, domains)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "has not renewed its membership") {
				t.Fatalf("start of a manager that may be taken for dead: %v; want a refusal naming its membership", err)
			}
			if len(domains) != 0 {
				t.Fatalf("the agent runs %v; want no domain: the start must not have been sent", domains)
			}
		})
	}
}

// A clone's copy whose manager died is undone by the leader from its step:
// the vm.cfg and disk images it made are removed from the server; a copy
// that was recorded before its manager died is finished.
func TestLeaderUndoesADeadManagersCopy(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 1})
	ctx := c.Admin()
	srv, err := c.Manager.Server(ctx, backend.Ref{Name: "ovs1"})
	if err != nil {
		t.Fatal(err)
	}
	repo, err := c.Manager.Repository(ctx, backend.Ref{Name: managertest.Repo})
	if err != nil {
		t.Fatal(err)
	}
	agent := c.AgentClient(0)
	// The half-made copy: a disk image and a vm.cfg on the agent, no record.
	half, disk := backend.NewID(backend.TypeVM), backend.NewID(backend.TypeVirtualDisk)
	if err := agent.CreateVirtualDisk(context.Background(), repo.ID, disk, 16, true); err != nil {
		t.Fatal(err)
	}
	params := agentapi.VMParams{agentapi.KeyName: half, agentapi.KeyUUID: half, agentapi.KeySimpleName: "half", "memory": int64(256), "vcpus": int64(1),
		agentapi.KeyDisk: []string{"file:" + repo.MountPoint + "/VirtualDisks/" + disk + ".img,xvda,w"}}
	if err := agent.CreateVM(context.Background(), repo.ID, half, params); err != nil {
		t.Fatal(err)
	}
	// The recorded copy: a VM in the store.
	done, err := c.Manager.CreateVM(ctx, backend.CreateVMRequest{Name: "done", Repository: backend.Ref{Name: managertest.Repo}, MemoryMiB: 256, CPUCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	step := func(vm string) string {
		return `{"call":"create_vm","vm":"` + vm + `","server":"` + srv.ID + `","repo":"` + repo.ID + `","config":true,"disks":[{"repo":"` +
			repo.ID + `","id":"` + disk + `"}]}`
	}
	err = c.Store.Write(context.Background(), func(q *store.Queries) error {
		now, err := q.Now(context.Background())
		if err != nil {
			return err
		}
		if err := q.RenewMember(ctx, store.Member{ID: "dead", Hostname: "gone-host", PID: 99, Started: now.Add(-2 * time.Hour)}, now.Add(-time.Hour)); err != nil {
			return err
		}
		for id, vm := range map[string]string{"j-half": half, "j-done": done.ID} {
			if err := q.InsertJob(ctx, store.Job{ID: id, ManagerID: "dead", Summary: "copy " + vm, User: "admin", Status: backend.JobRunning, CreatedAt: now}); err != nil {
				return err
			}
			if err := q.SetJobStep(ctx, id, step(vm)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	runMember(t, c, backend.MemberConfig{Hostname: "mgr1"})
	for id, want := range map[string]struct{ status, says string }{
		"j-half": {backend.JobFailure, "(create_vm of the copy Vm " + half + " on server ovs1); the leader removed what the copy had made"},
		"j-done": {backend.JobSuccess, "the copy is recorded"},
	} {
		jb, err := c.Manager.Job(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if said := jb.Result + jb.Error; jb.Status != want.status || !strings.Contains(said, want.says) {
			t.Errorf("job %s: %s %q; want %s saying %q", id, jb.Status, said, want.status, want.says)
		}
	}
	if _, err := agent.GetVMConfig(context.Background(), repo.ID, half); err == nil {
		t.Error("the half-made copy's vm.cfg is still on the agent")
	}
	if _, err := os.Stat(filepath.Join(repo.MountPoint, "VirtualDisks", disk+".img")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the half-made copy's disk image: %v; want it removed", err)
	}
}
